/**
 * The benchmark at small scale, through `npm run bench`'s own entry (scripts/bench.mjs --json), so
 * it cannot rot: every scenario runs (5 deliveries, a 40-job burst on a fast clock, one cold process,
 * one bootstrap), stdout is one JSON object with every figure, and the burst neither loses nor
 * duplicates a job. Nothing here is timed: the figures themselves are the benchmark's business.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = join(__dirname, "..");

const FIGURES = [
  "ackP50Ms",
  "ackP99Ms",
  "queuedToFleetMs",
  "queuedToHandoffMs",
  "burst1000Seconds",
  "burst1000FloorSeconds",
  "fleetCalls",
  "githubCallsPerJob",
  "duplicates",
  "lost",
  "faultBurstSeconds",
  "onDemandShare",
  "faultDuplicates",
  "faultLost",
  "coldImportMs",
  "coldStartMs",
  "nodeBaselineMs",
  "webhookRssMiB",
  "bootstrapMs",
];

it("runs every scenario at small scale and prints one JSON object", { timeout: 120_000 }, async () => {
  const jobs = 40;
  const { stdout } = await run(
    process.execPath,
    [
      "scripts/bench.mjs",
      "--json",
      ...["--deliveries", "5", "--jobs", String(jobs), "--scale", "5"],
      ...["--cold-runs", "1", "--bootstrap-runs", "1"],
    ],
    { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 },
  );
  const result = JSON.parse(stdout); // throws if anything but the one object reached stdout

  for (const key of FIGURES) expect(result, key).toHaveProperty(key, expect.any(Number));
  expect(Object.keys(result.bundleKiB).sort()).toEqual(
    expect.arrayContaining(["ec2-events", "launcher", "reconciler", "webhook"]),
  );
  for (const kib of Object.values(result.bundleKiB)) expect(kib).toBeGreaterThan(1);
  expect(Object.keys(result.met).sort()).toEqual(Object.keys(result.targets).sort());
  expect(result.targets).toHaveProperty("ackP99Ms");
  expect(result.targets).toHaveProperty("burst1000Seconds");

  // The burst: every job handed off exactly once, batched into fleets (one per config per batch;
  // with no batching window a small burst forms smaller batches than a large one).
  const burst = result.details.burst;
  expect(burst.handedOff).toBe(jobs);
  expect(burst.rejected).toBe(0);
  expect(result.lost).toBe(0);
  expect(result.duplicates).toBe(0);
  expect(burst.orphans).toBe(0);
  expect(result.fleetCalls).toBeGreaterThanOrEqual(2);
  // At most one CreateFleet per config (two) per launcher batch, and batches of more than one job.
  expect(result.fleetCalls).toBeLessThanOrEqual(burst.launcherInvocations * 2);
  expect(burst.launcherInvocations).toBeLessThan(jobs);
  // One JIT registration per job, plus an installation token per launcher environment.
  expect(result.githubCallsPerJob).toBeGreaterThanOrEqual(1);
  expect(result.burst1000Seconds).toBeGreaterThan(0);
  expect(result.burst1000FloorSeconds).toBeGreaterThan(0);

  // With faults: still nothing lost or doubled; capacity failures moved some jobs on-demand.
  expect(result.faultLost).toBe(0);
  expect(result.faultDuplicates).toBe(0);
  expect(result.details.faultBurst.handedOff).toBe(jobs);

  // One job: CreateFleet before the hand-off, both after the delivery.
  expect(result.queuedToFleetMs).toBeGreaterThan(0);
  expect(result.queuedToHandoffMs).toBeGreaterThan(result.queuedToFleetMs);
  expect(result.details.ackNon2xx).toBe(0);
});
