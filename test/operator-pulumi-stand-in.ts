/**
 * The `pulumi` CLI as the operator tools (doctor, status) see it: the App setup's stand-in
 * (setup-pulumi-stand-in.ts) plus `pulumi config --json`, the whole config with `--path` keys folded
 * into their object and secrets without their values, as the real CLI prints it.
 */
import type { ConfigEntry, PulumiRunner } from "../scripts/lib/pulumi";
import type { FakePulumi } from "./scripts-support";
import { setupStandIn } from "./setup-pulumi-stand-in";

/** A value as the CLI reads what it was given: JSON objects, lists, numbers and booleans parsed. */
const parse = (value: string): unknown =>
  /^[[{]|^\d+$|^(true|false)$/.test(value) ? JSON.parse(value) : value;

export function configJson(fake: FakePulumi): Record<string, ConfigEntry> {
  const entries: Record<string, ConfigEntry> = {};
  for (const [key, { value, secret }] of fake.config) {
    const [top, ...path] = key.split(".");
    if (secret) entries[key] = { secret: true };
    else if (path.length === 0) {
      const parsed = parse(value);
      entries[key] = { value, secret: false, ...(typeof parsed === "object" ? { objectValue: parsed } : {}) };
    } else {
      entries[top!] ??= { secret: false, objectValue: {} };
      const entry = entries[top!]!;
      (entry.objectValue as Record<string, unknown>)[path.join(".")] = parse(value);
      entry.value = JSON.stringify(entry.objectValue);
    }
  }
  return entries;
}

/** `stack` is the selected stack (`stack --show-name`). */
export function operatorStandIn(fake: FakePulumi, stack = "dev"): PulumiRunner {
  const setup = setupStandIn(fake, { stack });
  return async (args, stdin) =>
    args[0] === "config" && args[1] === "--json"
      ? { code: 0, stdout: JSON.stringify(configJson(fake)), stderr: "" }
      : setup(args, stdin);
}
