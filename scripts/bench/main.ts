/**
 * The benchmark: every scenario, the figures, the targets beside them and whether each is met.
 * `runBench` is what `npm run bench` and test/bench.test.ts both call (the test at small scale).
 */
import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import type { ChildRequest } from "./child";
import { bundleKiB, coldStart } from "./cold";
import { type AckResult, type BurstOptions, type BurstResult, type OneJobResult, round } from "./scenarios";
import { LAUNCHER_EVENT_SOURCE, MODEL } from "./world";

export interface BenchOptions {
  /** buildLambdas' outRoot, with every Lambda bundled as it ships. */
  bundleDir: string;
  /** The compiled benchmark (child.mjs lives there). */
  benchDir: string;
  lambdas: readonly string[];
  /** Webhook deliveries for the ack percentiles (200). */
  deliveries: number;
  /** Jobs in the burst (1,000) and how fast the burst's clock runs (see clock.ts). */
  burstJobs: number;
  burstScale: number;
  /** Scenario 3 (the burst with faults); off in the test. */
  faults: boolean;
  /** Fresh processes for scenario 4 (20); 0 skips it. */
  coldRuns: number;
  /** Scenario 5 (the bootstrap script); off when the machine cannot run it. */
  bootstrap?: () => Promise<number>;
  /** Override of the launcher event source's batching window (default: what src/components/launcher.ts sets). */
  windowSeconds?: number;
  /** Extra Lambda settings for every scenario but the cold starts (what-if runs). */
  env?: Record<string, string>;
  log?: (line: string) => void;
}

export interface BenchResult {
  ackP50Ms: number;
  ackP99Ms: number;
  queuedToFleetMs: number;
  queuedToHandoffMs: number;
  burst1000Seconds: number;
  burst1000FloorSeconds: number;
  fleetCalls: number;
  githubCallsPerJob: number;
  duplicates: number;
  lost: number;
  faultBurstSeconds?: number;
  onDemandShare?: number;
  faultDuplicates?: number;
  faultLost?: number;
  bundleKiB: Record<string, number>;
  coldImportMs?: number;
  coldStartMs?: number;
  nodeBaselineMs?: number;
  webhookRssMiB?: number;
  bootstrapMs?: number;
  targets: Record<string, string>;
  met: Record<string, boolean>;
  details: Record<string, unknown>;
}

