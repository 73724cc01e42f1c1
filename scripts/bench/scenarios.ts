/**
 * Scenarios 1–3: the webhook and launcher bundles against the modeled sandbox. Each returns plain
 * figures; times are milliseconds or seconds of the process clock (scaled in long runs, see clock.ts).
 */
import type { FaultRequest } from "../../test/sandbox/index";
import { LAUNCHER_EVENT_SOURCE, LaunchEventSource, MODEL, startWorld, type World } from "./world";

const FIRST_BURST_JOB = 100_000;

type EventSourceSettings = { batchSize: number; windowSeconds: number; maxConcurrency: number };

export interface AckResult {
  ackP50Ms: number;
  ackP99Ms: number;
  deliveries: number;
  non2xx: number;
}

/** Scenario 1a: webhook answer times over `deliveries` sequential signed deliveries of new jobs. */
export async function ackLatency(
  bundleDir: string,
  deliveries: number,
  env?: Record<string, string>,
): Promise<AckResult> {
  const world = await startWorld({ bundleDir, env });
  try {
    const webhook = await world.webhook();
    // One warm-up delivery: the first pays for the lazily loaded SDK chunks (scenario 4 measures it).
    await webhook.invoke(await world.queuedEvent(1));
    const times: number[] = [];
    let non2xx = 0;
    for (let i = 0; i < deliveries; i++) {
      const event = await world.queuedEvent(10_000 + i, i);
      const { result: response, ms } = await webhook.invokeTimed(event);
      times.push(ms);
      if (!response.statusCode || response.statusCode >= 300) non2xx++;
    }
    return {
      ackP50Ms: round(percentile(times, 50)),
      ackP99Ms: round(percentile(times, 99)),
      deliveries,
      non2xx,
    };
  } finally {
    await world.close();
  }
}

export interface OneJobResult {
  queuedToFleetMs: number;
  queuedToHandoffMs: number;
  /** The modeled API time on the critical path (webhook, SQS, CreateFleet, GitHub token + JIT, hand-off). */
  modeledPathMs: number;
  /** Every call after the delivery: `+ms service operation` (answer times). */
  timeline: string[];
}

/** Scenario 1b: one job from its delivery to CreateFleet and to its JIT config in the hand-off table. */
export async function oneJob(
  bundleDir: string,
  eventSource: EventSourceSettings = LAUNCHER_EVENT_SOURCE,
  env?: Record<string, string>,
): Promise<OneJobResult> {
  const world = await startWorld({ bundleDir, env });
  const source = new LaunchEventSource(world, eventSource);
  try {
    const webhook = await world.webhook();
    await source.start();
    const event = await world.queuedEvent(4242);
    const queuedAt = Date.now();
    const response = await webhook.invoke(event);
    if (response.statusCode !== 202) throw new Error(`webhook answered ${response.statusCode}`);
    await waitFor(() => world.handedOffJobs() >= 1, 60_000);
    const fleet = world.sandbox.callsTo("ec2", "CreateFleet")[0];
    const { handoffs } = await world.snapshot();
    const handoff = handoffs[0];
    if (!fleet || !handoff) throw new Error("the job was not launched");
    return {
      // A call is recorded when answered; it was sent the modeled service time earlier.
      queuedToFleetMs: round(fleet.at - MODEL.createFleetMs - queuedAt),
      queuedToHandoffMs: round(Date.parse(handoff.createdAt) - queuedAt),
      modeledPathMs: modeledCriticalPath(),
      timeline: world.sandbox.calls
        .filter((c) => c.at >= queuedAt)
        .map((c) => `+${c.at - queuedAt} ${c.service} ${c.operation}${c.errorCode ? ` ${c.errorCode}` : ""}`),
    };
  } finally {
    await source.stop();
    await world.close();
  }
}

/**
 * API time one job cannot avoid: webhook (put, send, update), the launcher's reads and claim
 * (label configs, job, active jobs twice, claim), CreateFleet, record, installation token, JIT,
 * hand-off write. DescribeInstances is skipped when CreateFleet names the zones.
 */
