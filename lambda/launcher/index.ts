/**
 * Launcher Lambda (SQS launch queue → EC2 + GitHub), with partial batch responses.
 *
 * For each batch: drop messages whose job is gone or no longer `queued`; time out jobs that waited
 * past the queue timeout; keep jobs over the runner limits waiting in the queue; claim the rest
 * (queued → launching, conditional, so duplicates and concurrent launchers cannot double-launch);
 * then per label config ONE `instant` CreateFleet for all its jobs, the spot fallback per policy
 * (core/fleet.ts decideAfterFailure), and per instance a JIT registration handed off through the
 * hand-off table. A message comes back (batchItemFailures, after a visibility delay) only when its
 * job was released to `queued` for a later try.
 *
 * Limits and concurrency: limits are checked before claiming and again after, counting the byState
 * index's active jobs plus the launchers' register of recent claims (enforceLimitsAfterClaim), which
 * shows racing launchers' claims the lagging index does not yet; the others' claims count first
 * (core/fleet.ts claimsOverLimits), so whoever sees both gives way. The event source's
 * MaximumConcurrency (a few) keeps races rare. GitHub's JIT registrations are paced by one
 * budget shared by every launcher (adapters/github-budget.ts, GITHUB_WRITES_PER_MINUTE per App): a
 * batch launches only as many instances as it was granted registrations, gives back what it did not
 * use, and a rate-limit answer to any launcher holds them all back.
 *
 * Crash points (each leaves a state the reconciler finishes):
 *  1. after a claim, before CreateFleet: job `launching` without instanceId → released after the
 *     launching timeout and re-enqueued.
 *  2. after CreateFleet, before the instance is recorded on its job: instance tagged with the stack
 *     and config but no job names it → reaped as an orphan; job as in 1.
 *  3. after the record, before/while registering with GitHub: job `launching` with instanceId, no
 *     hand-off item → instance terminated, runner (named stack-instanceId) deleted, job released.
 *  4. after the hand-off write, before `launched`: the instance boots and runs; the job moves on
 *     from `launching` when the runner takes it (`running` is allowed from `launching`), or as in 3.
 */
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import pMap from "p-map";
import { registerClaims, unregisterClaims } from "../adapters/claims-register";
import { createFleet, instanceZones, terminateInstances } from "../adapters/ec2";
import { ec2ErrorCode } from "../adapters/ec2-client";
import { holdGitHubWrites, returnGitHubTokens, takeGitHubTokens } from "../adapters/github-budget";
import {
  githubForInstallation,
  githubHeldUntil,
  onGitHubHold,
  prepareGitHub,
} from "../adapters/github-client";
import {
  deleteRunner,
  generateJitConfig,
  type JitConfig,
  listRunners,
  scopeFor,
} from "../adapters/github-runners";
import { writeHandoff } from "../adapters/handoff";
import { listActiveJobs } from "../adapters/job-queries";
import { getJob, transitionJob, updateJobFields } from "../adapters/jobs-table";
import { loadLabelConfigs } from "../adapters/label-configs";
import { delayMessage } from "../adapters/launch-queue";
import {
  allocateSlots,
  assignInstances,
  backoffSeconds,
  buildFleetRequest,
  claimsOverLimits,
  classifyFleetError,
  classifyFleetErrors,
  classifyRegistrationError,
  clientTokenFor,
  decideAfterFailure,
  type FailureClass,
  groupByConfig,
  initialMarket,
  type LaunchedInstance,
  type NextStep,
  queueTimedOut,
  withRecentClaims,
} from "../core/fleet";
import { type RunnerScope, runnerNameFor } from "../core/stack-identity";
import { type JobRecord, type LaunchMessage, type Market, queuedSince } from "../shared/job";
import type { LabelConfig } from "../shared/label-config";
import { settings } from "../shared/settings";
import { logger, MetricUnit, metrics } from "../shared/telemetry";
import { launchMarketOverrides } from "./launch-market";

/** DynamoDB and EC2 calls in flight per invocation. */
const IO_CONCURRENCY = 16;
/** Instances registered with GitHub at once (the GitHub adapter also paces writes per minute). */
const REGISTER_CONCURRENCY = 16;
/** Fields describing an instance, cleared when a job is released to the queue. */
const INSTANCE_FIELDS = ["instanceId", "instanceType", "availabilityZone", "market", "runnerName"] as const;

/** What becomes of one message: acknowledged, or back to the queue after a delay. */
type Outcome = { kind: "done" } | { kind: "retry"; delaySeconds: number };
const DONE: Outcome = { kind: "done" };

