// biome-ignore-all lint/suspicious/noExplicitAny: the YAML fixture is mutated freely, by path
/**
 * A bad config fails the program before it declares anything, with the key, value and shape; the
 * loader reads every namespace, so a key under a misspelt one is caught too.
 */
import { expect, it } from "vitest";
import { runRefusedProgram } from "./mocks";
import { APP_SECRETS, devStackValues, PROJECT, withAppId, withSecrets } from "./stack-config";

it("fails before any resource is declared", async () => {
  const values = withAppId(devStackValues()) as Record<string, any>;
  values[`${PROJECT}:labelConfigs`]["linux-arm64-medium"].arch = "aarch64";
  values[`${PROJECT}:limits`].maxRuntimeMinutes = "6h";
  values["runner_fleet:alarms"] = { email: "oncall@example.com" };
  const { config, secretKeys } = withSecrets(values, APP_SECRETS);
  const { failure, declared } = await runRefusedProgram(config, secretKeys);
  expect(failure?.message).toBe(
    [
      "Invalid stack config in Pulumi.dev.yaml (3 problems):",
      '  - runner_fleet:alarms: got the namespace "runner_fleet", which this program does not read; did you mean runner-fleet:alarms? (expected every key of this project under "runner-fleet:")',
      '  - runner-fleet:labelConfigs.linux-arm64-medium.arch: got "aarch64"; expected "x64" or "arm64"',
      '  - runner-fleet:limits.maxRuntimeMinutes: got "6h"; expected a whole number from 1 to 10080',
    ].join("\n"),
  );
  expect(declared).toEqual([]);
});
