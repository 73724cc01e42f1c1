/**
 * The `pulumi` CLI as the App setup sees it, for its tests: FakePulumi's config and outputs, plus
 * what the setup also calls (`version`, `stack --show-name`, one `stack output NAME [--show-secrets]`,
 * `config rm`) and injected failures. A secret output prints `[secret]` without --show-secrets, as
 * the real CLI does. Every call lands in `fake.calls`.
 */
import type { PulumiRunner } from "../scripts/lib/pulumi";
import { FakePulumi } from "./scripts-support";

export interface StandInOptions {
  /** The selected stack; `null`: none selected. Default `dev`. */
  stack?: string | null;
  /** Outputs the real CLI prints as `[secret]` unless --show-secrets. Default: webhookSecret. */
  secretOutputs?: string[];
  /** A non-empty string fails the call with that stderr (exit 255). */
  failOn?: (args: string[]) => string | undefined;
}

const result = (code: number, stdout: string, stderr = "") => ({ code, stdout, stderr });

export function setupStandIn(fake: FakePulumi, options: StandInOptions = {}): PulumiRunner {
  const secretOutputs = new Set(options.secretOutputs ?? ["webhookSecret"]);
  return async (args, stdin = "") => {
    const failure = options.failOn?.(args);
    const [group, command, name] = args;
    const handled =
      failure ||
      group === "version" ||
      (group === "stack" && command === "--show-name") ||
      (group === "stack" && command === "output" && name !== "--json") ||
      (group === "config" && command === "rm");
    if (!handled) return fake.run(args, stdin);
    fake.calls.push({ args, stdin });
    if (failure) return result(255, "", failure);
    if (group === "version") return result(0, "v3.230.0\n");
    const stackFlag = args.indexOf("--stack");
    if (command === "--show-name") {
      const stack =
        stackFlag >= 0 ? args[stackFlag + 1] : options.stack === undefined ? "dev" : options.stack;
      return stack
        ? result(0, `${stack}\n`)
        : result(255, "", "error: no stack selected; please use `pulumi stack select` to choose one");
    }
    if (command === "rm") {
      fake.config.delete(name!);
      return result(0, "");
    }
    const value = fake.outputs?.[name!];
    if (value === undefined) {
      return result(255, "", `error: current stack does not have output property '${name}'`);
    }
    const hidden = secretOutputs.has(name!) && !args.includes("--show-secrets");
    return result(0, `${hidden ? "[secret]" : String(value)}\n`);
  };
}

/** A deployed stack: its webhook URL and generated secret as outputs, owner set in config. */
export function deployedStack(owner: string, outputs: Record<string, unknown> = {}): FakePulumi {
  return new FakePulumi({
    webhookUrl: "https://abc123.execute-api.eu-west-1.amazonaws.com/webhook",
    webhookSecret: "stack-generated-secret-0123456789abcdef",
    ...outputs,
  }).set("runner-fleet:github.owner", owner);
}
