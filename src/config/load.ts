/**
 * Reads this stack's config from the Pulumi runtime and validates it before any resource is
 * declared, with what the program derives from it.
 */
import * as pulumi from "@pulumi/pulumi";
import { checkStackName, parseStackConfig } from "./errors";
import { SECRET_KEYS, type StackConfig } from "./schema";

/** Everything the program derives from the config, beside the config itself. */
export interface FleetSettings {
  config: StackConfig;
  project: string;
  stack: string;
  /** `https://api.github.com`, `https://HOST/api/v3` (GHES) or `https://api.TENANT.ghe.com`. */
  githubApiUrl: string;
}

export function githubApiUrlOf(webUrl: string): string {
  const url = new URL(webUrl);
  if (url.host === "github.com") return "https://api.github.com";
  if (url.host.endsWith(".ghe.com")) return `https://api.${url.host}`;
  return `https://${url.host}/api/v3`;
}

/**
 * Reads and validates this stack's config from the Pulumi runtime (every `<project>:*` key).
 * Throws ConfigError before anything is declared.
 */
export function loadFleetSettings(): FleetSettings {
  const project = pulumi.getProject();
  const stack = checkStackName(pulumi.getStack());
  const prefix = `${project}:`;
  const raw: Record<string, string> = {};
  const otherNamespaceKeys: string[] = [];
  for (const [key, value] of Object.entries(pulumi.runtime.allConfig())) {
    if (key.startsWith(prefix)) raw[key.slice(prefix.length)] = value;
    else otherNamespaceKeys.push(key);
  }
  // isConfigSecret is exported by the runtime (not in its typings): keys set with --secret.
  const isSecret = (pulumi.runtime as unknown as { isConfigSecret?: (k: string) => boolean }).isConfigSecret;
  const plainTextSecretKeys = SECRET_KEYS.filter(
    (k) => raw[k] !== undefined && isSecret !== undefined && !isSecret(`${prefix}${k}`),
  );
  const config = parseStackConfig(raw, {
    project,
    stackFile: `Pulumi.${stack}.yaml`,
    plainTextSecretKeys,
    otherNamespaceKeys,
  });
  return { config, project, stack, githubApiUrl: githubApiUrlOf(config.github.url) };
}