export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const log = options.log ?? (() => {});
  // Other work on the machine slows every scenario (and scaled ones `scale` times over): say how busy it was.
  const loadBefore = loadavg()[0]!;
  const child = <T>(request: Omit<ChildRequest, "bundleDir" | "resultFile">) =>
    runChild<T>(options.benchDir, {
      ...request,
      bundleDir: options.bundleDir,
      ...(options.windowSeconds !== undefined && { windowSeconds: options.windowSeconds }),
      ...(options.env && { env: options.env }),
    });

  log(`scenario 1: webhook ack over ${options.deliveries} deliveries`);
  const ack = await child<AckResult>({ scenario: "ack", scale: 1, deliveries: options.deliveries });
  log("scenario 1: one job, queued → CreateFleet → hand-off");
  const one = await child<OneJobResult>({ scenario: "one-job", scale: 1 });

  const burstOptions: BurstOptions = {
    jobs: options.burstJobs,
    arrivalSeconds: 10,
    timeoutSeconds: 900,
  };
  log(`scenario 2: burst of ${options.burstJobs} jobs (clock ×${options.burstScale})`);
  const burst = await child<BurstResult>({
    scenario: "burst",
    scale: options.burstScale,
    burst: burstOptions,
  });
  let faulty: BurstResult | undefined;
  if (options.faults) {
    log("scenario 3: the burst with 30 % spot capacity failures and 5 % throttling");
    faulty = await child<BurstResult>({
      scenario: "burst",
      scale: options.burstScale,
      burst: { ...burstOptions, faults: { spotCapacity: 0.3, throttled: 0.05 } },
    });
  }

  const sizes = bundleKiB(options.bundleDir, options.lambdas);
  let cold: Awaited<ReturnType<typeof coldStart>> | undefined;
  if (options.coldRuns > 0) {
    log(`scenario 4: ${options.coldRuns} fresh processes`);
    cold = await coldStart(options.bundleDir, options.coldRuns);
  }
  let bootstrapMs: number | undefined;
  if (options.bootstrap) {
    log("scenario 5: the bootstrap script");
    bootstrapMs = await options.bootstrap();
  }

  const result: Omit<BenchResult, "targets" | "met"> = {
    ackP50Ms: ack.ackP50Ms,
    ackP99Ms: ack.ackP99Ms,
    queuedToFleetMs: one.queuedToFleetMs,
    queuedToHandoffMs: one.queuedToHandoffMs,
    burst1000Seconds: burst.seconds,
    burst1000FloorSeconds: burst.floorSeconds,
    fleetCalls: burst.fleetCalls,
    githubCallsPerJob: burst.githubCallsPerJob,
    duplicates: burst.duplicates,
    lost: burst.lost,
    ...(faulty && {
      faultBurstSeconds: faulty.seconds,
      onDemandShare: faulty.onDemandShare,
      faultDuplicates: faulty.duplicates,
      faultLost: faulty.lost,
    }),
    bundleKiB: sizes,
    ...(cold && {
      coldImportMs: cold.coldImportMs,
      coldStartMs: cold.coldStartMs,
      nodeBaselineMs: cold.nodeBaselineMs,
      webhookRssMiB: cold.webhookRssMiB,
    }),
    ...(bootstrapMs !== undefined && { bootstrapMs }),
    details: {
      burstJobs: options.burstJobs,
      burstClockScale: options.burstScale,
      ...(options.env && { lambdaEnvOverrides: options.env }),
      launcherEventSource: {
        ...LAUNCHER_EVENT_SOURCE,
        ...(options.windowSeconds !== undefined && { windowSeconds: options.windowSeconds }),
      },
      modeledPathMs: one.modeledPathMs,
      burst,
      ...(faulty && { faultBurst: faulty }),
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model,
        node: process.version,
        loadAverage1m: { before: round(loadBefore, 2), after: round(loadavg()[0]!, 2) },
      },
      ackDeliveries: ack.deliveries,
      ackNon2xx: ack.non2xx,
      coldRuns: cold?.runs ?? 0,
      model: MODEL,
    },
  };
  return { ...result, ...judge(result) };
}

/** Targets (issue #6) and whether each figure meets it; figures not measured are left out. */
export function judge(r: Omit<BenchResult, "targets" | "met">): Pick<BenchResult, "targets" | "met"> {
  const modeledPath = Number((r.details as { modeledPathMs: number }).modeledPathMs);
  const handoffBudget = round(modeledPath + 150);
  const rows: [string, string, boolean | undefined][] = [
    ["ackP99Ms", "<= 100", r.ackP99Ms <= 100],
    [
      "queuedToHandoffMs",
      `<= ${handoffBudget} (modeled API ${modeledPath} + 150)`,
      r.queuedToHandoffMs <= handoffBudget,
    ],
    [
      "burst1000Seconds",
      `<= ${round(1.1 * r.burst1000FloorSeconds, 1)} (1.1 × floor)`,
      r.burst1000Seconds <= 1.1 * r.burst1000FloorSeconds,
    ],
    ["duplicates", "= 0", r.duplicates === 0],
    ["lost", "= 0", r.lost === 0],
    ["faultDuplicates", "= 0", r.faultDuplicates === undefined ? undefined : r.faultDuplicates === 0],
    ["faultLost", "= 0", r.faultLost === undefined ? undefined : r.faultLost === 0],
    ["bundleKiB.webhook", "<= 300", (r.bundleKiB.webhook ?? Number.POSITIVE_INFINITY) <= 300],
    ["coldImportMs", "<= 40", r.coldImportMs === undefined ? undefined : r.coldImportMs <= 40],
    ["coldStartMs", "<= 150", r.coldStartMs === undefined ? undefined : r.coldStartMs <= 150],
    ["webhookRssMiB", "<= 60", r.webhookRssMiB === undefined ? undefined : r.webhookRssMiB <= 60],
    ["bootstrapMs", "<= 1000", r.bootstrapMs === undefined ? undefined : r.bootstrapMs <= 1000],
  ];
  const targets: Record<string, string> = {};
  const met: Record<string, boolean> = {};
  for (const [key, target, ok] of rows) {
    if (ok === undefined) continue;
    targets[key] = target;
    met[key] = ok;
  }
  return { targets, met };
}