interface Entry {
  record: SQSRecord;
  message: LaunchMessage;
}

interface Candidate extends Entry {
  job: JobRecord;
  config: LabelConfig;
}

const configOf = (c: Candidate) => c.config.name;

/** JIT registrations an invocation was granted, and how many it started. */
interface Registrations {
  granted: number;
  started: number;
}

// GitHub's rate-limit answer to this launcher holds every launcher back.
onGitHubHold((until) => holdGitHubWrites(until));

export async function handler(event: SQSEvent): Promise<SQSBatchResponse> {
  const outcomes = new Map<string, Outcome>();
  try {
    await launchBatch(event.Records, outcomes);
  } finally {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
  const failures = event.Records.filter((r) => outcomes.get(r.messageId)?.kind === "retry");
  await pMap(
    failures,
    async (record) => {
      const outcome = outcomes.get(record.messageId) as Extract<Outcome, { kind: "retry" }>;
      try {
        await delayMessage(record.receiptHandle, outcome.delaySeconds);
      } catch (error) {
        // The message still comes back, after the queue's visibility timeout.
        logger.warn("could not delay a launch message", {
          messageId: record.messageId,
          error: String(error),
        });
      }
    },
    { concurrency: IO_CONCURRENCY },
  );
  return { batchItemFailures: failures.map((r) => ({ itemIdentifier: r.messageId })) };
}

async function launchBatch(records: SQSRecord[], outcomes: Map<string, Outcome>): Promise<void> {
  const now = new Date();
  const s = settings();

  // Parse, and keep one message per job (a duplicate is acknowledged: its job is handled once).
  const entries: Entry[] = [];
  const seen = new Set<string>();
  for (const record of records) {
    const message = parseMessage(record.body);
    if (!message || seen.has(message.jobId)) {
      if (!message) logger.error("dropping a malformed launch message", { messageId: record.messageId });
      outcomes.set(record.messageId, DONE);
      continue;
    }
    seen.add(message.jobId);
    entries.push({ record, message });
  }

  // Read the jobs and decide who may launch at all.
  const configs = await loadLabelConfigs();
  const candidates: Candidate[] = [];
  await pMap(
    entries,
    async (entry) => {
      const job = await getJob(entry.message.jobId);
      const outcome = await screen(entry, job, configs, now);
      if (outcome) outcomes.set(entry.record.messageId, outcome);
      else
        candidates.push({
          ...entry,
          job: job as JobRecord,
          config: configs.get((job as JobRecord).configName)!,
        });
    },
    { concurrency: IO_CONCURRENCY },
  );
  if (candidates.length === 0) return;

  // No more instances than GitHub lets us register now (each needs one JIT registration): an
  // instance waiting minutes for its registration costs money and may time out. The budget is
  // GitHub's per App, shared with the other launchers (taken while the limits are read: one round
  // trip less; what the limits leave unused is given back below). A hold GitHub told this process
  // of counts even if it could not be recorded for the others.
  const takenAt = Date.now();
  const [active, grant] = await Promise.all([
    listActiveJobs(),
    takenAt < githubHeldUntil()
      ? { granted: 0, perMinute: s.githubWritesPerMinute, nextAt: githubHeldUntil() }
      : takeGitHubTokens(candidates.length, takenAt),
  ]);
  const registrations: Registrations = { granted: grant.granted, started: 0 };

  // Limits before claiming: jobs beyond them wait in the queue.
  const byConfig = groupByConfig(
    candidates.sort((a, b) => queuedSince(a.job).localeCompare(queuedSince(b.job))),
    configOf,
  );
  const slots = allocateSlots(
    [...byConfig.values()].map((group) => ({
      configName: group[0]!.config.name,
      maxRunners: group[0]!.config.maxRunners,
      wanted: group.length,
    })),
    activeCounts(active),
    s.maxRunnersTotal,
  );
  const withinLimits: Candidate[] = [];
  for (const [configName, group] of byConfig) {
    const n = slots.get(configName) ?? 0;
    withinLimits.push(...group.slice(0, n));
    for (const waiting of group.slice(n)) outcomes.set(waiting.record.messageId, limitWait(waiting.record));
  }

  // Within the limits, the jobs beyond the grant wait for about the time the budget needs.
  const waitSeconds = Math.max(0, grant.nextAt - takenAt) / 1000;
  withinLimits.sort((a, b) => queuedSince(a.job).localeCompare(queuedSince(b.job)));
  const admitted = withinLimits.slice(0, grant.granted);
  withinLimits.slice(grant.granted).forEach((waiting, i) => {
    const seconds = Math.ceil(waitSeconds + ((i + 1) * 60) / Math.max(1, grant.perMinute));
    outcomes.set(waiting.record.messageId, {
      kind: "retry",
      delaySeconds: Math.min(300, Math.max(2, Math.round(seconds * (1 + Math.random() * 0.2)))),
    });
  });
  if (admitted.length < withinLimits.length) {
    logger.info("waiting for GitHub registration budget", { waiting: withinLimits.length - admitted.length });
  }

  // Claim: queued → launching. Losing the race means someone else has the job. The claim time is
  // the write's own time: racing launchers rank claims by it (claimsOverLimits).
  const claimed: Candidate[] = [];
  await pMap(
    admitted,
    async (candidate) => {
      const at = new Date();
      const job = await transitionJob(candidate.job.jobId, "launching", {
        set: { launchingAt: at.toISOString() },
        add: { attempts: 1 },
        now: at,
      });
      if (job) claimed.push({ ...candidate, job });
      else outcomes.set(candidate.record.messageId, DONE);
    },
    { concurrency: IO_CONCURRENCY },
  );

  // Limits after claiming: a concurrent launcher may have claimed too. Give back ours ranked over a limit.
  const keep = await enforceLimitsAfterClaim(claimed, outcomes);

  await Promise.all(
    [...groupByConfig(keep, configOf).values()].map(async (group) => {
      const config = group[0]!.config;
      try {
        await launchGroup(config, group, outcomes, registrations);
      } catch (error) {
        // Unexpected, before any instance (no subnets configured, …): give back the claims not
        // settled yet, so the retry can claim them again.
        logger.error("launch failed", { config: config.name, error: String(error) });
        const unsettled = group.filter((c) => !outcomes.has(c.record.messageId));
        await pMap(
          unsettled,
          async (c) =>
            outcomes.set(c.record.messageId, await releaseForRetry(c, `launch failed: ${String(error)}`, 30)),
          { concurrency: IO_CONCURRENCY },
        );
      }
    }),
  );

  // Claims released for a later try stop counting against the limits now, not when they expire.
  await forgetClaims(keep.filter((c) => outcomes.get(c.record.messageId)?.kind === "retry"));

  // Registrations granted for jobs that got no instance (claims lost or over the limits, no
  // capacity) go back to the other launchers now rather than at the next refill: one write, only
  // when some are left.
  const unused = registrations.granted - registrations.started;
  if (unused > 0) await returnGitHubTokens(unused);
}

function parseMessage(body: string): LaunchMessage | undefined {
  try {
    const value = JSON.parse(body) as Partial<LaunchMessage>;
    if (typeof value.jobId === "string" && typeof value.configName === "string") {
      return { jobId: value.jobId, configName: value.configName };
    }
  } catch {
    // fall through
  }
  return undefined;
}

function activeCounts(active: { configName: string }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const job of active) counts.set(job.configName, (counts.get(job.configName) ?? 0) + 1);
  return counts;
}

