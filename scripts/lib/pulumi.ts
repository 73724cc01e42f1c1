/**
 * The operator tools' view of the stack through the Pulumi CLI: the stack's name and outputs, config
 * reads and writes. One `run` function does the I/O, so tests inject a stand-in CLI (and see exactly
 * the argv and the stdin each call got). Secret values always travel on stdin, never in argv, where
 * `ps` and shell history would show them.
 */
import { spawn } from "node:child_process";

export const PROJECT = "runner-fleet";

/** The project's config key `runner-fleet:NAME`. */
export const projectKey = (name: string) => `${PROJECT}:${name}`;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `pulumi <args>` with `stdin` as its standard input. */
export type PulumiRunner = (args: string[], stdin?: string) => Promise<CliResult>;

export class PulumiError extends Error {
  constructor(
    readonly args: string[],
    readonly result: CliResult,
  ) {
    super(`pulumi ${args[0]} ${args[1] ?? ""} failed (exit ${result.code}): ${result.stderr.trim()}`);
    this.name = "PulumiError";
  }
}

/** The CLI is not installed (or not on PATH): no command can run. */
export class PulumiNotFoundError extends Error {
  constructor(readonly bin: string) {
    super(`the Pulumi CLI (${bin}) is not on PATH: install it (https://www.pulumi.com/docs/install/)`);
    this.name = "PulumiNotFoundError";
  }
}

/** The real CLI: `bin` (default `pulumi`, found on PATH). */
export function spawnPulumi(bin = "pulumi"): PulumiRunner {
  return (args, stdin) =>
    new Promise((resolve, reject) => {
      const child = spawn(bin, args, { stdio: ["pipe", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += chunk.toString("utf8");
      });
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString("utf8");
      });
      child.on("error", (error: NodeJS.ErrnoException) =>
        reject(error.code === "ENOENT" ? new PulumiNotFoundError(bin) : error),
      );
      child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
      // A CLI that exits before reading its stdin closes the pipe: not an error of ours.
      child.stdin.on("error", () => {});
      child.stdin.end(stdin ?? "");
    });
}

/** One config entry as `pulumi config --json` prints it (secrets without `value` unless shown). */
export interface ConfigEntry {
  value?: string;
  objectValue?: unknown;
  secret: boolean;
}

export interface ConfigSetOptions {
  path?: boolean;
  secret?: boolean;
}

export interface Pulumi {
  /** The `--stack` the tool was given, if any (otherwise the CLI's selected stack). */
  readonly stack: string | undefined;
  /** `pulumi version`: throws PulumiNotFoundError when the CLI is missing. */
  version(): Promise<string>;
  /** The stack the commands act on (`pulumi stack --show-name`). */
  stackName(): Promise<string>;
  stackOutputs(): Promise<Record<string, unknown>>;
  /** One output (`undefined` when the stack has none by that name); `showSecrets` decrypts a secret one. */
  stackOutput(name: string, options?: { showSecrets?: boolean }): Promise<string | undefined>;
  /** A config value (secrets decrypted); `path` for a nested key like `runner-fleet:github.appId`. */
  configGet(key: string, options?: { path?: boolean }): Promise<string | undefined>;
  /** Sets a value; it goes to the CLI on stdin (the CLI reads a value it is not given from stdin). */
  configSet(key: string, value: string, options?: ConfigSetOptions): Promise<void>;
  configRemove(key: string, options?: { path?: boolean }): Promise<void>;
  /** Every config key of the stack (secrets without their values). */
  configAll(): Promise<Record<string, ConfigEntry>>;
}

/** Pulumi's messages for a key or an output that does not exist (exit 255). */
const NOT_FOUND = /configuration key .* not found|does not have output property/i;

const configFlags = (opts: ConfigSetOptions) => [
  ...(opts.path ? ["--path"] : []),
  ...(opts.secret ? ["--secret"] : []),
];

/**
 * The shell command an operator types to set `key` from what `valueSource` prints (a secret then never
 * reaches argv), or to the literal value when no source is given.
 */
export function configSetCommand(
  stack: string | undefined,
  key: string,
  value: { literal: string } | { from: string },
  opts: ConfigSetOptions = {},
): string {
  const flags = [...configFlags(opts), ...(stack ? ["--stack", shellQuote(stack)] : [])];
  return "literal" in value
    ? ["pulumi", "config", "set", key, shellQuote(value.literal), ...flags].join(" ")
    : `${value.from} | ${["pulumi", "config", "set", key, ...flags].join(" ")}`;
}

export function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

export function pulumiCli(options: { stack?: string; run?: PulumiRunner; bin?: string } = {}): Pulumi {
  const run = options.run ?? spawnPulumi(options.bin);
  const stackArgs = options.stack ? ["--stack", options.stack] : [];
  const call = async (args: string[], stdin?: string): Promise<string> => {
    const full = [...args, ...stackArgs];
    const result = await run(full, stdin);
    if (result.code !== 0) throw new PulumiError(full, result);
    return result.stdout;
  };
  /** Like `call`, but a missing key or output is `undefined`, not an error. */
  const lookup = async (args: string[]): Promise<string | undefined> => {
    const full = [...args, ...stackArgs];
    const result = await run(full);
    if (result.code === 0) return result.stdout.replace(/\r?\n$/, "");
    if (NOT_FOUND.test(result.stderr)) return undefined;
    throw new PulumiError(full, result);
  };
  return {
    stack: options.stack,
    async version() {
      const result = await run(["version"]);
      if (result.code !== 0) throw new PulumiError(["version"], result);
      return result.stdout.trim();
    },
    async stackName() {
      return (await call(["stack", "--show-name"])).trim();
    },
    async stackOutputs() {
      return JSON.parse(await call(["stack", "output", "--json"])) as Record<string, unknown>;
    },
    async stackOutput(name, opts = {}) {
      const value = await lookup(["stack", "output", name, ...(opts.showSecrets ? ["--show-secrets"] : [])]);
      return value || undefined;
    },
    configGet(key, opts = {}) {
      return lookup(["config", "get", key, ...(opts.path ? ["--path"] : [])]);
    },
    async configSet(key, value, opts = {}) {
      await call(["config", "set", key, ...configFlags(opts)], value);
    },
    async configRemove(key, opts = {}) {
      await call(["config", "rm", key, ...(opts.path ? ["--path"] : [])]);
    },
    async configAll() {
      return JSON.parse(await call(["config", "--json"])) as Record<string, ConfigEntry>;
    },
  };
}
