// biome-ignore-all lint/suspicious/noExplicitAny: resource inputs under mocks are untyped JSON
/**
 * Runs the Pulumi program under `pulumi.runtime.setMocks` and records every resource it declares:
 * type, logical name, inputs, URN and the URNs it depends on (read from the mock monitor's register
 * requests, since the Mocks API does not show dependencies). The mocks runtime is process-global:
 * one program run per test file.
 */
import * as pulumi from "@pulumi/pulumi";
import { PROJECT } from "./stack-config";

export const ACCOUNT_ID = "123456789012";
export const REGION = "eu-west-1";

export interface Declared {
  type: string;
  name: string;
  inputs: Record<string, any>;
  state: Record<string, any>;
  urn: string;
  /** The physical id the mock gave it. */
  id: string;
  dependsOn: string[];
}

const hex = (seed: string, length: number) => {
  let h = 0;
  for (const c of seed) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h.toString(16).padStart(8, "0").repeat(3).slice(0, length);
};

/** Output properties a real provider would compute, so dependent inputs look realistic. */
function computed(type: string, name: string, inputs: Record<string, any>): Record<string, unknown> {
  const [pkg, mod] = type.split(":");
  const service = (mod ?? "").split("/")[0] ?? "";
  const physical = inputs.name ?? `${name}-${hex(name, 7)}`;
  const arn = `arn:aws:${service}:${REGION}:${ACCOUNT_ID}:${service}/${physical}`;
  const base: Record<string, unknown> = { arn, name: physical };
  switch (type) {
    case "awsx:ec2:Vpc":
      return {
        vpcId: `vpc-${hex(name, 17)}`,
        publicSubnetIds: ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2", "subnet-0aaaaaaaaaaaaaaa3"],
        privateSubnetIds: ["subnet-0bbbbbbbbbbbbbbb1", "subnet-0bbbbbbbbbbbbbbb2"],
      };
    case "aws:iam/role:Role":
      return {
        ...base,
        arn: `arn:aws:iam::${ACCOUNT_ID}:role/${physical}`,
        uniqueId: `AROA${hex(name, 17).toUpperCase()}`,
      };
    case "aws:iam/instanceProfile:InstanceProfile":
      return { ...base, arn: `arn:aws:iam::${ACCOUNT_ID}:instance-profile/${physical}` };
    case "aws:sqs/queue:Queue":
      return {
        ...base,
        arn: `arn:aws:sqs:${REGION}:${ACCOUNT_ID}:${physical}`,
        url: `https://sqs.${REGION}.amazonaws.com/${ACCOUNT_ID}/${physical}`,
      };
    case "aws:dynamodb/table:Table":
      return { ...base, arn: `arn:aws:dynamodb:${REGION}:${ACCOUNT_ID}:table/${physical}` };
    case "aws:ec2/securityGroup:SecurityGroup":
      return { ...base, arn: `arn:aws:ec2:${REGION}:${ACCOUNT_ID}:security-group/sg-${hex(name, 17)}` };
    case "aws:ec2/launchTemplate:LaunchTemplate":
      // A new template's first version, as EC2 numbers them.
      return {
        ...base,
        arn: `arn:aws:ec2:${REGION}:${ACCOUNT_ID}:launch-template/lt-${hex(name, 17)}`,
        latestVersion: 1,
      };
    case "aws:lambda/function:Function":
      return { ...base, arn: `arn:aws:lambda:${REGION}:${ACCOUNT_ID}:function:${physical}` };
    case "aws:cloudwatch/logGroup:LogGroup":
      return { ...base, arn: `arn:aws:logs:${REGION}:${ACCOUNT_ID}:log-group:${physical}` };
    case "aws:apigatewayv2/api:Api":
      return {
        ...base,
        apiEndpoint: `https://abc123.execute-api.${REGION}.amazonaws.com`,
        executionArn: `arn:aws:execute-api:${REGION}:${ACCOUNT_ID}:abc123`,
      };
    case "aws:cloudwatch/dashboard:Dashboard":
      return { ...base, dashboardName: inputs.dashboardName };
    case "random:index/randomPassword:RandomPassword":
      return { result: `generated-${hex(name, 40)}` };
    default:
      return pkg === "aws" ? base : {};
  }
}

function physicalId(type: string, name: string): string {
  if (type === "aws:ec2/launchTemplate:LaunchTemplate") return `lt-${hex(name, 17)}`;
  if (type === "aws:ec2/securityGroup:SecurityGroup") return `sg-${hex(name, 17)}`;
  // GitHub's hook id, as the provider sets a webhook's id.
  if (/^github:index\/\w+Webhook:/.test(type)) return String(Number.parseInt(hex(name, 8), 16));
  return `${name}-id`;
}

export interface ProgramRun {
  resources: Declared[];
  outputs: Record<string, unknown>;
  /** The names of the stack outputs that are Pulumi secrets. */
  secretOutputs: string[];
  /** Resources of a type (token), e.g. "aws:lambda/function:Function". */
  ofType(type: string): Declared[];
  /** The one resource of a type with this logical name. */
  named(type: string, name: string): Declared;
  /** The Lambda function `runner-fleet-<stack>-<name>`. */
  fnNamed(name: string): Declared;
  /** The statements of the inline policy attached to a function's role. */
  statementsOfFunction(name: string): any[];
}