/** Settles a message that must not launch (undefined: it may). */
async function screen(
  entry: Entry,
  job: JobRecord | undefined,
  configs: Map<string, LabelConfig>,
  now: Date,
): Promise<Outcome | undefined> {
  const { jobId } = entry.message;
  if (!job) {
    logger.warn("launch message for an unknown job", { jobId });
    return DONE;
  }
  if (job.state !== "queued") return DONE;
  const config = configs.get(job.configName);
  if (!config) {
    await transitionJob(jobId, "failed", { set: { reason: `no label config named ${job.configName}` }, now });
    return DONE;
  }
  if (settings().githubAuthMode === "app" && !job.installationId) {
    // Nothing to register the runner with: do not launch an instance for it.
    await transitionJob(jobId, "failed", {
      set: { reason: "the job has no GitHub App installation id" },
      now,
    });
    return DONE;
  }
  const timeout = settings().queueTimeoutMinutes;
  if (queueTimedOut(queuedSince(job), now, timeout)) {
    const last = job.reason ? `; last: ${job.reason}` : "";
    await transitionJob(jobId, "timed-out", {
      set: {
        reason: `no runner within the queue timeout (${timeout} min)${last}`,
        completedAt: now.toISOString(),
      },
      now,
    });
    metrics.addMetric("JobsTimedOut", MetricUnit.Count, 1);
    return DONE;
  }
  return undefined;
}

