/**
 * The benchmark: every scenario, the figures, the targets beside them and whether each is met.
 * `runBench` is what `npm run bench` and test/bench.test.ts both call (the test at small scale).
 */
import { spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import {
  BOOTSTRAP_FALLBACK_MS,
  type JobTimeline,
  type PathSummary,
  RUNNER_MODEL,
  summarizePaths,
} from "./boot-path";
import type { ChildRequest } from "./child";
import { bundleKiB, coldStart } from "./cold";
import type { PooledResult } from "./pool";
import { judge } from "./report";
import { type AckResult, type BurstOptions, type BurstResult, type OneJobResult, round } from "./scenarios";
import { LAUNCHER_EVENT_SOURCE, MODEL } from "./world";

export { formatTable } from "./report";

export interface BenchOptions {
  /** buildLambdas' outRoot, with every Lambda bundled as it ships. */
  bundleDir: string;
  /** The compiled benchmark (child.mjs lives there). */
  benchDir: string;
  lambdas: readonly string[];
  /** Webhook deliveries for the ack percentiles (200). */
  deliveries: number;
  /** Jobs one at a time for queued → running cold (20). */
  coldJobs: number;
  /** Jobs in the burst (1,000) and how fast the burst's clock runs (see clock.ts). */
  burstJobs: number;
  burstScale: number;
  /** Scenario 3 (the burst with faults); off in the test. */
  faults: boolean;
  /** Scenario 6 (the stopped pool). */
  pooled: boolean;
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

/** A burst's figures are named by its job count: `burst1000Seconds`, `burst300FloorSeconds`… */
type BurstFigures = { [key: `burst${number}Seconds` | `burst${number}FloorSeconds`]: number };

export interface BenchResult extends BurstFigures {
  ackP50Ms: number;
  ackP99Ms: number;
  queuedToFleetMs: number;
  queuedToHandoffMs: number;
  /** Queued → job running, one job at a time on the cold path; and the part of it that is ours. */
  queuedToRunningColdP50Ms: number;
  queuedToRunningColdP90Ms: number;
  coldOurShare: number;
  /** The same over every job of the burst. */
  queuedToRunningColdBurstP50Ms: number;
  queuedToRunningColdBurstP90Ms: number;
  /** A job taking a stopped pool member; null until the pool is built (details.pool says why). */
  queuedToRunningPooledP50Ms: number | null;
  queuedToRunningPooledP90Ms: number | null;
  /** A burst three times the pool's size. */
  queuedToRunningPooledBurstP50Ms: number | null;
  queuedToRunningPooledBurstP90Ms: number | null;
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
  /** Targets of figures not judged in this run (not built, or the clock was starved), and why. */
  notJudged: Record<string, string>;
  details: Record<string, unknown>;
}

type Measured<T> = T & { usage: ChildUsage };
interface ChildUsage {
  cpuSeconds: number;
  wallSeconds: number;
  eventLoopDelayModelMs: { p99: number; max: number };
}

export async function runBench(options: BenchOptions): Promise<BenchResult> {
  const log = options.log ?? (() => {});
  // Other work on the machine slows every scenario (and scaled ones `scale` times over): say how busy it was.
  const loadBefore = loadavg()[0]!;
  const child = <T>(request: Omit<ChildRequest, "bundleDir" | "resultFile">) =>
    runChild<Measured<T>>(options.benchDir, {
      ...request,
      bundleDir: options.bundleDir,
      ...(options.windowSeconds !== undefined && { windowSeconds: options.windowSeconds }),
      ...(options.env && { env: options.env }),
    });

  log(`scenario 1: webhook ack over ${options.deliveries} deliveries`);
  const ack = await child<AckResult>({ scenario: "ack", scale: 1, deliveries: options.deliveries });
  log(`scenario 1: ${options.coldJobs} jobs one at a time, queued → CreateFleet → hand-off`);
  const one = await child<OneJobResult>({ scenario: "one-job", scale: 1, jobs: options.coldJobs });

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
  let faulty: Measured<BurstResult> | undefined;
  if (options.faults) {
    log("scenario 3: the burst with 30 % spot capacity failures, 5 % throttling, 2 % of deliveries lost");
    faulty = await child<BurstResult>({
      scenario: "burst",
      scale: options.burstScale,
      burst: { ...burstOptions, faults: { spotCapacity: 0.3, throttled: 0.05, lostDeliveries: 0.02 } },
    });
  }
  const starved = [burst, faulty].map((b) => b && clockStarvation(b)).find(Boolean);
  if (starved)
    log(
      `WARNING: the burst's CPU could not keep up with its clock (${starved}); its time and lost jobs are not judged`,
    );

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
  let pooled: PooledResult = { built: false, reason: "scenario 6 skipped" };
  if (options.pooled) {
    log(`scenario 6: the stopped pool (clock ×${options.burstScale})`);
    pooled = await child<PooledResult>({ scenario: "pooled", scale: options.burstScale });
  }

  const bootstrapFor = bootstrapMs ?? BOOTSTRAP_FALLBACK_MS;
  const paths = (timelines: JobTimeline[]) => summarizePaths(timelines, bootstrapFor);
  const coldOne = paths(one.timelines);
  const coldBurst = paths(burst.timelines);
  const pooledOne = pooled.built ? paths(pooled.oneJob) : undefined;
  const pooledBurst = pooled.built ? paths(pooled.burst) : undefined;
  if (!coldOne || !coldBurst) throw new Error("no job of the cold path was handed off");

  const result: Omit<BenchResult, "targets" | "met" | "notJudged"> = {
    ackP50Ms: ack.ackP50Ms,
    ackP99Ms: ack.ackP99Ms,
    queuedToFleetMs: one.queuedToFleetMs,
    queuedToHandoffMs: one.queuedToHandoffMs,
    queuedToRunningColdP50Ms: coldOne.p50Ms,
    queuedToRunningColdP90Ms: coldOne.p90Ms,
    coldOurShare: coldOne.shares.ours,
    queuedToRunningColdBurstP50Ms: coldBurst.p50Ms,
    queuedToRunningColdBurstP90Ms: coldBurst.p90Ms,
    queuedToRunningPooledP50Ms: pooledOne?.p50Ms ?? null,
    queuedToRunningPooledP90Ms: pooledOne?.p90Ms ?? null,
    queuedToRunningPooledBurstP50Ms: pooledBurst?.p50Ms ?? null,
    queuedToRunningPooledBurstP90Ms: pooledBurst?.p90Ms ?? null,
    [`burst${options.burstJobs}Seconds`]: burst.seconds,
    [`burst${options.burstJobs}FloorSeconds`]: burst.floorSeconds,
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
      ...(starved && { clockStarved: true, clockStarvedBecause: starved }),
      ...(options.env && { lambdaEnvOverrides: options.env }),
      launcherEventSource: {
        ...LAUNCHER_EVENT_SOURCE,
        ...(options.windowSeconds !== undefined && { windowSeconds: options.windowSeconds }),
      },
      modeledPathMs: one.modeledPathMs,
      queuedToRunning: {
        bootstrapMs: { value: bootstrapFor, source: bootstrapMs === undefined ? "fallback" : "scenario 5" },
        cold: pathDetails(coldOne),
        coldBurst: pathDetails(coldBurst),
        ...(pooledOne && { pooled: pathDetails(pooledOne) }),
        ...(pooledBurst && { pooledBurst: pathDetails(pooledBurst) }),
      },
      pool: pooled.built
        ? {
            size: pooled.size,
            burstJobs: pooled.burst.length,
            // Jobs whose instance was a started member (the rest launched cold: the pool was empty).
            startedMembers: {
              oneJob: pooled.oneJob.filter((t) => t.boot.kind === "start").length,
              burst: pooled.burst.filter((t) => t.boot.kind === "start").length,
            },
          }
        : `not built: ${pooled.reason}`,
      oneJobTimeline: one.timeline,
      burst: withoutTimelines(burst),
      ...(faulty && { faultBurst: withoutTimelines(faulty) }),
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model,
        node: process.version,
        loadAverage1m: { before: round(loadBefore, 2), after: round(loadavg()[0]!, 2) },
      },
      ackDeliveries: ack.deliveries,
      ackNon2xx: ack.non2xx,
      coldRuns: cold?.runs ?? 0,
      model: { ...MODEL, runner: RUNNER_MODEL },
    },
  };
  return { ...result, ...judge(result) } as BenchResult;
}

/**
 * Why a burst's CPU could not keep up with its scaled clock, if it could not: the webhook failed
 * deliveries (its calls, which answer in milliseconds, waited for the CPU past their 10 s timeout),
 * or the sandbox's services answered seconds late (its event loop ran that much model time behind).
 */
export function clockStarvation(b: Measured<BurstResult>): string | undefined {
  if (b.deliveries.failed > 0) return `the webhook failed ${b.deliveries.failed} deliveries`;
  const late = b.usage.eventLoopDelayModelMs.p99;
  if (late > STARVED_LOOP_DELAY_MS) return `the sandbox's event loop ran ${late} model ms late (p99)`;
  return undefined;
}

/** Model ms the sandbox's event loop may run late (p99) before the burst's latencies mean nothing. */
const STARVED_LOOP_DELAY_MS = 2_000;

const withoutTimelines = ({ timelines: _timelines, ...rest }: BurstResult) => rest;

const pathDetails = ({ p50Ms: _p50, p90Ms: _p90, ...details }: PathSummary) => details;

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