export function modeledCriticalPath(): number {
  const ddb = MODEL.dynamodbMs;
  return (
    3 * ddb +
    MODEL.sqsMs +
    MODEL.ssmMs +
    ddb * 4 +
    MODEL.createFleetMs +
    ddb +
    2 * MODEL.githubMs +
    ddb +
    MODEL.sqsMs
  );
}

export interface BurstOptions {
  jobs: number;
  /** Deliveries spread evenly over this many seconds. */
  arrivalSeconds: number;
  /** Scenario 3: share of spot CreateFleet requests failing for capacity, and of CreateFleet throttled. */
  faults?: { spotCapacity: number; throttled: number };
  /** Give up after this many seconds (process clock). */
  timeoutSeconds: number;
}

export interface BurstResult {
  seconds: number;
  floorSeconds: number;
  fleetCalls: number;
  githubCallsPerJob: number;
  duplicates: number;
  lost: number;
  handedOff: number;
  /** Deliveries the webhook did not accept (GitHub would not redeliver them by itself). */
  rejected: number;
  onDemandShare: number;
  orphans: number;
  launcherInvocations: number;
  secondaryRateLimits: number;
  ec2Throttled: number;
  /** Jobs without a hand-off at the end (at most 10): where they stopped, and why. */
  unfinished: { jobId: string; state: string; reason?: string; attempts?: number; spotFailures?: number }[];
  /** Seconds after the first delivery by which 10 %, 50 %, 90 % and all jobs were handed off. */
  handoffProgress: Record<string, number>;
}

/** Scenarios 2 and 3: a burst of queued jobs over the label configs, until every one is handed off. */
export async function burst(
  bundleDir: string,
  options: BurstOptions,
  eventSource: EventSourceSettings = LAUNCHER_EVENT_SOURCE,
  env?: Record<string, string>,
): Promise<BurstResult> {
  const world = await startWorld({ bundleDir, env });
  if (options.faults) injectFleetFaults(world, options.faults);
  const source = new LaunchEventSource(world, eventSource);
  try {
    const webhook = await world.webhook();
    await webhook.invoke(await world.queuedEvent(1)); // warm: the SDK chunks load once per environment
    await source.start();
    world.sandbox.faults.clearCalls();
    const events = await Promise.all(
      Array.from({ length: options.jobs }, (_, i) => world.queuedEvent(FIRST_BURST_JOB + i, i)),
    );
    const started = Date.now();
    const spacing = (options.arrivalSeconds * 1000) / options.jobs;
    const acks = events.map(async (event, i) => {
      await sleepUntil(started + i * spacing);
      // GitHub redelivers nothing by itself; a failed delivery is lost unless the reconciler finds it.
      return webhook.invoke(event);
    });
    const responses = await Promise.all(acks);
    const rejected = responses.filter((r) => r.statusCode !== 202).length;
    const deadline = started + options.timeoutSeconds * 1000;
    const inBurst = (jobId: string) => Number(jobId) >= FIRST_BURST_JOB;
    await waitFor(() => world.handedOffJobs(inBurst) >= options.jobs, deadline - Date.now()).catch(
      () => undefined,
    );
    // Let in-flight launcher invocations finish, so nothing is counted half done.
    await source.stop();
    return await summarize(world, options, started, source, rejected);
  } finally {
    await source.stop();
    await world.close();
  }
}

