/**
 * Stack config as Pulumi hands it to the program: `Pulumi.dev.yaml` read the way the CLI reads it
 * (each key `project:key`, structured values as JSON text) plus the secrets a user sets with
 * `pulumi config set --secret` (their keys listed as secret keys).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";

export const PROJECT = "runner-fleet";
export const ROOT = join(__dirname, "..", "..");

/** Fake but well-formed secret values; the tests assert none of them ever leaves the SSM parameters. */
export const TEST_SECRETS = {
  githubAppPrivateKey:
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAtestkeynotrealtestkeynotreal0123456789\n-----END RSA PRIVATE KEY-----\n",
  webhookSecret: "whsec-test-0123456789abcdef0123456789abcdef",
  githubToken: "github_pat_11AAAAAAA0testtokennotreal0123456789",
};
/** An App-mode stack's secrets. */
export const APP_SECRETS = {
  githubAppPrivateKey: TEST_SECRETS.githubAppPrivateKey,
  webhookSecret: TEST_SECRETS.webhookSecret,
};
/** A token-mode stack's secrets. */
export const TOKEN_SECRETS = {
  githubToken: TEST_SECRETS.githubToken,
  webhookSecret: TEST_SECRETS.webhookSecret,
};

/** The `config:` map of Pulumi.dev.yaml as plain values, keys with the project prefix. */
export function devStackValues(): Record<string, unknown> {
  const file = parse(readFileSync(join(ROOT, "Pulumi.dev.yaml"), "utf8")) as {
    config: Record<string, unknown>;
  };
  return structuredClone(file.config);
}

/** Pulumi's wire form: every value a string, objects and arrays as JSON. */
export function toPulumiConfig(values: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(values).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );
}

/** The App id `npm run setup:github-app` writes beside the key (Pulumi.dev.yaml has neither). */
export const TEST_APP_ID = 123456;

/** The stack values as `npm run setup:github-app` leaves them: Pulumi.dev.yaml plus the App's id. */
export function withAppId(values: Record<string, unknown>): Record<string, unknown> {
  const github = values[`${PROJECT}:github`] as Record<string, unknown>;
  return { ...values, [`${PROJECT}:github`]: { ...github, appId: TEST_APP_ID } };
}

/** Secrets as `pulumi config set --secret` leaves them: values plus the list of secret keys. */
export function withSecrets(
  values: Record<string, unknown>,
  secrets: Partial<typeof TEST_SECRETS>,
): { config: Record<string, string>; secretKeys: string[] } {
  const config = toPulumiConfig(values);
  const secretKeys: string[] = [];
  for (const [k, v] of Object.entries(secrets)) {
    config[`${PROJECT}:${k}`] = v;
    secretKeys.push(`${PROJECT}:${k}`);
  }
  return { config, secretKeys };
}

/** The config keys of our project without prefix, as parseStackConfig takes them. */
export function projectKeys(config: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config)
      .filter(([k]) => k.startsWith(`${PROJECT}:`))
      .map(([k, v]) => [k.slice(PROJECT.length + 1), v]),
  );
}
