/**
 * The claimed jobs' instances: per label config first its stopped pool's members, if it has a pool
 * (start-pool-members.ts), then for the other jobs ONE `instant` CreateFleet, spot first (or
 * on-demand, per policy and past spot failures), then on-demand for the jobs the spot fallback moved
 * there in this invocation (core/spot-fallback.ts decideAfterFailure); each instance given a job is
 * registered (register-runners.ts).
 */
import pMap from "p-map";
import { createFleet, instanceZones } from "../adapters/ec2";
import { ec2ErrorCode } from "../adapters/ec2-client";
import { prepareGitHub } from "../adapters/github-client";
import { transitionJob, updateJobFields } from "../adapters/jobs-table";
import {
  assignInstances,
  buildFleetRequest,
  clientTokenFor,
  groupByConfig,
  type LaunchedInstance,
} from "../core/fleet-request";
import {
  classifyFleetError,
  classifyFleetErrors,
  decideAfterFailure,
  type FailureClass,
  initialMarket,
  type NextStep,
} from "../core/spot-fallback";
import type { Market } from "../shared/job";
import type { LabelConfig } from "../shared/label-config";
import { settings } from "../shared/settings";
import { logger, MetricUnit, metrics } from "../shared/telemetry";
import { type Candidate, configOf, done, IO_CONCURRENCY, retryAfter, type Settled } from "./batch-records";
import { launchMarketOverrides } from "./launch-market";
import { registerInstance } from "./register-runners";
import { releaseForRetry, terminateQuietly } from "./release-job";
import { type Assignment, startPoolMembers } from "./start-pool-members";

/** Instances registered with GitHub at once (the GitHub adapter also paces writes per minute). */
const REGISTER_CONCURRENCY = 16;

/** What launching some jobs came to: every job settled, and how many instances went to registration. */
export interface Launched {
  settled: Settled[];
  registrations: number;
}

/** Launches every claimed job, one config's fleets beside the other's. */
export async function launchFleets(claimed: Candidate[]): Promise<Launched> {
  return merged(await Promise.all([...groupByConfig(claimed, configOf).values()].map(launchConfig)));
}

/** A config's jobs: on its pool's members first, the rest cold; both registering at once. */
async function launchConfig(group: Candidate[]): Promise<Launched> {
  const pool = await startPoolMembers(group[0]!.config, group);
  return merged(await Promise.all([registerPoolStarts(pool.started), launchCold(pool.cold)]));
}

function merged(parts: Launched[]): Launched {
  return {
    settled: parts.flatMap((l) => l.settled),
    registrations: parts.reduce((n, l) => n + l.registrations, 0),
  };
}

/** Jobs of one config on new instances: the spot or on-demand fleet, then the fallback's. */
async function launchCold(group: Candidate[]): Promise<Launched> {
  if (group.length === 0) return { settled: [], registrations: 0 };
  const config = group[0]!.config;
  const result: Launched = { settled: [], registrations: 0 };
  const add = (part: Launched) => {
    result.settled.push(...part.settled);
    result.registrations += part.registrations;
  };
  try {
    const byMarket = await marketsFor(config, group);
    const spot = await launchOnMarket(config, "spot", byMarket.spot);
    add(spot);
    add(await launchOnMarket(config, "on-demand", [...byMarket["on-demand"], ...spot.fallback]));
  } catch (error) {
    // Unexpected, before any instance (no subnets configured, …): give back the claims not settled
    // yet, so the retry can claim them again.
    logger.error("launch failed", { config: config.name, error: String(error) });
    const settled = new Set(result.settled.map((s) => s.record.messageId));
    add({
      settled: await pMap(
        group.filter((c) => !settled.has(c.record.messageId)),
        (c) => releaseForRetry(c, `launch failed: ${String(error)}`, 30),
        { concurrency: IO_CONCURRENCY },
      ),
      registrations: 0,
    });
  }
  return result;
}

/**
 * Jobs on started pool members: registered as any launched instance, with its zone (the pool's refill
 * recorded it; looked up only for a member whose zone was not).
 */
async function registerPoolStarts(started: Assignment[]): Promise<Launched> {
  if (started.length === 0) return { settled: [], registrations: 0 };
  const instances = await withZones(started.map((s) => s.instance));
  const settled = await registerAll(started.map((s, i) => ({ job: s.job, instance: instances[i]! })));
  return { settled, registrations: started.length };
}

function registerAll(assigned: Assignment[]): Promise<Settled[]> {
  return pMap(assigned, ({ job, instance }) => registerInstance(job, instance), {
    concurrency: REGISTER_CONCURRENCY,
  });
}

/**
 * The market each job asks for first: the config's policy and the job's past spot failures, unless
 * it must launch on-demand whatever the policy says (the re-run of a job a spot interruption failed,
 * a spotPreferred config whose spot circuit breaker is open: launch-market.ts). If the ledger cannot
 * say, the config's own policy applies.
 */
async function marketsFor(config: LabelConfig, group: Candidate[]): Promise<Record<Market, Candidate[]>> {
  const byMarket: Record<Market, Candidate[]> = { spot: [], "on-demand": [] };
  const overrides = await launchMarketOverrides(
    group.map((c) => c.job),
    config,
  ).catch((error: unknown) => {
    logger.warn("market overrides unreadable; using the spot policy", { error: String(error) });
    return new Map<string, { market: Market; reason: string }>();
  });
  for (const c of group) {
    const override = overrides.get(c.job.jobId);
    if (override) {
      logger.info("launching on-demand despite the spot policy", {
        jobId: c.job.jobId,
        reason: override.reason,
      });
      metrics.addMetric("OnDemandOverrides", MetricUnit.Count, 1);
    }
    byMarket[override?.market ?? initialMarket(config, c.job.spotFailures ?? 0)].push(c);
  }
  return byMarket;
}

