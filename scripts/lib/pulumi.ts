/**
 * The operator tools' view of the stack through the Pulumi CLI: stack outputs, config reads and
 * writes. One `run` function does the I/O, so tests inject a fake CLI (and see exactly the argv and
 * the stdin each call got). Secret values always travel on stdin, never in argv, where `ps` and
 * shell history would show them.
 */
import { spawn } from "node:child_process";

export const PROJECT = "runner-fleet";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `pulumi <args>` with `stdin` as its standard input. */
export type PulumiRunner = (args: string[], stdin?: string) => Promise<CliResult>;

export class PulumiError extends Error {
  constructor(args: string[], result: CliResult) {
    super(`pulumi ${args[0]} ${args[1] ?? ""} failed (exit ${result.code}): ${result.stderr.trim()}`);
    this.name = "PulumiError";
  }
}

/** The real CLI on PATH. */
export const spawnPulumi: PulumiRunner = (args, stdin) =>
  new Promise((resolve, reject) => {
    const child = spawn("pulumi", args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8");
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    child.on("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "ENOENT"
          ? new Error("the Pulumi CLI is not on PATH (https://www.pulumi.com/docs/install/)")
          : error,
      ),
    );
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(stdin ?? "");
  });

/** One config entry as `pulumi config --json` prints it (secrets without `value` unless shown). */
export interface ConfigEntry {
  value?: string;
  objectValue?: unknown;
  secret: boolean;
}

export interface Pulumi {
  stackOutputs(): Promise<Record<string, unknown>>;
  /** A config value (secrets decrypted); `path` for a nested key like `runner-fleet:github.appId`. */
  configGet(key: string, options?: { path?: boolean }): Promise<string | undefined>;
  /** Sets a value; it goes to the CLI on stdin (the CLI reads a value it is not given from stdin). */
  configSet(key: string, value: string, options?: { path?: boolean; secret?: boolean }): Promise<void>;
  /** Every config key of the stack (secrets without their values). */
  configAll(): Promise<Record<string, ConfigEntry>>;
}

export function pulumiCli(options: { stack?: string; run?: PulumiRunner } = {}): Pulumi {
  const run = options.run ?? spawnPulumi;
  const stackArgs = options.stack ? ["--stack", options.stack] : [];
  const call = async (args: string[], stdin?: string): Promise<string> => {
    const full = [...args, ...stackArgs];
    const result = await run(full, stdin);
    if (result.code !== 0) throw new PulumiError(full, result);
    return result.stdout;
  };
  return {
    async stackOutputs() {
      return JSON.parse(await call(["stack", "output", "--json"])) as Record<string, unknown>;
    },
    async configGet(key, opts = {}) {
      const full = ["config", "get", key, ...(opts.path ? ["--path"] : []), ...stackArgs];
      const result = await run(full);
      if (result.code !== 0) {
        // `config get` exits 255 for a missing key; anything else is a real failure.
        if (/not found|no value|configuration key .* not found/i.test(result.stderr)) return undefined;
        throw new PulumiError(full, result);
      }
      return result.stdout.replace(/\r?\n$/, "");
    },
    async configSet(key, value, opts = {}) {
      const flags = [...(opts.path ? ["--path"] : []), ...(opts.secret ? ["--secret"] : [])];
      await call(["config", "set", key, ...flags], value);
    },
    async configAll() {
      return JSON.parse(await call(["config", "--json"])) as Record<string, ConfigEntry>;
    },
  };
}
