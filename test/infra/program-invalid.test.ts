// biome-ignore-all lint/suspicious/noExplicitAny: the YAML fixture is mutated freely, by path
/**
 * A bad config fails the program before it declares anything, with the key, value and shape.
 */
import { expect, it } from "vitest";
import { runRefusedProgram } from "./mocks";
import { APP_SECRETS, devStackValues, PROJECT, withSecrets } from "./stack-config";

it("fails before any resource is declared", async () => {
  const values = devStackValues() as Record<string, any>;
  values[`${PROJECT}:labelConfigs`]["linux-arm64-medium"].arch = "aarch64";
  values[`${PROJECT}:limits`].maxRuntimeMinutes = "6h";
  const { config, secretKeys } = withSecrets(values, APP_SECRETS);
  const { failure, declared } = await runRefusedProgram(config, secretKeys);
  expect(failure?.message).toBe(
    [
      "Invalid stack config in Pulumi.dev.yaml (2 problems):",
      '  - runner-fleet:labelConfigs.linux-arm64-medium.arch: got "aarch64"; expected one of "x64"|"arm64"',
      '  - runner-fleet:limits.maxRuntimeMinutes: got "6h"; expected number, received string',
    ].join("\n"),
  );
  expect(declared).toEqual([]);
});
