#!/usr/bin/env node
/**
 * Bundles every Lambda entry point (lambda/<name>/index.ts exporting `handler`) into dist/<name>/ as
 * minified ESM with source maps, one folder per function (the Pulumi program zips each folder).
 * Dynamic imports become chunks in the same folder, so a handler can load heavy clients only when
 * a path needs them.
 */
import { mkdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * What `node scripts/build-lambdas.mjs` builds without arguments (`npm run build`) and what the
 * benchmark builds. The Pulumi program passes its own list (src/packaging/bundles.ts LAMBDA_NAMES) as arguments.
 */
export const LAMBDAS = ["webhook", "launcher", "reconciler", "ec2-events", "janitor"];

/** Options for one Lambda; exported so the benchmark and tests build exactly what ships. */
export function bundleOptions(name, outRoot = join(root, "dist")) {
  return {
    entryPoints: { index: join(root, "lambda", name, "index.ts") },
    outdir: join(outRoot, name),
    bundle: true,
    splitting: true,
    format: "esm",
    outExtension: { ".js": ".mjs" },
    platform: "node",
    target: "node22",
    mainFields: ["module", "main"],
    minify: true,
    sourcemap: true,
    metafile: true,
    legalComments: "none",
    logLevel: "warning",
    // Lambda always hands a function its role's credentials in environment variables, so the SDK's
    // full default chain (SSO, INI files, IMDS, process, web identity: ~90 KiB) is dead weight.
    alias: {
      "@aws-sdk/credential-provider-node": join(root, "lambda", "shared", "env-credentials.ts"),
      // Reached only in browsers / by event-stream operations: never loaded, yet ~47 KiB of chunks.
      bowser: join(root, "lambda", "shared", "unreachable-sdk-parts.ts"),
      "@smithy/core/event-streams": join(root, "lambda", "shared", "unreachable-sdk-parts.ts"),
    },
    // Some CommonJS dependencies call require() for Node built-ins.
    banner: { js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" },
  };
}

export async function buildLambdas({ outRoot = join(root, "dist"), names = LAMBDAS } = {}) {
  const results = {};
  for (const name of names) {
    rmSync(join(outRoot, name), { recursive: true, force: true });
    mkdirSync(join(outRoot, name), { recursive: true });
    const result = await build(bundleOptions(name, outRoot));
    results[name] = result.metafile;
  }
  return results;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // Lambda names as arguments build just those (src/packaging/bundles.ts passes its list); none: LAMBDAS.
  const names = process.argv.slice(2);
  const metafiles = await buildLambdas(names.length > 0 ? { names } : {});
  for (const [name, meta] of Object.entries(metafiles)) {
    const bytes = Object.entries(meta.outputs)
      .filter(([file]) => !file.endsWith(".map"))
      .reduce((sum, [, out]) => sum + out.bytes, 0);
    console.log(`${name.padEnd(12)} ${(bytes / 1024).toFixed(1)} KiB`);
  }
}
