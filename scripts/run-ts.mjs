#!/usr/bin/env node
/**
 * Runs an operator script written in TypeScript: `node scripts/run-ts.mjs scripts/demo.ts [args]`.
 * Bundles it as ESM with esbuild (dependencies stay external, resolved from node_modules), then
 * imports it with source maps on. Why not a TypeScript loader such as tsx: the project is CommonJS
 * (Pulumi's ts-node runs the program), so a loader would turn the Lambda code the scripts import
 * into CommonJS, and some of its dependencies (@octokit/webhooks-methods) are ESM-only.
 */
import { mkdirSync, rmSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error("usage: node scripts/run-ts.mjs <script.ts> [args]");
  process.exit(2);
}

// Under node_modules, so the bundle's bare imports resolve from the project.
const outDir = join(root, "node_modules", ".cache", "runner-fleet-scripts");
mkdirSync(outDir, { recursive: true });
const outfile = join(outDir, `${basename(entry, ".ts")}-${process.pid}.mjs`);
await build({
  entryPoints: [resolve(entry)],
  outfile,
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  packages: "external",
  sourcemap: "inline",
  logLevel: "warning",
});
process.on("exit", () => rmSync(outfile, { force: true }));
process.setSourceMapsEnabled(true);
process.argv = [process.argv[0], resolve(entry), ...args];
await import(pathToFileURL(outfile).href);
