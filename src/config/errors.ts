/**
 * Validation of raw stack config into a StackConfig, with messages a person can act on: each names
 * the key, the value given (never a secret's) and the shape expected, in plain words (zod's own
 * wording never reaches the user), with the nearest known name when a key or namespace is misspelt.
 */
import type { z } from "zod";
import { closestName } from "../../lambda/core/spelling";
import { SECRET_KEYS, type StackConfig, stackConfigSchema } from "./schema";
import { describeShape, jsonSchemaAt } from "./shape";

/** Thrown for an invalid stack config; the message lists every problem. */
export class ConfigError extends Error {
  constructor(
    readonly problems: string[],
    stackFile: string,
  ) {
    super(
      `Invalid stack config in ${stackFile} (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
        problems.map((p) => `  - ${p}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const key of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function describeValue(value: unknown, secret: boolean): string {
  if (value === undefined) return "nothing (not set)";
  if (secret) return "[secret]";
  // A URL's user:password@ is a credential: never echoed either.
  const json = JSON.stringify(value).replace(/\/\/[^/@\s"]+@/g, "//***@");
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
}

function keyOf(project: string, path: readonly PropertyKey[]): string {
  let key = `${project}:${String(path[0] ?? "")}`;
  for (const part of path.slice(1)) key += typeof part === "number" ? `[${part}]` : `.${String(part)}`;
  return key;
}

/**
 * The message of every issue the schema does not word itself: what the schema expects at that key,
 * from the schema ("expected a whole number from 1 to 10000"), and what the key is for where the
 * shape alone says little (plain text, or a key left unset).
 */
const plainMessage: z.core.$ZodErrorMap = (issue) => {
  const path = issue.path ?? [];
  const schema = jsonSchemaAt(path);
  const shape = describeShape(schema);
  const missing = issue.code === "invalid_type" && issue.input === undefined;
  if (!missing && !shape.startsWith("text")) return `expected ${shape}`;
  // A list item has no description of its own: its list's says what it is for.
  const described = typeof path.at(-1) === "number" ? jsonSchemaAt(path.slice(0, -1)) : schema;
  const purpose = described?.description?.replace(/`/g, "").replace(/\.$/, "");
  return `expected ${shape}${missing ? ", required" : ""}${purpose ? ` (${purpose})` : ""}`;
};

/** A key the schema does not know, with the known key it most likely meant. */
function unknownKeyProblem(project: string, path: PropertyKey[], value: string): string {
  const name = String(path.at(-1));
  const known = Object.keys(jsonSchemaAt(path.slice(0, -1))?.properties ?? {});
  const problem = `${keyOf(project, path)}: unknown key (value ${value})`;
  if (path.length === 1 && known.includes(name.split(".")[0]!))
    return `${problem}; a nested key is set with --path: pulumi config set --path '${project}:${name}' …`;
  const suggestion = closestName(name, known);
  return suggestion
    ? `${problem}; did you mean ${suggestion}?`
    : `${problem}; expected one of ${known.join(", ")}`;
}

/**
 * Keys under a namespace a typo away from the project's (`runner_fleet:alarms`, `runner-fleets:x`):
 * Pulumi hands them to the program, which would silently never read them.
 */
function misplacedKeyProblems(keys: readonly string[], project: string): string[] {
  const squash = (name: string) => name.toLowerCase().replace(/[\s._-]/g, "");
  const maxEdits = Math.min(2, Math.floor(project.length / 4));
  return keys.flatMap((key) => {
    const [namespace, name] = [key.slice(0, key.indexOf(":")), key.slice(key.indexOf(":") + 1)];
    if (!key.includes(":") || namespace === project) return [];
    if (squash(namespace) !== squash(project) && !closestName(namespace, [project], maxEdits)) return [];
    return [
      `${key}: got the namespace "${namespace}", which this program does not read; did you mean ${project}:${name}? (expected every key of this project under "${project}:")`,
    ];
  });
}

/** Pulumi's values are text: structured ones are JSON; a secret stays text, whatever it looks like. */
function inputOf(raw: Record<string, string>): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const [key, text] of Object.entries(raw)) {
    try {
      input[key] = (SECRET_KEYS as readonly string[]).includes(key) ? text : JSON.parse(text);
    } catch {
      input[key] = text;
    }
  }
  return input;
}

/** The problems of one zod issue, worded for the user. */
function problemsOf(issue: z.core.$ZodIssue, input: Record<string, unknown>, project: string): string[] {
  const isSecret = (SECRET_KEYS as readonly PropertyKey[]).includes(issue.path[0] ?? "");
  const given = (path: readonly PropertyKey[]) => describeValue(valueAt(input, path), isSecret);
  if (issue.code === "unrecognized_keys")
    return issue.keys.map((key) => {
      const path = [...issue.path, key];
      return unknownKeyProblem(project, path, given(path));
    });
  if (issue.code === "invalid_key") {
    const message = issue.issues[0]?.message ?? issue.message;
    return [`${keyOf(project, issue.path)}: got the name ${JSON.stringify(issue.path.at(-1))}; ${message}`];
  }
  return [`${keyOf(project, issue.path)}: got ${given(issue.path)}; ${issue.message}`];
}

export interface ParseOptions {
  project: string;
  stackFile: string;
  /** Keys that should be secrets but are not (their value then sits in clear text in the stack file). */
  plainTextSecretKeys?: string[];
  /** Every key of the stack outside the project's namespace, with its namespace (`aws:region`). */
  otherNamespaceKeys?: readonly string[];
}

/**
 * Validates raw config values (keys without the project prefix, values as Pulumi hands them:
 * strings, structured values as JSON text). Throws ConfigError listing every problem.
 */
export function parseStackConfig(raw: Record<string, string>, options: ParseOptions): StackConfig {
  const { project } = options;
  const input = inputOf(raw);
  const problems = (options.plainTextSecretKeys ?? []).map(
    (key) =>
      `${project}:${key}: is stored in plain text; expected a secret: pulumi config set --secret ${project}:${key}`,
  );
  problems.push(...misplacedKeyProblems(options.otherNamespaceKeys ?? [], project));
  const result = stackConfigSchema.safeParse(input, { error: plainMessage });
  if (result.success && problems.length === 0) return result.data;
  for (const issue of result.error?.issues ?? []) problems.push(...problemsOf(issue, input, project));
  throw new ConfigError(problems, options.stackFile);
}

/**
 * The stack name prefixes every resource name (`runner-fleet-<stack>-ec2-events` must fit Lambda's 64
 * characters) and runner names, so it is held to what every one of those names accepts.
 */
export function checkStackName(stack: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,29}$/.test(stack))
    throw new ConfigError(
      [
        `stack name: got ${JSON.stringify(stack)}; expected 1-30 letters, digits, "-" or "_" (it prefixes every resource name)`,
      ],
      `Pulumi.${stack}.yaml`,
    );
  return stack;
}