async function summarize(
  world: World,
  options: BurstOptions,
  started: number,
  source: LaunchEventSource,
  rejected: number,
): Promise<BurstResult> {
  const { jobs, handoffs } = await world.snapshot();
  const live = new Set(
    world.sandbox.ec2.instances({ state: ["pending", "running"] }).map((i) => i.instanceId),
  );
  const handoffsByJob = new Map<string, Set<string>>();
  for (const h of handoffs) {
    if (!live.has(h.instanceId)) continue;
    const set = handoffsByJob.get(h.jobId) ?? new Set<string>();
    set.add(h.instanceId);
    handoffsByJob.set(h.jobId, set);
  }
  const burstJobs = jobs.filter((j) => Number(j.jobId) >= FIRST_BURST_JOB);
  const handedOff = burstJobs.filter((j) => handoffsByJob.has(j.jobId));
  const duplicates = [...handoffsByJob.values()].reduce((n, s) => n + Math.max(0, s.size - 1), 0);
  const withHandoff = new Set([...handoffsByJob.values()].flatMap((s) => [...s]));
  const orphans = [...live].filter((id) => !withHandoff.has(id)).length;
  const lastHandoff = Math.max(
    ...handoffs.filter((h) => Number(h.jobId) >= FIRST_BURST_JOB).map((h) => Date.parse(h.createdAt)),
  );
  const handoffTimes = handoffs
    .filter((h) => Number(h.jobId) >= FIRST_BURST_JOB && live.has(h.instanceId))
    .map((h) => (Date.parse(h.createdAt) - started) / 1000);
  const handoffProgress = Object.fromEntries(
    [10, 50, 90, 100].map((p) => [`p${p}`, round(percentile(handoffTimes, p), 1)]),
  );
  const onDemand = handedOff.filter((j) => j.market === "on-demand").length;
  const github = world.sandbox.callsTo("github");
  const complete = handedOff.length === options.jobs;
  return {
    seconds: complete ? round((lastHandoff - started) / 1000, 1) : Number.NaN,
    floorSeconds: round(jitFloorSeconds(options.jobs), 1),
    fleetCalls: world.sandbox.callsTo("ec2", "CreateFleet").length,
    githubCallsPerJob: round(github.length / options.jobs, 2),
    duplicates,
    lost: options.jobs - handedOff.length,
    rejected,
    handedOff: handedOff.length,
    onDemandShare: handedOff.length ? round(onDemand / handedOff.length, 3) : 0,
    orphans,
    launcherInvocations: source.invocations,
    secondaryRateLimits: github.filter((c) => c.errorCode === "secondary_rate_limit").length,
    ec2Throttled: world.sandbox.callsTo("ec2").filter((c) => c.errorCode === "RequestLimitExceeded").length,
    handoffProgress,
    unfinished: burstJobs
      .filter((j) => !handoffsByJob.has(j.jobId))
      .slice(0, 10)
      .map(({ jobId, state, reason, attempts, spotFailures }) => ({
        jobId,
        state,
        reason,
        attempts,
        spotFailures,
      })),
  };
}

/**
 * The least time GitHub's JIT limit allows for `jobs` registrations: the bucket's burst goes at
 * once, the rest at its refill rate; the first registration cannot start before one CreateFleet
 * has answered, and the last is done one GitHub round trip later, then written to the hand-off.
 */
export function jitFloorSeconds(jobs: number): number {
  const paced = Math.max(0, jobs - MODEL.jit.burst) / (MODEL.jit.perMinute / 60);
  return (MODEL.createFleetMs + MODEL.githubMs + MODEL.dynamodbMs) / 1000 + paced;
}

function injectFleetFaults(world: World, faults: { spotCapacity: number; throttled: number }): void {
  // One decision per CreateFleet request (the fake asks once per override of it).
  const capacity = new WeakMap<object, boolean>();
  world.sandbox.faults.fail("ec2", "CreateFleet", "InsufficientInstanceCapacity", {
    when: (request: FaultRequest) => {
      if (request.part?.lifecycle !== "spot") return false;
      const key = request.params as object;
      if (!capacity.has(key)) capacity.set(key, Math.random() < faults.spotCapacity);
      return capacity.get(key)!;
    },
  });
  world.sandbox.faults.fail("ec2", "CreateFleet", "RequestLimitExceeded", {
    when: () => Math.random() < faults.throttled,
  });
}

// ---------------------------------------------------------------------------------------------

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!;
}

export function median(values: number[]): number {
  return percentile(values, 50);
}

export function round(value: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

async function sleepUntil(at: number): Promise<void> {
  const ms = at - Date.now();
  if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