/** Imports the program under mocks with this config (keys `project:key`) and waits for it to settle. */
export async function runProgram(
  config: Record<string, string>,
  secretKeys: string[],
  stack = "dev",
): Promise<ProgramRun> {
  const resources: Declared[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const state = { ...args.inputs, ...computed(args.type, args.name, args.inputs) };
        return { id: physicalId(args.type, args.name), state };
      },
      call(args) {
        if (args.token === "aws:index/getCallerIdentity:getCallerIdentity")
          return {
            accountId: ACCOUNT_ID,
            arn: `arn:aws:iam::${ACCOUNT_ID}:user/test`,
            userId: "AIDTEST",
            id: ACCOUNT_ID,
          };
        if (args.token === "aws:index/getPartition:getPartition")
          return { partition: "aws", dnsSuffix: "amazonaws.com", id: "aws" };
        throw new Error(`unexpected invoke ${args.token}`);
      },
    },
    PROJECT,
    stack,
    false,
  );
  pulumi.runtime.setAllConfig(config, secretKeys);
  // Record each register request with its dependencies and URN.
  const monitor = pulumi.runtime.getMonitor() as any;
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req: any, callback: (err: unknown, res: any) => void) =>
    register(req, (err: unknown, res: any) => {
      if (!err) {
        const urn = res.getUrn();
        resources.push({
          type: req.getType(),
          name: req.getName(),
          inputs: pulumi.runtime.deserializeProperties(req.getObject()),
          state: pulumi.runtime.deserializeProperties(res.getObject()),
          urn,
          id: res.getId(),
          dependsOn: req.getDependenciesList(),
        });
      }
      callback(err, res);
    });

  const program = (await import("../../index")) as Record<string, unknown>;
  const outputs: Record<string, unknown> = {};
  const secretOutputs: string[] = [];
  for (const [key, value] of Object.entries(program)) {
    if (!pulumi.Output.isInstance(value)) {
      outputs[key] = value;
      continue;
    }
    outputs[key] = await new Promise((resolve) => (value as pulumi.Output<unknown>).apply(resolve));
    if (await pulumi.isSecret(value as pulumi.Output<unknown>)) secretOutputs.push(key);
  }
  // Registrations run asynchronously: wait until no new resource shows up for a while.
  let count = -1;
  while (count !== resources.length) {
    count = resources.length;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  const run: ProgramRun = {
    resources,
    outputs,
    secretOutputs,
    ofType: (type) => resources.filter((r) => r.type === type),
    named: (type, name) => {
      const found = resources.filter((r) => r.type === type && r.name === name);
      if (found.length !== 1) throw new Error(`expected one ${type} named ${name}, found ${found.length}`);
      return found[0]!;
    },
    fnNamed: (name) =>
      run
        .ofType("aws:lambda/function:Function")
        .find((f) => f.inputs.name === `${PROJECT}-${stack}-${name}`)!,
    statementsOfFunction: (name) => {
      const fn = run.fnNamed(name);
      const role = run.ofType("aws:iam/role:Role").find((r) => r.state.arn === fn.inputs.role)!;
      const policy = run.ofType("aws:iam/rolePolicy:RolePolicy").find((p) => p.inputs.role === role.id)!;
      return statementsOf(policy.inputs.policy);
    },
  };
  return run;
}

/** Parses an IAM policy document (inputs.policy JSON) into its statements. */
export function statementsOf(policy: unknown): any[] {
  const doc = typeof policy === "string" ? JSON.parse(policy) : policy;
  return doc.Statement;
}

const SECRET_SIG = "4dabf18193072939515e22adb298388d";

/** Whether a deserialized input value is marked secret. */
export function isSecretValue(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as Record<string, unknown>)[SECRET_SIG] === "1b47061264138c4ac30d75fd1eb44270"
  );
}

/** The plain value of a possibly secret-marked input. */
export function plain<T = any>(value: unknown): T {
  return (isSecretValue(value) ? (value as { value: unknown }).value : value) as T;
}

/**
 * Runs the program with `config` expecting it to refuse: returns its error and the resource types it
 * declared before failing (a refused config must declare none). One run per test file, as above.
 */
export async function runRefusedProgram(
  config: Record<string, string>,
  secretKeys: string[],
): Promise<{ failure: Error | undefined; declared: string[] }> {
  const declared: string[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        declared.push(args.type);
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: () => ({}),
    },
    PROJECT,
    "dev",
  );
  pulumi.runtime.setAllConfig(config, secretKeys);
  const failure = await import("../../index").then(
    () => undefined,
    (error: Error) => error,
  );
  // Resource registrations are asynchronous: give any that were started time to arrive.
  await new Promise((resolve) => setTimeout(resolve, 200));
  return { failure, declared };
}
