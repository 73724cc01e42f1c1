/**
 * One scenario in a fresh process: `node child.mjs '<request JSON>'`. The clock is scaled before
 * anything else is loaded (clock.ts), the scenario runs, and its figures are written to
 * `request.resultFile` (stdout belongs to the Lambdas' logs).
 */
import { writeFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { installScaledClock } from "./clock";

export interface ChildRequest {
  scenario: "ack" | "one-job" | "burst" | "pooled";
  bundleDir: string;
  resultFile: string;
  scale: number;
  deliveries?: number;
  /** one-job: jobs one after another. */
  jobs?: number;
  /** Extra Lambda settings (what-if runs). */
  env?: Record<string, string>;
  /** Override of the launcher event source's batching window (seconds). */
  windowSeconds?: number;
  burst?: import("./scenarios").BurstOptions;
}

const request = JSON.parse(process.argv[2] ?? "{}") as ChildRequest;
installScaledClock(request.scale);
const scenarios = await import("./scenarios");
const { LAUNCHER_EVENT_SOURCE } = await import("./world");
const eventSource = {
  ...LAUNCHER_EVENT_SOURCE,
  ...(request.windowSeconds !== undefined && { windowSeconds: request.windowSeconds }),
};
let result: unknown;
const cpuBefore = process.cpuUsage();
const modelBefore = Date.now();
// How late this thread's timers and answers run (the sandbox's services live here): on the scaled
// clock, a late millisecond is `scale` model milliseconds.
const LOOP_RESOLUTION_MS = 20;
const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
loopDelay.enable();
try {
  if (request.scenario === "ack")
    result = await scenarios.ackLatency(request.bundleDir, request.deliveries ?? 200, request.env);
  else if (request.scenario === "one-job")
    result = await scenarios.oneJob(request.bundleDir, eventSource, request.env, request.jobs);
  else if (request.scenario === "pooled")
    result = await (await import("./pool")).pooledPaths(request.bundleDir, eventSource, request.env);
  else result = await scenarios.burst(request.bundleDir, request.burst!, eventSource, request.env);
  loopDelay.disable();
  // CPU seconds of this process (every thread) against its wall seconds: a scenario whose CPU nears
  // the wall time was bound by this machine, not by the modeled services.
  const cpu = process.cpuUsage(cpuBefore);
  // The histogram holds each timer's whole interval: lateness is what exceeds the resolution.
  const modelMs = (ns: number) => Math.round(Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS) * request.scale);
  const usage = {
    cpuSeconds: Math.round((cpu.user + cpu.system) / 1e4) / 100,
    wallSeconds: Math.round((Date.now() - modelBefore) / 10 / request.scale) / 100,
    eventLoopDelayModelMs: { p99: modelMs(loopDelay.percentile(99)), max: modelMs(loopDelay.max) },
  };
  writeFileSync(request.resultFile, JSON.stringify({ ok: true, result: { ...(result as object), usage } }));
} catch (error) {
  writeFileSync(
    request.resultFile,
    JSON.stringify({
      ok: false,
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    }),
  );
}
process.exit(0);
