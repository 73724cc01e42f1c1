/**
 * A secret set without --secret (in clear text in the stack file) is refused before anything is
 * declared: the program reads which keys Pulumi marked secret (PULUMI_CONFIG_SECRET_KEYS).
 */
import * as pulumi from "@pulumi/pulumi";
import { expect, it } from "vitest";
import { devStackValues, PROJECT, TEST_SECRETS, withSecrets } from "./stack-config";

it("refuses a secret stored in plain text, without echoing it", async () => {
  const { config, secretKeys } = withSecrets(devStackValues(), {
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
  // As after `pulumi config set runner-fleet:webhookSecret …` (no --secret).
  pulumi.runtime.setAllConfig(
    config,
    secretKeys.filter((k) => k !== `${PROJECT}:webhookSecret`),
  );
  const failure = await import("../../index").then(
    () => undefined,
    (error: Error) => error,
  );
  expect(failure?.message).toContain(
    "runner-fleet:webhookSecret: is stored in plain text; expected a secret: pulumi config set --secret runner-fleet:webhookSecret",
  );
  expect(failure?.message).not.toContain(TEST_SECRETS.webhookSecret);
  expect(declared).toEqual([]);
});