/** Delay for a job waiting for a free runner slot: grows with the message's receives. */
function limitWait(record: SQSRecord): Outcome {
  const receives = Number(record.attributes?.ApproximateReceiveCount ?? 1);
  return { kind: "retry", delaySeconds: backoffSeconds(receives, { baseSeconds: 10, capSeconds: 120 }) };
}

/**
 * Limits after claiming. The byState index may not show the latest claims yet (its own or other
 * launchers'), so the claims also go into the launchers' register, which returns every recent claim
 * in the same atomic write: of two launchers claiming at once, the later writer sees the earlier's
 * claims and, counting the others' first (claimsOverLimits), gives way. Without the register (a failed
 * write) the index alone is used, as the best remaining view.
 */
async function enforceLimitsAfterClaim(
  claimed: Candidate[],
  outcomes: Map<string, Outcome>,
): Promise<Candidate[]> {
  if (claimed.length === 0) return claimed;
  const maxRunners = new Map(claimed.map((c) => [c.config.name, c.config.maxRunners]));
  const claims = claimed.map((c) => ({
    jobId: c.job.jobId,
    configName: c.config.name,
    state: "launching" as const,
    launchingAt: c.job.launchingAt,
  }));
  const [indexed, registered] = await Promise.all([
    listActiveJobs(),
    registerClaims(claims, new Date()).catch((error: unknown) => {
      logger.warn("could not register claims; limits from the index alone", { error: String(error) });
      return [];
    }),
  ]);
  const giveBack = claimsOverLimits(
    withRecentClaims(indexed, registered),
    new Set(claimed.map((c) => c.job.jobId)),
    (configName) => maxRunners.get(configName) ?? Number.POSITIVE_INFINITY,
    settings().maxRunnersTotal,
  );
  if (giveBack.size === 0) return claimed;
  const back = claimed.filter((c) => giveBack.has(c.job.jobId));
  await pMap(
    back,
    async (c) => {
      await transitionJob(c.job.jobId, "queued", {
        set: { reason: "waiting for a free runner slot" },
        remove: ["launchingAt"],
        add: { attempts: -1 },
      });
      outcomes.set(c.record.messageId, limitWait(c.record));
    },
    { concurrency: IO_CONCURRENCY },
  );
  logger.info("gave back claims over the runner limits", { count: back.length });
  await forgetClaims(back);
  return claimed.filter((c) => !giveBack.has(c.job.jobId));
}

/** Takes claims given back or released out of the register (best effort: they expire anyway). */
async function forgetClaims(candidates: Candidate[]): Promise<void> {
  await unregisterClaims(candidates.map((c) => c.job.jobId)).catch((error: unknown) => {
    logger.warn("could not take released claims out of the register; they expire", { error: String(error) });
  });
}

// ---------------------------------------------------------------------------------------------
// One label config's jobs

/**
 * Launches a config's claimed jobs: spot first (or on-demand, per policy and past spot failures),
 * then on-demand for the jobs the spot fallback moved there in this invocation.
 */
async function launchGroup(
  config: LabelConfig,
  group: Candidate[],
  outcomes: Map<string, Outcome>,
  registrations: Registrations,
): Promise<void> {
  const byMarket: Record<Market, Candidate[]> = { spot: [], "on-demand": [] };
  const overrides = await marketOverridesFor(config, group);
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

  const fallback = await launchOnMarket(config, "spot", byMarket.spot, outcomes, registrations);
  await launchOnMarket(config, "on-demand", [...byMarket["on-demand"], ...fallback], outcomes, registrations);
}

/**
 * Jobs that must launch on-demand whatever the config's spot policy says: the re-run of a job a spot
 * interruption failed, and a spotPreferred config whose spot circuit breaker is open (both decided in
 * core/lifecycle.ts). If the ledger cannot say, the config's own policy applies.
 */
async function marketOverridesFor(
  config: LabelConfig,
  group: Candidate[],
): Promise<Map<string, { market: Market; reason: string }>> {
  try {
    return await launchMarketOverrides(
      group.map((c) => c.job),
      config,
    );
  } catch (error) {
    logger.warn("market overrides unreadable; using the spot policy", { error: String(error) });
    return new Map();
  }
}

