/**
 * A stand-in for the Pulumi CLI in the operator-tool tests: keeps a stack's config and outputs in
 * memory and records every call with its argv and stdin, so a test can check that secrets never
 * appear on a command line.
 */
import type { CliResult, PulumiRunner } from "../scripts/lib/pulumi";

export interface FakePulumiCall {
  args: string[];
  stdin: string;
}

export class FakePulumi {
  readonly calls: FakePulumiCall[] = [];
  /** Config by key as given (`runner-fleet:github.appId` with --path, `runner-fleet:webhookSecret`). */
  readonly config = new Map<string, { value: string; secret: boolean }>();

  constructor(public outputs: Record<string, unknown> | undefined = undefined) {}

  readonly run: PulumiRunner = async (args, stdin = "") => {
    this.calls.push({ args, stdin });
    const ok = (stdout: string): CliResult => ({ code: 0, stdout, stderr: "" });
    const [group, command, key] = args;
    if (group === "stack" && command === "output") {
      if (!this.outputs) return { code: 255, stdout: "", stderr: "error: no stack outputs (never deployed)" };
      return ok(JSON.stringify(this.outputs));
    }
    if (group === "config" && command === "set" && key) {
      this.config.set(key, { value: stdin.trim(), secret: args.includes("--secret") });
      return ok("");
    }
    if (group === "config" && command === "get" && key) {
      const entry = this.config.get(key);
      if (!entry)
        return {
          code: 255,
          stdout: "",
          stderr: `error: configuration key '${key}' not found for stack 'dev'`,
        };
      return ok(`${entry.value}\n`);
    }
    return { code: 1, stdout: "", stderr: `fake pulumi: unsupported ${args.join(" ")}` };
  };

  set(key: string, value: string, secret = false): this {
    this.config.set(key, { value, secret });
    return this;
  }
}
