/**
 * The deployed stack as the operator tools read it through the Pulumi CLI: its outputs, and its
 * config validated as the program validates it (src/config/errors.ts parseStackConfig), so a broken
 * or missing config reads as the same plain messages `pulumi up` prints.
 */

import type { Arch } from "../../lambda/shared/label-config";
import { parseStackConfig } from "../../src/config/errors";
import { SECRET_KEYS, type StackConfig } from "../../src/config/schema";
import { type ConfigEntry, PROJECT, type Pulumi } from "./pulumi";

/** The outputs the tools use (index.ts exports them). */
export interface StackOutputs {
  webhookUrl?: string;
  dashboardUrl?: string;
  jobsTableName?: string;
  handoffTableName?: string;
  poolTableName?: string;
  launchQueueName?: string;
  deadLetterQueueName?: string;
  amiParameterNames?: Partial<Record<Arch, string>>;
  labelConfigParameterPath?: string;
}

/**
 * Secrets are not decrypted for a read (`pulumi config --json` leaves their values out): these stand
 * in for them, in a form the schema accepts; `pulumi up` checks the real ones.
 */
const SECRET_STAND_INS: Record<(typeof SECRET_KEYS)[number], string> = {
  githubAppPrivateKey: "-----BEGIN RSA PRIVATE KEY----- (not decrypted)",
  webhookSecret: "not-decrypted-for-this-read",
  githubToken: "github_pat_not_decrypted",
};

/** `pulumi config --json` validated as the program does; throws ConfigError with its messages. */
export function stackConfigOf(entries: Record<string, ConfigEntry>, stack: string): StackConfig {
  const prefix = `${PROJECT}:`;
  const raw: Record<string, string> = {};
  const otherNamespaceKeys: string[] = [];
  const plainTextSecretKeys: string[] = [];
  for (const [key, entry] of Object.entries(entries)) {
    if (!key.startsWith(prefix)) {
      otherNamespaceKeys.push(key);
      continue;
    }
    const name = key.slice(prefix.length);
    const secretKey = (SECRET_KEYS as readonly string[]).includes(name);
    if (secretKey && !entry.secret) plainTextSecretKeys.push(name);
    if (entry.objectValue !== undefined) raw[name] = JSON.stringify(entry.objectValue);
    else if (entry.value !== undefined) raw[name] = entry.value;
    else if (secretKey) raw[name] = SECRET_STAND_INS[name as keyof typeof SECRET_STAND_INS];
  }
  return parseStackConfig(raw, {
    project: PROJECT,
    stackFile: `Pulumi.${stack}.yaml`,
    plainTextSecretKeys,
    otherNamespaceKeys,
  });
}

/** The stack's validated config; a CLI failure and an invalid config both throw, with what to do. */
export async function readStackConfig(pulumi: Pulumi, stack: string): Promise<StackConfig> {
  return stackConfigOf(await pulumi.configAll(), stack);
}
