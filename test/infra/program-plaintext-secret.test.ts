/**
 * A secret set without --secret (in clear text in the stack file) is refused before anything is
 * declared: the program reads which keys Pulumi marked secret (PULUMI_CONFIG_SECRET_KEYS).
 */
import { expect, it } from "vitest";
import { runRefusedProgram } from "./mocks";
import { APP_SECRETS, devStackValues, PROJECT, TEST_SECRETS, withAppId, withSecrets } from "./stack-config";

it("refuses a secret stored in plain text, without echoing it", async () => {
  const { config, secretKeys } = withSecrets(withAppId(devStackValues()), APP_SECRETS);
  // As after `pulumi config set runner-fleet:webhookSecret …` (no --secret).
  const { failure, declared } = await runRefusedProgram(
    config,
    secretKeys.filter((k) => k !== `${PROJECT}:webhookSecret`),
  );
  expect(failure?.message).toContain(
    "runner-fleet:webhookSecret: is stored in plain text; expected a secret: pulumi config set --secret runner-fleet:webhookSecret",
  );
  expect(failure?.message).not.toContain(TEST_SECRETS.webhookSecret);
  expect(declared).toEqual([]);
});
