/**
 * Which settings (environment variables of lambda/shared/settings.ts) a Lambda reads, found from
 * its bundle: the source map lists every lambda/ source file in the bundle, and a file that names a
 * settings getter reads that variable. So each function gets exactly the settings its code uses,
 * and a setting added to settings.ts later is picked up without touching this program.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { PROJECT_ROOT } from "./bundles";

/** getter name → environment variable, read from settings.ts itself. */
export function settingVariables(root = PROJECT_ROOT): Map<string, string> {
  const source = readFileSync(join(root, "lambda", "shared", "settings.ts"), "utf8");
  const map = new Map<string, string>();
  for (const m of source.matchAll(/get (\w+)\(\)\s*\{\s*return r\.\w+(?:<[^>]*>)?\(\s*"([A-Z0-9_]+)"/g)) {
    map.set(m[1]!, m[2]!);
  }
  return map;
}

/** The lambda/ source files bundled into a function (from its source maps). */
export function bundledSources(bundleDir: string): string[] {
  const files = new Set<string>();
  for (const name of readdirSync(bundleDir).filter((f) => f.endsWith(".map"))) {
    const map = JSON.parse(readFileSync(join(bundleDir, name), "utf8")) as { sources: string[] };
    for (const source of map.sources) {
      const path = resolve(bundleDir, source);
      if (!path.includes("node_modules")) files.add(path);
    }
  }
  return [...files].sort();
}

/** Environment variables the bundled code reads through settings(). */
export function settingsReadBy(bundleDir: string, root = PROJECT_ROOT): Set<string> {
  const variables = settingVariables(root);
  const used = new Set<string>();
  for (const file of bundledSources(bundleDir)) {
    if (file.endsWith(join("shared", "settings.ts"))) continue;
    const text = readFileSync(file, "utf8");
    for (const [getter, variable] of variables)
      if (new RegExp(`\\b${getter}\\b`).test(text)) used.add(variable);
  }
  return used;
}

/** The subset of `available` settings a function's bundle reads. */
export function environmentFor<T>(
  bundleDir: string,
  available: Record<string, T | undefined>,
): Record<string, T> {
  const used = settingsReadBy(bundleDir);
  const env: Record<string, T> = {};
  for (const [variable, value] of Object.entries(available)) {
    if (used.has(variable) && value !== undefined) env[variable] = value;
  }
  return env;
}

/**
 * A function's environment: the settings its bundle reads, plus `SECRETS_REVISION` (the versions of
 * the secret parameters) for a function that reads secrets. Rotating a secret bumps a version, which
 * updates the function's configuration, so it starts fresh instances that read the new value (the
 * Lambdas cache secrets per instance). A version number reveals nothing about the secret.
 */
export function functionEnvironment(
  bundleDir: string,
  available: Record<string, pulumi.Input<string> | undefined>,
  secretsRevision: pulumi.Input<string>,
): Record<string, pulumi.Input<string>> {
  const env = environmentFor(bundleDir, available);
  const readsSecrets = Object.keys(env).some((k) => k.endsWith("_PARAM"));
  return readsSecrets ? { ...env, SECRETS_REVISION: secretsRevision } : env;
}
