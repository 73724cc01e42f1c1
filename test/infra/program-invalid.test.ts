// biome-ignore-all lint/suspicious/noExplicitAny: the YAML fixture is mutated freely, by path
/**
 * A bad config fails the program before it declares anything, with the key, value and shape.
 */
import * as pulumi from "@pulumi/pulumi";
import { expect, it } from "vitest";
import { devStackValues, PROJECT, TEST_SECRETS, withSecrets } from "./stack-config";

it("fails before any resource is declared", async () => {
  const values = devStackValues() as Record<string, any>;
  values[`${PROJECT}:labelConfigs`]["linux-arm64-medium"].arch = "aarch64";
  values[`${PROJECT}:limits`].maxRuntimeMinutes = "6h";
  const { config, secretKeys } = withSecrets(values, {
    githubAppPrivateKey: TEST_SECRETS.githubAppPrivateKey,
    webhookSecret: TEST_SECRETS.webhookSecret,
  });
  const declared: string[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        declared.push(args.type);
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: () => ({}),
    },
    PROJECT,
    "dev",
  );
  pulumi.runtime.setAllConfig(config, secretKeys);
  await expect(import("../../index")).rejects.toThrow(
    [
      "Invalid stack config in Pulumi.dev.yaml (2 problems):",
      '  - runner-fleet:labelConfigs.linux-arm64-medium.arch: got "aarch64"; expected one of "x64"|"arm64"',
      '  - runner-fleet:limits.maxRuntimeMinutes: got "6h"; expected number, received string',
    ].join("\n"),
  );
  await new Promise((resolve) => setTimeout(resolve, 200));
  expect(declared).toEqual([]);
});
