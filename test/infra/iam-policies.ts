// biome-ignore-all lint/suspicious/noExplicitAny: resource inputs under mocks are untyped JSON
/**
 * Every IAM role the program declares, read back from a mocked program run: its inline statements,
 * its AWS-managed attachments and who assumes it; plus the stack the IAM tests run (the example stack
 * with one label config on its own AMI, so every statement the program can declare is there) and the
 * docs' IAM table rendered from them.
 */
import { LAMBDA_NAMES } from "../../src/packaging/bundles";
import { declaredReasons } from "../../src/packaging/iam";
import type { Statement } from "./iam-eval";
import { ACCOUNT_ID, type ProgramRun, REGION, runProgram, statementsOf } from "./mocks";
import { APP_SECRETS, devStackValues, PROJECT, withAppId, withSecrets } from "./stack-config";

export const CONFIGURED_AMI = "ami-0123456789abcdef0";

/** The example stack plus a label config with its own AMI (`amiId`). */
function iamStackConfig() {
  const values = withAppId(devStackValues());
  const configs = values[`${PROJECT}:labelConfigs`] as Record<string, unknown>;
  configs["linux-x64-custom"] = {
    labels: ["linux", "x64", "large", "custom-ami"],
    arch: "x64",
    instanceTypes: ["m7i.xlarge"],
    amiId: CONFIGURED_AMI,
  };
  return withSecrets(values, APP_SECRETS);
}

/** Runs the program under mocks with that stack (once per test file: the mocks are process-global). */
export function runIamStack(): Promise<ProgramRun> {
  const { config, secretKeys } = iamStackConfig();
  return runProgram(config, secretKeys);
}

export interface DeclaredRole {
  /** The Lambda's name, or what the role's description says it is for. */
  name: string;
  /** The service principal that assumes it. */
  assumedBy: string;
  statements: Statement[];
  /** Names of the AWS-managed policies attached. */
  managed: string[];
}

/** The Lambdas' roles in LAMBDA_NAMES order, then the instance roles by name. */
function byRoleOrder(a: DeclaredRole, b: DeclaredRole): number {
  const rank = (role: DeclaredRole) => {
    const index = (LAMBDA_NAMES as readonly string[]).indexOf(role.name);
    return index >= 0 ? index : LAMBDA_NAMES.length;
  };
  return rank(a) - rank(b) || a.name.localeCompare(b.name);
}

export function declaredRoles(run: ProgramRun): DeclaredRole[] {
  const functions = run.ofType("aws:lambda/function:Function");
  const roles = run.ofType("aws:iam/role:Role").map((role) => {
    const fn = functions.find((f) => f.inputs.role === role.state.arn);
    const ofRole = (type: string) =>
      run.ofType(type).filter((p) => p.inputs.role === role.id || p.inputs.role === role.state.name);
    return {
      name: fn
        ? String(fn.inputs.name).replace(`${PROJECT}-dev-`, "")
        : String(role.inputs.description).split(": ")[1]!,
      assumedBy: JSON.parse(role.inputs.assumeRolePolicy).Statement[0].Principal.Service,
      statements: ofRole("aws:iam/rolePolicy:RolePolicy").flatMap((p) => statementsOf(p.inputs.policy)),
      managed: ofRole("aws:iam/rolePolicyAttachment:RolePolicyAttachment").map((a: any) =>
        String(a.inputs.policyArn).replace(/^arn:aws:iam::aws:policy\//, ""),
      ),
    };
  });
  return roles.sort(byRoleOrder);
}

/** The run's concrete names and ids, as the docs name them for any stack. */
const SYMBOLS: [RegExp, string][] = [
  [new RegExp(ACCOUNT_ID, "g"), "<account>"],
  [new RegExp(REGION, "g"), "<region>"],
  [/runner-fleet-dev/g, "runner-fleet-<stack>"],
  [/\/runner-fleet\/dev\//g, "/runner-fleet/<stack>/"],
  [/launch-template\/lt-[0-9a-f]+/g, "launch-template/<each label config's>"],
  [/security-group\/sg-[0-9a-f]+/g, "security-group/<runner security group>"],
  [/subnet\/subnet-[0-9a-f]+/g, "subnet/<each runner subnet>"],
  [/role\/runners-[0-9a-f]+/g, "role/<runner role>"],
  [/AROA[0-9A-F]+/g, "<runner role id>"],
  [new RegExp(CONFIGURED_AMI, "g"), "<each label config's amiId>"],
];
const symbolic = (text: string) => SYMBOLS.reduce((t, [pattern, name]) => t.replace(pattern, name), text);
const cell = (items: string[], separator = "<br>") =>
  [...new Set(items.map(symbolic))]
    .map((i) => `\`${i}\``)
    .join(separator)
    .replace(/\|/g, "\\|");
const STACK_VALUE = /^dev$/;

function conditionText(statement: Statement): string {
  const parts = Object.entries(statement.Condition ?? {}).flatMap(([operator, keys]) =>
    Object.entries(keys).map(([key, values]) => {
      const shown = [...(Array.isArray(values) ? values : [values])].map((v) =>
        String(v).replace(STACK_VALUE, "<stack>"),
      );
      return `${operator} ${cell([key])} = ${cell(shown, " or ")}`;
    }),
  );
  return parts.join("<br>") || "—";
}

function reasonOf(key: string): string {
  const why = declaredReasons.get(key);
  if (!why) throw new Error(`IAM ${key} declares no why`);
  return why.replace(/\|/g, "\\|");
}

/** The docs' IAM table: per role, each statement with its resources, conditions and why. */
export function iamTableMarkdown(roles: DeclaredRole[]): string {
  return roles
    .map((role) => {
      const rows = [
        ...role.statements.map(
          (s) =>
            `| ${s.Sid} | ${cell([s.Action].flat())} | ${cell([s.Resource].flat())} | ${conditionText(s)} | ${reasonOf(s.Sid!)} |`,
        ),
        ...role.managed.map((m) => `| ${m} (AWS managed) | — | — | — | ${reasonOf(m)} |`),
      ];
      return [
        `### ${role.name} (assumed by \`${role.assumedBy}\`)`,
        "",
        "| Statement | Actions | Resources | Conditions | Why, and why nothing narrower |",
        "| --- | --- | --- | --- | --- |",
        ...rows,
      ].join("\n");
    })
    .join("\n\n");
}
