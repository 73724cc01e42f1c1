/**
 * Scenarios 1–3: the webhook and launcher bundles against the modeled sandbox. Each returns plain
 * figures; times are milliseconds or seconds of the process clock (scaled in long runs, see clock.ts).
 * The jobs' timelines (boot-path.ts) go back to the parent, which adds the bootstrap and the runner.
 */
import type { ScheduledEvent } from "aws-lambda";
import type { FaultRequest } from "../../test/sandbox/index";
import type { JobTimeline } from "./boot-path";
import { type DeliveryStats, WebhookDeliveries } from "./deliveries";
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
  /** Every call after the first job's delivery until its hand-off: `+ms service operation` (answer times). */
  timeline: string[];
  /** Every job's timeline (one job at a time), for queued → running. */
  timelines: JobTimeline[];
}

const FIRST_ONE_JOB = 4242;

/**
 * Scenario 1b: jobs one at a time, each from its delivery to CreateFleet and to its JIT config in
 * the hand-off table. The first one's figures are those of a job after an idle spell.
 */
export async function oneJob(
  bundleDir: string,
  eventSource: EventSourceSettings = LAUNCHER_EVENT_SOURCE,
  env?: Record<string, string>,
  jobs = 1,
): Promise<OneJobResult> {
  const world = await startWorld({ bundleDir, env });
  const source = new LaunchEventSource(world, eventSource);
  try {
    const webhook = await world.webhook();
    await source.start();
    const queuedAt = new Map<string, number>();
    for (let i = 0; i < jobs; i++) {
      const jobId = String(FIRST_ONE_JOB + i);
      const event = await world.queuedEvent(Number(jobId));
      queuedAt.set(jobId, Date.now());
      const response = await webhook.invoke(event);
      if (response.statusCode !== 202) throw new Error(`webhook answered ${response.statusCode}`);
      await waitFor(() => world.handedOffJobs((id) => id === jobId) >= 1, 60_000);
    }
    const first = queuedAt.get(String(FIRST_ONE_JOB))!;
    const fleet = world.sandbox.callsTo("ec2", "CreateFleet")[0];
    const timelines = await jobTimelines(world, queuedAt);
    const handoffAt = timelines[0]?.handoffAt;
    if (!fleet || handoffAt === undefined) throw new Error("the job was not launched");
    return {
      // A call is recorded when answered; it was sent the modeled service time earlier.
      queuedToFleetMs: round(fleet.at - MODEL.createFleetMs - first),
      queuedToHandoffMs: round(handoffAt - first),
      modeledPathMs: modeledCriticalPath(),
      timeline: world.sandbox.calls
        .filter((c) => c.at >= first && c.at <= handoffAt)
        .map((c) => `+${c.at - first} ${c.service} ${c.operation}${c.errorCode ? ` ${c.errorCode}` : ""}`),
      timelines,
    };
  } finally {
    await source.stop();
    await world.close();
  }
}

/**
 * The timelines of the jobs in `queuedAt` that have a hand-off, in job order: each job's first
 * hand-off, and the boot of its instance that EC2 accepted after the job was queued.
 */
