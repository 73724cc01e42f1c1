/**
 * A small IAM policy evaluator for identity policies, enough to ask the questions that matter of the
 * program's policies: explicit Deny wins, then any Allow, else implicit deny; actions and resources
 * with `*`/`?` wildcards; condition operators of the String, Arn and Bool families with the
 * ForAllValues/ForAnyValue qualifiers and IfExists, and Null; policy variables like `${aws:userid}` in
 * resources and condition values. An operator it does not know is an error, never a silent match.
 */

export interface Statement {
  Sid?: string;
  Effect: "Allow" | "Deny";
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[] | boolean>>;
}

/** The request context: condition keys (any case) to their values; absent keys are missing. */
export type Context = Record<string, string | string[] | boolean | undefined>;

export interface Request {
  action: string;
  resource: string;
  context?: Context;
}

export type Decision = "allow" | "explicit-deny" | "implicit-deny";

const list = <T>(value: T | T[]): T[] => (Array.isArray(value) ? value : [value]);

/** `*` any run of characters, `?` one character; everything else literal. */
function globRegExp(pattern: string, flags = ""): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\*?]/g, (c) => (c === "*" ? ".*" : c === "?" ? "." : `\\${c}`));
  return new RegExp(`^${body}$`, flags);
}

function lookup(context: Context, key: string): string[] | undefined {
  const found = Object.entries(context).find(([k]) => k.toLowerCase() === key.toLowerCase());
  if (!found || found[1] === undefined) return undefined;
  return list(found[1]).map(String);
}

/** `${aws:userid}` and the like, replaced by the context's value (a missing one stays literal). */
function substitute(value: string, context: Context): string {
  return value.replace(/\$\{([^}]+)\}/g, (whole, key: string) => lookup(context, key)?.[0] ?? whole);
}

/** ARNs compare per colon-separated part, each part with wildcards (ArnEquals and ArnLike alike). */
function arnMatches(value: string, pattern: string): boolean {
  const parts = (arn: string) => {
    const p = arn.split(":");
    return [...p.slice(0, 5), p.slice(5).join(":")];
  };
  const [v, p] = [parts(value), parts(pattern)];
  return p.length === v.length && p.every((part, i) => globRegExp(part).test(v[i] ?? ""));
}

const MATCHERS: Record<string, (value: string, pattern: string) => boolean> = {
  StringEquals: (v, p) => v === p,
  StringNotEquals: (v, p) => v === p,
  StringEqualsIgnoreCase: (v, p) => v.toLowerCase() === p.toLowerCase(),
  StringLike: (v, p) => globRegExp(p).test(v),
  StringNotLike: (v, p) => globRegExp(p).test(v),
  ArnEquals: arnMatches,
  ArnLike: arnMatches,
  ArnNotEquals: arnMatches,
  ArnNotLike: arnMatches,
  Bool: (v, p) => v.toLowerCase() === p.toLowerCase(),
};

function conditionHolds(operator: string, key: string, policyValues: string[], context: Context): boolean {
  // Null: "true" holds when the key is absent, "false" when it is present.
  if (operator === "Null") return policyValues.includes(String(lookup(context, key) === undefined));
  const match = /^(?:(ForAllValues|ForAnyValue):)?(\w+?)(IfExists)?$/.exec(operator);
  const base = match?.[2] ?? "";
  const matcher = MATCHERS[base];
  if (!match || !matcher) throw new Error(`iam-eval does not know the condition operator ${operator}`);
  const [, qualifier, , ifExists] = match;
  const negated = base.includes("Not");
  const values = lookup(context, key);
  if (values === undefined) return qualifier === "ForAllValues" || Boolean(ifExists) || negated;
  const patterns = policyValues.map((p) => substitute(p, context));
  const matchesAny = (v: string) => patterns.some((p) => matcher(v, p));
  if (qualifier === "ForAllValues") return values.every((v) => matchesAny(v) !== negated);
  if (qualifier === "ForAnyValue") return values.some((v) => matchesAny(v) !== negated);
  return negated ? !values.some(matchesAny) : values.some(matchesAny);
}

function statementApplies(statement: Statement, request: Request): boolean {
  const context = request.context ?? {};
  const actionMatches = list(statement.Action).some((a) => globRegExp(a, "i").test(request.action));
  const resourceMatches = list(statement.Resource).some((r) =>
    globRegExp(substitute(r, context)).test(request.resource),
  );
  if (!actionMatches || !resourceMatches) return false;
  return Object.entries(statement.Condition ?? {}).every(([operator, keys]) =>
    Object.entries(keys).every(([key, values]) =>
      conditionHolds(operator, key, list(values).map(String), context),
    ),
  );
}

/** The decision of identity-policy statements on one request. */
export function evaluate(statements: Statement[], request: Request): Decision {
  const applying = statements.filter((s) => statementApplies(s, request));
  if (applying.some((s) => s.Effect === "Deny")) return "explicit-deny";
  return applying.some((s) => s.Effect === "Allow") ? "allow" : "implicit-deny";
}

/**
 * One call that authorizes several resources (RunInstances checks its instance, image, subnet, … one
 * by one): allowed only if every resource is, each with the shared context plus its own keys.
 */
export function allowsAll(
  statements: Statement[],
  action: string,
  resources: { arn: string; context?: Context }[],
  shared: Context = {},
): boolean {
  return resources.every(
    (r) =>
      evaluate(statements, { action, resource: r.arn, context: { ...shared, ...r.context } }) === "allow",
  );
}
