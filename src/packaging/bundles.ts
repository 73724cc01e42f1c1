/**
 * The Lambda bundles (dist/<name>/index.mjs, built by scripts/build-lambdas.mjs with esbuild), built
 * by the program itself when a source is newer than a bundle, so `pulumi up` alone deploys current
 * code. A lock directory serializes concurrent builds (parallel test files, two terminals).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";

export const PROJECT_ROOT = join(__dirname, "..", "..");
/** The Lambdas the program deploys; ensureBundles has scripts/build-lambdas.mjs build exactly these. */
export const LAMBDA_NAMES = ["webhook", "launcher", "reconciler", "ec2-events", "janitor"] as const;
export type LambdaName = (typeof LAMBDA_NAMES)[number];

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

/** True when a bundle is missing or older than a source it is built from. */
export function bundlesStale(root = PROJECT_ROOT): boolean {
  const sources = Math.max(
    newestMtime(join(root, "lambda")),
    newestMtime(join(root, "package-lock.json")),
    newestMtime(join(root, "scripts", "build-lambdas.mjs")),
  );
  return LAMBDA_NAMES.some((name) => {
    const bundle = join(root, "dist", name, "index.mjs");
    return !existsSync(bundle) || statSync(bundle).mtimeMs < sources;
  });
}

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** Builds the bundles if stale (synchronously: resources are declared right after) and returns their folders. */
export function ensureBundles(root = PROJECT_ROOT): Record<LambdaName, string> {
  const lock = join(root, "dist", ".build-lock");
  mkdirSync(join(root, "dist"), { recursive: true });
  const deadline = Date.now() + 180_000;
  while (bundlesStale(root)) {
    try {
      mkdirSync(lock);
    } catch {
      // Another build holds the lock: wait for it (or break a lock left by a killed build).
      const held = statSync(lock, { throwIfNoEntry: false });
      if (held && Date.now() - held.mtimeMs > 120_000) rmSync(lock, { force: true, recursive: true });
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
      sleep(250);
      continue;
    }
    try {
      if (bundlesStale(root)) {
        execFileSync(process.execPath, [join(root, "scripts", "build-lambdas.mjs"), ...LAMBDA_NAMES], {
          cwd: root,
          stdio: ["ignore", "ignore", "inherit"],
        });
        if (bundlesStale(root))
          throw new Error(
            `bundles in ${join(root, "dist")} still missing or older than their sources right after ` +
              "scripts/build-lambdas.mjs built them (a source modified during the build, or dated in the future?)",
          );
      }
    } finally {
      rmSync(lock, { force: true, recursive: true });
    }
  }
  return Object.fromEntries(LAMBDA_NAMES.map((name) => [name, join(root, "dist", name)])) as Record<
    LambdaName,
    string
  >;
}