export async function jobTimelines(world: World, queuedAt: Map<string, number>): Promise<JobTimeline[]> {
  const { handoffs } = await world.snapshot();
  const firstHandoff = new Map<string, { instanceId: string; at: number }>();
  for (const h of handoffs) {
    const at = Date.parse(h.createdAt);
    const known = firstHandoff.get(h.jobId);
    if (queuedAt.has(h.jobId) && (!known || at < known.at))
      firstHandoff.set(h.jobId, { instanceId: h.instanceId, at });
  }
  const timelines: JobTimeline[] = [];
  for (const [jobId, queued] of [...queuedAt].sort(([a], [b]) => Number(a) - Number(b))) {
    const handoff = firstHandoff.get(jobId);
    const boot =
      handoff && world.sandbox.ec2.instance(handoff.instanceId)?.boots.find((b) => b.requestedAt >= queued);
    if (!handoff || !boot) continue;
    // EC2 accepted the request as it answered; the request left the modeled latency earlier.
    const latency = boot.kind === "launch" ? MODEL.createFleetMs : MODEL.startInstancesMs;
    timelines.push({
      jobId,
      queuedAt: queued,
      requestSentAt: boot.requestedAt - latency,
      boot,
      handoffAt: handoff.at,
    });
  }
  return timelines;
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
  /**
   * Scenario 3: share of spot CreateFleet requests failing for capacity, of CreateFleet throttled,
   * and of deliveries lost before the webhook (the reconciler has GitHub redeliver them).
   */
  faults?: { spotCapacity: number; throttled: number; lostDeliveries: number };
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
  /** First deliveries the webhook did not accept (the reconciler's redelivery recovers them). */
  rejected: number;
  /** GitHub's side: failed deliveries, redeliveries, reconciler runs; how the failed jobs fared. */
  deliveries: DeliveryStats & { recoveredJobs: number; unrecoveredJobs: number; recoverySecondsMax?: number };
  onDemandShare: number;
  orphans: number;
  launcherInvocations: number;
  secondaryRateLimits: number;
  ec2Throttled: number;
  /** Jobs without a hand-off at the end (at most 10): where they stopped, and why. */
  unfinished: { jobId: string; state: string; reason?: string; attempts?: number; spotFailures?: number }[];
  /** Seconds after the first delivery by which 10 %, 50 %, 90 % and all jobs were handed off. */
  handoffProgress: Record<string, number>;
  /** Every handed-off job's timeline, for queued → running (the parent drops it from the details). */
  timelines: JobTimeline[];
}

/**
 * Scenarios 2 and 3: a burst of queued jobs over the label configs, until every one is handed off.
 * GitHub's side runs as in production: failed deliveries are recorded, and the reconciler (every
 * minute) has them redelivered.
 */
export async function burst(
  bundleDir: string,
  options: BurstOptions,
  eventSource: EventSourceSettings = LAUNCHER_EVENT_SOURCE,
  env?: Record<string, string>,
): Promise<BurstResult> {
  const world = await startWorld({ bundleDir, env });
  if (options.faults) injectFleetFaults(world, options.faults);
  const source = new LaunchEventSource(world, eventSource);
  let deliveries: WebhookDeliveries | undefined;
  try {
    const webhook = await world.webhook();
    await webhook.invoke(await world.queuedEvent(1)); // warm: the SDK chunks load once per environment
    const reconciler = await world.environment<ScheduledEvent, unknown>("reconciler");
    await source.start();
    world.sandbox.faults.clearCalls();
    const jobIds = Array.from({ length: options.jobs }, (_, i) => FIRST_BURST_JOB + i);
    const payloads = jobIds.map((jobId, i) => world.queuedPayload(jobId, i));
    deliveries = new WebhookDeliveries(world, webhook, reconciler);
    const lostShare = options.faults?.lostDeliveries ?? 0;
    // Evenly spread, the first one included: ceil(jobs × share) of them, the same in every run.
    const lost = (i: number) => Math.ceil((i + 1) * lostShare) > Math.ceil(i * lostShare);
    const queuedAt = new Map<string, number>();
    const started = Date.now();
    deliveries.startReconciler();
    const spacing = (options.arrivalSeconds * 1000) / options.jobs;
    const statuses = await Promise.all(
      payloads.map(async (payload, i) => {
        await sleepUntil(started + i * spacing);
        queuedAt.set(String(jobIds[i]), Date.now());
        return deliveries!.deliver(payload, `bench-${jobIds[i]}`, lost(i));
      }),
    );
    const deadline = started + options.timeoutSeconds * 1000;
    const inBurst = (jobId: string) => Number(jobId) >= FIRST_BURST_JOB;
    await waitFor(() => world.handedOffJobs(inBurst) >= options.jobs, deadline - Date.now()).catch(
      () => undefined,
    );
    // Let in-flight reconciler runs, redeliveries and launcher invocations finish: nothing half done.
    await deliveries.stop();
    await source.stop();
    const rejected = statuses.filter((status) => status !== 202).length;
    return await summarize(world, { options, started, source, rejected, deliveries, queuedAt });
  } finally {
    await deliveries?.stop();
    await source.stop();
    await world.close();
  }
}

