#!/usr/bin/env node
/**
 * `npm run bench` — the performance benchmark (docs/performance.md). Bundles every Lambda exactly
 * as it ships (scripts/build-lambdas.mjs) into a temporary directory, compiles the benchmark's own
 * TypeScript (scripts/bench/) with esbuild, and runs the scenarios against the local sandbox.
 *
 *   npm run bench              human table (progress on stderr)
 *   npm run bench -- --json    one JSON object on stdout, nothing else
 *   --jobs N --scale K --deliveries N --cold-jobs N --cold-runs N --bootstrap-runs N --no-faults --no-pool
 *                              (smaller runs)
 *   --window S   the launcher event source's batching window instead of src/components/launcher.ts's (what-if)
 *   --env KEY=VALUE   an extra Lambda setting, e.g. GITHUB_WRITES_PER_MINUTE=36 (what-if; repeatable)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";
import { buildLambdas, LAMBDAS } from "./build-lambdas.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** CommonJS-style sources (src/ runs under ts-node) find files next to them through __dirname. */
const keepDirname = {
  name: "keep-dirname",
  setup(b) {
    b.onLoad({ filter: /\.ts$/ }, async ({ path }) => {
      const source = await readFile(path, "utf8");
      if (!source.includes("__dirname")) return undefined;
      return { contents: source.replaceAll("__dirname", JSON.stringify(dirname(path))), loader: "ts" };
    });
  },
};

/**
 * Builds the Lambda bundles and the benchmark. The benchmark lands under node_modules/.cache so its
 * dependencies (left external) resolve from the project; the bundles go to a fresh temp directory.
 */
export async function prepareBench() {
  const bundleDir = mkdtempSync(join(tmpdir(), "runner-fleet-bench-"));
  await buildLambdas({ outRoot: bundleDir, names: LAMBDAS });
  const benchDir = join(root, "node_modules", ".cache", "runner-fleet-bench", String(process.pid));
  rmSync(benchDir, { recursive: true, force: true });
  await build({
    entryPoints: {
      main: join(root, "scripts", "bench", "main.ts"),
      child: join(root, "scripts", "bench", "child.ts"),
      bootstrap: join(root, "scripts", "bench", "bootstrap.ts"),
      "lambda-worker": join(root, "scripts", "bench", "lambda-worker.ts"),
    },
    outdir: benchDir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node20",
    outExtension: { ".js": ".mjs" },
    packages: "external",
    logLevel: "warning",
    plugins: [keepDirname],
  });
  const main = await import(pathToFileURL(join(benchDir, "main.mjs")).href);
  const bootstrap = await import(pathToFileURL(join(benchDir, "bootstrap.mjs")).href);
  const cleanup = () => {
    rmSync(bundleDir, { recursive: true, force: true });
    rmSync(benchDir, { recursive: true, force: true });
  };
  return { bundleDir, benchDir, main, bootstrap, cleanup };
}

function parseArgs(argv) {
  const args = {
    json: false,
    jobs: 1000,
    scale: 4,
    coldRuns: 20,
    coldJobs: 20,
    deliveries: 200,
    faults: true,
    pooled: true,
    bootstrapRuns: 5,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => Number(argv[++i]);
    if (a === "--json") args.json = true;
    else if (a === "--jobs") args.jobs = next();
    else if (a === "--scale") args.scale = next();
    else if (a === "--cold-runs") args.coldRuns = next();
    else if (a === "--deliveries") args.deliveries = next();
    else if (a === "--cold-jobs") args.coldJobs = next();
    else if (a === "--no-faults") args.faults = false;
    else if (a === "--no-pool") args.pooled = false;
    else if (a === "--window") args.windowSeconds = next();
    else if (a === "--env") {
      const [key, ...value] = String(argv[++i]).split("=");
      args.env = { ...args.env, [key]: value.join("=") };
    } else if (a === "--bootstrap-runs") args.bootstrapRuns = next();
    else throw new Error(`unknown argument ${a}`);
  }
  return args;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = parseArgs(process.argv.slice(2));
  const log = (line) => process.stderr.write(`bench: ${line}\n`);
  const started = Date.now();
  const bench = await prepareBench();
  try {
    const result = await bench.main.runBench({
      bundleDir: bench.bundleDir,
      benchDir: bench.benchDir,
      lambdas: LAMBDAS,
      deliveries: args.deliveries,
      coldJobs: args.coldJobs,
      burstJobs: args.jobs,
      burstScale: args.scale,
      faults: args.faults,
      pooled: args.pooled,
      coldRuns: args.coldRuns,
      windowSeconds: args.windowSeconds,
      env: args.env,
      bootstrap: args.bootstrapRuns > 0 ? () => bench.bootstrap.bootstrapMs(args.bootstrapRuns) : undefined,
      log,
    });
    log(`done in ${Math.round((Date.now() - started) / 1000)} s`);
    if (args.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else process.stdout.write(`${bench.main.formatTable(result)}\n`);
  } finally {
    bench.cleanup();
  }
}