/** One CreateFleet for `jobs` on `market`; `fallback`: the jobs to launch on-demand now. */
async function launchOnMarket(
  config: LabelConfig,
  market: Market,
  jobs: Candidate[],
): Promise<Launched & { fallback: Candidate[] }> {
  if (jobs.length === 0) return { settled: [], registrations: 0, fallback: [] };
  const { instances, failure } = await requestFleet(config, market, jobs);
  const { assigned, unserved, surplus } = assignInstances(jobs, instances);
  if (surplus.length)
    await terminateQuietly(
      surplus.map((i) => i.instanceId),
      "surplus",
    );

  const [registered, afterFailure] = await Promise.all([
    registerAll(assigned),
    pMap(
      unserved,
      (c) => {
        const step = decideAfterFailure({
          config,
          market,
          failure: failure?.class ?? "capacity",
          spotFailures: c.job.spotFailures ?? 0,
          attempts: c.job.attempts ?? 1,
          detail: failure?.detail,
        });
        return applyStep(c, step, market);
      },
      { concurrency: IO_CONCURRENCY },
    ),
  ]);
  return {
    settled: [...registered, ...afterFailure.flatMap((a) => ("settled" in a ? [a.settled] : []))],
    // Each instance given a job is registered (or, when its job moved on, not: a token or two left
    // to the refill).
    registrations: assigned.length,
    fallback: afterFailure.flatMap((a) => ("onDemand" in a ? [a.onDemand] : [])),
  };
}

/** The fleet's instances (with their zones), and why there are fewer than jobs, if there are. */
async function requestFleet(
  config: LabelConfig,
  market: Market,
  jobs: Candidate[],
): Promise<{ instances: LaunchedInstance[]; failure?: { class: FailureClass; detail: string } }> {
  const s = settings();
  const request = buildFleetRequest({
    config,
    subnetIds: s.subnetIds,
    market,
    count: jobs.length,
    clientToken: clientTokenFor(
      jobs.map((c) => c.job),
      market,
    ),
    stackName: s.stackName,
  });
  let instances: LaunchedInstance[] = [];
  let failure: { class: FailureClass; detail: string } | undefined;
  // Registration follows the fleet: get GitHub ready while EC2 answers.
  prepareGitHub(jobs.map((c) => c.job.installationId));
  try {
    const fleet = await createFleet(request);
    instances = await withZones(fleet.instances);
    const errorCodes = fleet.errors.map((e) => e.code);
    if (instances.length < jobs.length) {
      failure = { class: classifyFleetErrors(errorCodes), detail: summarize(errorCodes) };
    }
    logger.info("fleet", {
      config: config.name,
      market,
      asked: jobs.length,
      got: instances.length,
      fleetId: fleet.fleetId,
      errors: summarize(errorCodes),
    });
  } catch (error) {
    const code = ec2ErrorCode(error) ?? "Unknown";
    failure = { class: classifyFleetError(code), detail: code };
    logger.warn("CreateFleet failed", { config: config.name, market, asked: jobs.length, code });
  }
  metrics.addMetric(
    market === "spot" ? "SpotInstancesLaunched" : "OnDemandInstancesLaunched",
    MetricUnit.Count,
    instances.length,
  );
  return { instances, failure };
}

/** Fills in availability zones (for the job record; best effort: a launch does not need them). */
async function withZones(instances: LaunchedInstance[]): Promise<LaunchedInstance[]> {
  const missing = instances.filter((i) => !i.availabilityZone).map((i) => i.instanceId);
  if (missing.length === 0) return instances;
  const zones = await instanceZones(missing).catch((error) => {
    logger.warn("could not read instance zones", { error: String(error) });
    return new Map<string, string>();
  });
  return instances.map((i) => (i.availabilityZone ? i : { ...i, availabilityZone: zones.get(i.instanceId) }));
}

/** `InsufficientInstanceCapacity ×6, Unsupported` */
function summarize(list: string[]): string {
  const counts = new Map<string, number>();
  for (const code of list) counts.set(code, (counts.get(code) ?? 0) + 1);
  return [...counts].map(([code, n]) => (n > 1 ? `${code} ×${n}` : code)).join(", ");
}

/** Applies a failure decision to a job: settled, or (updated) to launch on-demand now. */
async function applyStep(
  c: Candidate,
  step: NextStep,
  market: Market,
): Promise<{ settled: Settled } | { onDemand: Candidate }> {
  const jobId = c.job.jobId;
  try {
    if (step.kind === "on-demand-now") {
      metrics.addMetric("SpotFallbacks", MetricUnit.Count, 1);
      const job = await updateJobFields(jobId, {
        inStates: ["launching"],
        add: { spotFailures: 1, attempts: 1 },
        set: { reason: "no spot capacity: launching on-demand" },
      });
      return job ? { onDemand: { ...c, job } } : { settled: done(c) };
    }
    if (step.kind === "fail") {
      logger.error("launch failed for good", { jobId, config: c.config.name, market, reason: step.reason });
      metrics.addMetric("LaunchConfigurationErrors", MetricUnit.Count, 1);
      await transitionJob(jobId, "failed", {
        set: { reason: step.reason, completedAt: new Date().toISOString() },
      });
      return { settled: done(c) };
    }
    return { settled: await releaseForRetry(c, step.reason, step.delaySeconds, step.countSpotFailure) };
  } catch (error) {
    // The ledger write failed: the job stays `launching` until the reconciler releases it.
    logger.error("could not record a failed launch", { jobId, error: String(error) });
    return { settled: retryAfter(c, 60) };
  }
}
