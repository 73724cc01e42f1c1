// biome-ignore-all lint/suspicious/noExplicitAny: resource inputs under mocks are untyped JSON
/**
 * Issue 12's secrets scan of the program (one program run: the mocks are process-global): a
 * token-mode stack, where the PAT and the webhook secret both reach the program (the PAT configures
 * the GitHub provider, the secret the organization's webhook). Every resource's inputs and outputs
 * with their secret-marked values left out (Pulumi encrypts those in the state), every Lambda's
 * environment, every launch template's user data decoded, and the stack outputs that are not secrets
 * are searched (test/secret-leaks.ts) for every stack secret. Test secrets: stack-config.ts.
 */
import { beforeAll, expect, it } from "vitest";
import { SECRETS_SCAN } from "../adversarial-counts";
import { findLeaks, type KnownSecret, type ScannedText } from "../secret-leaks";
import { isSecretValue, type ProgramRun, plain, runProgram } from "./mocks";
import { devStackValues, PROJECT, TEST_SECRETS, TOKEN_SECRETS, withSecrets } from "./stack-config";

const SECRETS: KnownSecret[] = Object.entries(TEST_SECRETS).map(([name, value]) => ({ name, value }));

let run: ProgramRun;
beforeAll(async () => {
  const values = devStackValues();
  values[`${PROJECT}:github`] = { authMode: "token", scope: "org", owner: "acme" };
  const { config, secretKeys } = withSecrets(values, TOKEN_SECRETS);
  run = await runProgram(config, secretKeys);
  // Generous: a program run takes minutes on a busy machine (beside npm run bench).
}, 600_000);

/** A resource property with its secret-marked values replaced by a placeholder. */
function withoutSecrets(value: unknown): unknown {
  if (isSecretValue(value)) return "[secret]";
  if (Array.isArray(value)) return value.map(withoutSecrets);
  if (value && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withoutSecrets(v)]));
  return value;
}

function scannedTexts(): ScannedText[] {
  const lambdas = run.ofType("aws:lambda/function:Function");
  const templates = run.ofType("aws:ec2/launchTemplate:LaunchTemplate");
  const publicOutputs = Object.entries(run.outputs).filter(([key]) => !run.secretOutputs.includes(key));
  return [
    ...run.resources.flatMap((r) => [
      { where: `inputs of ${r.type} ${r.name}`, text: JSON.stringify(withoutSecrets(r.inputs)) },
      { where: `outputs of ${r.type} ${r.name}`, text: JSON.stringify(withoutSecrets(r.state)) },
    ]),
    ...lambdas.map((f) => ({
      where: `environment of ${f.inputs.name}`,
      text: JSON.stringify(plain(f.inputs.environment)),
    })),
    ...templates.map((t) => ({
      where: `user data of ${t.name}`,
      text: Buffer.from(plain<string>(t.inputs.userData), "base64").toString("utf8"),
    })),
    ...publicOutputs.map(([key, value]) => ({ where: `stack output ${key}`, text: JSON.stringify(value) })),
  ];
}

it(`${SECRETS_SCAN.programStacks} token-mode stack: no secret in any resource, environment, user data or public output`, () => {
  const texts = scannedTexts();
  // What the scan relies on was declared: Lambdas, launch templates, and the secrets where they belong.
  expect(texts.filter((t) => t.where.startsWith("environment of")).length).toBeGreaterThanOrEqual(5);
  expect(texts.filter((t) => t.where.startsWith("user data of")).length).toBeGreaterThan(0);
  for (const t of texts.filter((t) => t.where.startsWith("user data of")))
    expect(t.text.startsWith("#!/bin/bash")).toBe(true);
  expect(findLeaks(SECRETS, texts)).toEqual([]);
});

it("holds the PAT and the webhook secret only as secrets (so the scan above had them to find)", () => {
  const everything = run.resources.map((r) => JSON.stringify([r.inputs, r.state])).join("\n");
  expect(findLeaks(SECRETS, [{ where: "the program, secrets included", text: everything }])).toEqual(
    expect.arrayContaining([
      "githubToken in the program, secrets included",
      "webhookSecret in the program, secrets included",
    ]),
  );
});