async function summarize(
  world: World,
  run: {
    options: BurstOptions;
    started: number;
    source: LaunchEventSource;
    rejected: number;
    deliveries: WebhookDeliveries;
    queuedAt: Map<string, number>;
  },
): Promise<BurstResult> {
  const { options, started } = run;
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
  const timelines = await jobTimelines(world, run.queuedAt);
  const handoffTimes = timelines.map((t) => (t.handoffAt - started) / 1000);
  const handoffProgress = Object.fromEntries(
    [10, 50, 90, 100].map((p) => [`p${p}`, round(percentile(handoffTimes, p), 1)]),
  );
  const onDemand = handedOff.filter((j) => j.market === "on-demand").length;
  const github = world.sandbox.callsTo("github");
  // The launchers' calls: the JIT registrations and their installation tokens (not the reconciler's reads).
  const launcherGithub = github.filter((c) => /jitconfig|access-token/.test(c.operation));
  const complete = handedOff.length === options.jobs;
  return {
    seconds: complete ? round(Math.max(...handoffTimes), 1) : Number.NaN,
    floorSeconds: round(jitFloorSeconds(options.jobs, options.arrivalSeconds), 1),
    fleetCalls: world.sandbox.callsTo("ec2", "CreateFleet").length,
    githubCallsPerJob: round(launcherGithub.length / options.jobs, 2),
    duplicates,
    lost: options.jobs - handedOff.length,
    rejected: run.rejected,
    deliveries: { ...run.deliveries.stats, ...recovery(run.deliveries, timelines) },
    handedOff: handedOff.length,
    onDemandShare: handedOff.length ? round(onDemand / handedOff.length, 3) : 0,
    orphans,
    launcherInvocations: run.source.invocations,
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
    timelines,
  };
}

/** The jobs whose delivery failed: how many got a hand-off anyway, and the longest time that took. */
function recovery(deliveries: WebhookDeliveries, timelines: JobTimeline[]) {
  const handoffAt = new Map(timelines.map((t) => [t.jobId, t.handoffAt]));
  const recovered: number[] = [];
  for (const [jobId, failedAt] of deliveries.firstFailureAt) {
    const at = handoffAt.get(jobId);
    if (at !== undefined) recovered.push((at - failedAt) / 1000);
  }
  return {
    recoveredJobs: recovered.length,
    unrecoveredJobs: deliveries.firstFailureAt.size - recovered.length,
    ...(recovered.length && { recoverySecondsMax: round(Math.max(...recovered), 1) }),
  };
}

/**
 * The least time GitHub's JIT limit allows for `jobs` registrations delivered evenly over
 * `arrivalSeconds`: a job's registration starts once it has arrived and one CreateFleet has
 * answered, and once the bucket (full at the start, refilled at its rate) holds a token for it; the
 * last is done one GitHub round trip later, then written to the hand-off.
 */
export function jitFloorSeconds(jobs: number, arrivalSeconds: number): number {
  const { burst, perMinute } = MODEL.jit;
  const perMs = perMinute / 60_000;
  let tokens: number = burst;
  let at = 0;
  for (let i = 0; i < jobs; i++) {
    const ready = (i * arrivalSeconds * 1000) / jobs + MODEL.createFleetMs;
    const start = Math.max(ready, at);
    tokens = Math.min(burst, tokens + (start - at) * perMs);
    at = start;
    if (tokens < 1) {
      at += (1 - tokens) / perMs;
      tokens = 1;
    }
    tokens -= 1;
  }
  return (at + MODEL.githubMs + MODEL.dynamodbMs) / 1000;
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

export async function sleepUntil(at: number): Promise<void> {
  const ms = at - Date.now();
  if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
}

export async function waitFor(done: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