/** The human table: figure, value, target, met. */
export function formatTable(r: BenchResult): string {
  const rows: [string, string, string, string][] = [];
  const add = (key: string, value: unknown, unit = "") => {
    if (value === undefined) return;
    const target = r.targets[key] ?? "";
    const met = key in r.met ? (r.met[key] ? "yes" : "NO") : "";
    rows.push([key, `${value}${unit}`, target, met]);
  };
  add("ackP50Ms", r.ackP50Ms, " ms");
  add("ackP99Ms", r.ackP99Ms, " ms");
  add("queuedToFleetMs", r.queuedToFleetMs, " ms");
  add("queuedToHandoffMs", r.queuedToHandoffMs, " ms");
  add("burst1000Seconds", r.burst1000Seconds, " s");
  add("burst1000FloorSeconds", r.burst1000FloorSeconds, " s");
  add("fleetCalls", r.fleetCalls);
  add("githubCallsPerJob", r.githubCallsPerJob);
  add("duplicates", r.duplicates);
  add("lost", r.lost);
  add("faultBurstSeconds", r.faultBurstSeconds, " s");
  add("onDemandShare", r.onDemandShare);
  add("faultDuplicates", r.faultDuplicates);
  add("faultLost", r.faultLost);
  for (const [name, kib] of Object.entries(r.bundleKiB)) add(`bundleKiB.${name}`, kib, " KiB");
  add("coldImportMs", r.coldImportMs, " ms");
  add("coldStartMs", r.coldStartMs, " ms");
  add("nodeBaselineMs", r.nodeBaselineMs, " ms");
  add("webhookRssMiB", r.webhookRssMiB, " MiB");
  add("bootstrapMs", r.bootstrapMs, " ms");
  const header: [string, string, string, string] = ["figure", "value", "target", "met"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** Runs one scenario in a fresh `node` (child.mjs) and returns its figures. */
export function runChild<T>(benchDir: string, request: Omit<ChildRequest, "resultFile">): Promise<T> {
  const resultFile = join(request.bundleDir, `result-${process.pid}-${Date.now()}-${Math.random()}.json`);
  const full: ChildRequest = { ...request, resultFile };
  return new Promise((resolve, reject) => {
    // The Lambdas log to stdout as on Lambda; the benchmark keeps only the last of stderr for errors.
    const proc = spawn(process.execPath, [join(benchDir, "child.mjs"), JSON.stringify(full)], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    proc.stderr.setEncoding("utf8");
    proc.stderr.on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000);
    });
    proc.on("error", reject);
    proc.on("exit", (code) => {
      try {
        const outcome = JSON.parse(readFileSync(resultFile, "utf8")) as
          | { ok: true; result: T }
          | { ok: false; error: string };
        rmSync(resultFile, { force: true });
        if (outcome.ok) resolve(outcome.result);
        else reject(new Error(`scenario ${request.scenario} failed: ${outcome.error}`));
      } catch {
        reject(new Error(`scenario ${request.scenario}: node exited ${code}: ${stderr}`));
      }
    });
  });
}
export { coldStart } from "./cold";
export { LaunchEventSource, startWorld } from "./world";