/** One CreateFleet for `jobs` on `market`; returns the jobs to launch on-demand now. */
async function launchOnMarket(
  config: LabelConfig,
  market: Market,
  jobs: Candidate[],
  outcomes: Map<string, Outcome>,
  registrations: Registrations,
): Promise<Candidate[]> {
  if (jobs.length === 0) return [];
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

  const { assigned, unserved, surplus } = assignInstances(jobs, instances);
  // Each instance given a job is registered (or, when its job moved on, not: a token or two
  // left to the refill).
  registrations.started += assigned.length;
  if (surplus.length)
    await terminateQuietly(
      surplus.map((i) => i.instanceId),
      "surplus",
    );

  const fallback: Candidate[] = [];
  await Promise.all([
    pMap(
      assigned,
      async ({ job, instance }) => {
        const outcome = await registerInstance(config, job, instance).catch(async (error: unknown) => {
          // Unexpected (each step handles its own failures): no instance stays unregistered.
          logger.error("registration failed unexpectedly", { jobId: job.job.jobId, error: String(error) });
          await terminateQuietly([instance.instanceId], "unexpected error");
          return releaseAfterRegistrationFailure(job, "registration failed unexpectedly");
        });
        outcomes.set(job.record.messageId, outcome);
      },
      { concurrency: REGISTER_CONCURRENCY },
    ),
    pMap(
      unserved,
      async (c) => {
        const step = decideAfterFailure({
          config,
          market,
          failure: failure?.class ?? "capacity",
          spotFailures: c.job.spotFailures ?? 0,
          attempts: c.job.attempts ?? 1,
          detail: failure?.detail,
        });
        try {
          const next = await applyStep(c, step, market, outcomes);
          if (next) fallback.push(next);
        } catch (error) {
          // The ledger write failed: the job stays `launching` until the reconciler releases it.
          logger.error("could not record a failed launch", { jobId: c.job.jobId, error: String(error) });
          outcomes.set(c.record.messageId, { kind: "retry", delaySeconds: 60 });
        }
      },
      { concurrency: IO_CONCURRENCY },
    ),
  ]);
  return fallback;
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

/** Applies a failure decision to a job; returns it (updated) when it launches on-demand now. */
async function applyStep(
  c: Candidate,
  step: NextStep,
  market: Market,
  outcomes: Map<string, Outcome>,
): Promise<Candidate | undefined> {
  const jobId = c.job.jobId;
  if (step.kind === "on-demand-now") {
    metrics.addMetric("SpotFallbacks", MetricUnit.Count, 1);
    const job = await updateJobFields(jobId, {
      inStates: ["launching"],
      add: { spotFailures: 1, attempts: 1 },
      set: { reason: "no spot capacity: launching on-demand" },
    });
    if (!job) {
      outcomes.set(c.record.messageId, DONE);
      return undefined;
    }
    return { ...c, job };
  }
  if (step.kind === "fail") {
    logger.error("launch failed for good", { jobId, config: c.config.name, market, reason: step.reason });
    metrics.addMetric("LaunchConfigurationErrors", MetricUnit.Count, 1);
    await transitionJob(jobId, "failed", {
      set: { reason: step.reason, completedAt: new Date().toISOString() },
    });
    outcomes.set(c.record.messageId, DONE);
    return undefined;
  }
  outcomes.set(
    c.record.messageId,
    await releaseForRetry(c, step.reason, step.delaySeconds, step.countSpotFailure),
  );
  return undefined;
}

/** Back to `queued` with the reason; its message returns after `delaySeconds`. */
async function releaseForRetry(
  c: Candidate,
  reason: string,
  delaySeconds: number,
  countSpotFailure = false,
): Promise<Outcome> {
  try {
    await transitionJob(c.job.jobId, "queued", {
      set: { reason },
      remove: [...INSTANCE_FIELDS],
      ...(countSpotFailure ? { add: { spotFailures: 1 } } : {}),
    });
  } catch (error) {
    // Still launching: the reconciler releases it after the launching timeout.
    logger.error("could not release a job", { jobId: c.job.jobId, error: String(error) });
  }
  return { kind: "retry", delaySeconds };
}

// ---------------------------------------------------------------------------------------------
// One instance

/**
 * Records the instance on its job, registers a JIT runner for it and hands the config off; on a
 * failure the instance is terminated and the job released, so no instance runs unregistered.
 */
async function registerInstance(
  config: LabelConfig,
  c: Candidate,
  instance: LaunchedInstance,
): Promise<Outcome> {
  const { jobId } = c.job;
  const { instanceId } = instance;
  const s = settings();
  const runnerName = runnerNameFor(s.stackName, instanceId);

  const recorded = await updateJobFields(jobId, {
    inStates: ["launching"],
    set: {
      instanceId,
      instanceType: instance.instanceType,
      availabilityZone: instance.availabilityZone,
      market: instance.market,
      runnerName,
    },
  }).catch((error: unknown) => error as Error);
  if (recorded instanceof Error) {
    logger.error("could not record an instance", { jobId, instanceId, error: String(recorded) });
    await terminateQuietly([instanceId], "not recorded");
    return releaseAfterRegistrationFailure(c, "could not record the instance");
  }
  if (!recorded) {
    // The job moved on meanwhile (cancelled, or timed out by the reconciler): nobody needs this one.
    await terminateQuietly([instanceId], "job moved on");
    return DONE;
  }

  const scope = scopeFor(c.job);
  let jit: JitConfig;
  try {
    jit = await registerRunner(c.job, scope, config, runnerName);
  } catch (error) {
    const failure = error as {
      status?: number;
      message?: string;
      response?: { headers?: Record<string, string> };
    };
    const { status } = failure;
    logger.warn("JIT registration failed", { jobId, instanceId, status, error: String(error) });
    metrics.addMetric("JitRegistrationFailures", MetricUnit.Count, 1);
    await terminateQuietly([instanceId], "no JIT config");
    const reason = `JIT registration failed${status ? ` (HTTP ${status})` : ""}`;
    if (classifyRegistrationError({ ...failure, headers: failure.response?.headers }) === "fail") {
      await transitionJob(jobId, "failed", {
        set: { reason: `${reason}: GitHub refused it; check the App's permissions and the runner scope` },
        remove: [...INSTANCE_FIELDS],
      }).catch((e) => logger.error("could not fail a job", { jobId, error: String(e) }));
      return DONE;
    }
    return releaseAfterRegistrationFailure(c, reason);
  }

  try {
    await writeHandoff({ instanceId, jobId, jitConfig: jit.encodedJitConfig, runnerName });
  } catch (error) {
    logger.error("hand-off write failed", { jobId, instanceId, error: String(error) });
    await terminateQuietly([instanceId], "no hand-off");
    await githubForInstallation(c.job.installationId)
      .then((gh) => deleteRunner(gh, scope, jit.runnerId))
      .catch(() => undefined);
    return releaseAfterRegistrationFailure(c, "hand-off write failed");
  }

  const launched = await transitionJob(jobId, "launched", {
    set: { launchedAt: new Date().toISOString(), runnerId: jit.runnerId },
  }).catch(() => undefined);
  if (!launched) {
    // Already `running` (the runner was quicker than us) or ended: the instance is registered and
    // runs one job or idles out; the reconciler reaps it if needed.
    logger.info("job moved on before launched was recorded", { jobId, instanceId });
  }
  metrics.addMetric("JobsLaunched", MetricUnit.Count, 1);
  // Queued (recorded by the webhook) to JIT config handed off: what a workflow author waits for,
  // less the instance's boot. The dashboard shows its p50/p95.
  const queuedAt = Date.parse(queuedSince(c.job));
  if (Number.isFinite(queuedAt)) {
    metrics.addMetric("LaunchLatency", MetricUnit.Milliseconds, Math.max(0, Date.now() - queuedAt));
  }
  return DONE;
}

/** generate-jitconfig; a name already taken (409: an earlier try registered it) is freed once. */
async function registerRunner(
  job: JobRecord,
  scope: RunnerScope,
  config: LabelConfig,
  runnerName: string,
): Promise<JitConfig> {
  const gh = await githubForInstallation(job.installationId);
  const request = {
    name: runnerName,
    runnerGroupId: config.runnerGroupId,
    labels: job.labels.length ? job.labels : config.labels,
  };
  try {
    return await generateJitConfig(gh, scope, request);
  } catch (error) {
    if ((error as { status?: number }).status !== 409) throw error;
    for (const runner of await listRunners(gh, scope, { name: runnerName })) {
      if (runner.name === runnerName) await deleteRunner(gh, scope, runner.id);
    }
    return generateJitConfig(gh, scope, request);
  }
}

function releaseAfterRegistrationFailure(c: Candidate, reason: string): Promise<Outcome> {
  return releaseForRetry(c, reason, backoffSeconds(c.job.attempts ?? 1));
}

async function terminateQuietly(instanceIds: string[], why: string): Promise<void> {
  try {
    await terminateInstances(instanceIds);
    logger.info("terminated instances", { why, instanceIds });
  } catch (error) {
    // Left for the reconciler's orphan reaping (stack-tagged instance without a live job).
    logger.error("could not terminate instances", { why, instanceIds, error: String(error) });
  }
}
