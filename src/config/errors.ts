/**
 * Validation of raw stack config into a StackConfig, with messages a person can act on: each names
 * the key, the value given (never a secret's) and the shape expected, in plain words.
 */
import { SECRET_KEYS, type StackConfig, stackConfigSchema } from "./schema";

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
  const json = JSON.stringify(value);
  return json.length > 80 ? `${json.slice(0, 77)}...` : json;
}

function keyOf(project: string, path: readonly PropertyKey[]): string {
  let key = `${project}:${String(path[0] ?? "")}`;
  for (const part of path.slice(1)) key += typeof part === "number" ? `[${part}]` : `.${String(part)}`;
  return key;
}

/**
 * Validates raw config values (keys without the project prefix, values as Pulumi hands them:
 * strings, structured values as JSON text). `plainTextKeys` are keys that should be secrets but are
 * not (reported, since their value then sits in clear text in the stack file).
 */
export function parseStackConfig(
  raw: Record<string, string>,
  options: { project: string; stackFile: string; plainTextSecretKeys?: string[] },
): StackConfig {
  const input: Record<string, unknown> = {};
  for (const [key, text] of Object.entries(raw)) {
    if ((SECRET_KEYS as readonly string[]).includes(key)) {
      input[key] = text;
      continue;
    }
    try {
      input[key] = JSON.parse(text);
    } catch {
      input[key] = text;
    }
  }
  const problems: string[] = [];
  for (const key of options.plainTextSecretKeys ?? []) {
    problems.push(
      `${options.project}:${key}: is stored in plain text; expected a secret: pulumi config set --secret ${options.project}:${key}`,
    );
  }
  const result = stackConfigSchema.safeParse(input);
  if (result.success && problems.length === 0) return result.data;
  for (const issue of result.error?.issues ?? []) {
    const isSecret = (SECRET_KEYS as readonly PropertyKey[]).includes(issue.path[0] ?? "");
    if (issue.code === "unrecognized_keys") {
      for (const unknown of issue.keys) {
        const path = [...issue.path, unknown];
        const known = Object.keys(
          (issue.path.length === 0 ? stackConfigSchema.shape : {}) as Record<string, unknown>,
        );
        problems.push(
          `${keyOf(options.project, path)}: unknown key (value ${describeValue(valueAt(input, path), isSecret)})` +
            (known.length
              ? `; expected one of ${known.join(", ")}`
              : "; check its spelling against the reference"),
        );
      }
      continue;
    }
    if (issue.code === "invalid_key") {
      const name = issue.path.at(-1);
      const message = issue.issues[0]?.message ?? issue.message;
      problems.push(
        `${keyOf(options.project, issue.path)}: got the name ${JSON.stringify(name)}; ${message}`,
      );
      continue;
    }
    const value = valueAt(input, issue.path);
    const message = issue.message.replace(/^Invalid (input|option): /, "");
    problems.push(`${keyOf(options.project, issue.path)}: got ${describeValue(value, isSecret)}; ${message}`);
  }
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
