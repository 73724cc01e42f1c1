/**
 * Scenario 4: what starting a Lambda costs. Bundle sizes from the build; then fresh `node`
 * processes, one after another: each imports the webhook bundle, answers one valid signed delivery
 * against the sandbox and reports its import time and peak RSS. Medians of `runs` processes.
 */
import { spawn } from "node:child_process";
import { readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { median, round } from "./scenarios";
import { startWorld } from "./world";

/** KiB of JavaScript each Lambda ships (every .mjs in its folder, chunks included; no source maps). */
export function bundleKiB(bundleDir: string, names: readonly string[]): Record<string, number> {
  const sizes: Record<string, number> = {};
  for (const name of names) {
    const dir = join(bundleDir, name);
    const bytes = readdirSync(dir)
      .filter((f) => f.endsWith(".mjs"))
      .reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
    sizes[name] = round(bytes / 1024, 1);
  }
  return sizes;
}

// Runs in the fresh process. performance.now() counts from the process's start.
const COLD_START_SCRIPT = `
import { readFileSync } from "node:fs";
const event = JSON.parse(readFileSync(process.env.BENCH_EVENT_FILE, "utf8"));
const importStarted = performance.now();
const { handler } = await import(process.env.BENCH_BUNDLE_URL);
const importMs = performance.now() - importStarted;
const response = await handler(event);
const answeredMs = performance.now();
const rssMiB = process.resourceUsage().maxRSS / 1024;
process.stderr.write("\\nBENCH " + JSON.stringify({ importMs, answeredMs, rssMiB, status: response.statusCode }) + "\\n");
process.exit(0);
`;

export interface ColdResult {
  coldImportMs: number;
  coldStartMs: number;
  nodeBaselineMs: number;
  webhookRssMiB: number;
  runs: number;
}

interface Run {
  wallMs: number;
  report?: { importMs: number; answeredMs: number; rssMiB: number; status: number };
}

/** Spawns `node args`; wall time from spawn until the BENCH line (or exit, if none is expected). */
function timedNode(args: string[], env: NodeJS.ProcessEnv, expectReport: boolean): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    let settled = false;
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      stderr += chunk;
      const line = /\nBENCH (\{.*\})\n/.exec(stderr);
      if (line && !settled) {
        settled = true;
        resolve({ wallMs: performance.now() - started, report: JSON.parse(line[1]!) });
      }
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      if (settled) return;
      settled = true;
      if (expectReport || code !== 0) reject(new Error(`node exited ${code}: ${stderr.slice(-2000)}`));
      else resolve({ wallMs: performance.now() - started });
    });
  });
}

export async function coldStart(bundleDir: string, runs: number): Promise<ColdResult> {
  const world = await startWorld({ bundleDir });
  try {
    const script = join(bundleDir, "cold-start.mjs");
    writeFileSync(script, COLD_START_SCRIPT);
    // What a Lambda process has: its settings, the SDK's endpoint variables and credentials.
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      ...world.sandbox.env,
      ...world.env,
      BENCH_BUNDLE_URL: pathToFileURL(join(bundleDir, "webhook", "index.mjs")).href,
    };
    const baseline: number[] = [];
    const imports: number[] = [];
    const starts: number[] = [];
    const rss: number[] = [];
    for (let i = 0; i < runs; i++) {
      baseline.push((await timedNode(["-e", ""], { PATH: process.env.PATH }, false)).wallMs);
      const eventFile = join(bundleDir, `event-${i}.json`);
      writeFileSync(eventFile, JSON.stringify(await world.queuedEvent(500_000 + i)));
      const run = await timedNode([script], { ...env, BENCH_EVENT_FILE: eventFile }, true);
      if (run.report?.status !== 202) throw new Error(`cold webhook answered ${run.report?.status}`);
      imports.push(run.report.importMs);
      starts.push(run.wallMs);
      rss.push(run.report.rssMiB);
    }
    return {
      coldImportMs: round(median(imports), 1),
      coldStartMs: round(median(starts), 1),
      nodeBaselineMs: round(median(baseline), 1),
      webhookRssMiB: round(median(rss), 1),
      runs,
    };
  } finally {
    await world.close();
  }
}
