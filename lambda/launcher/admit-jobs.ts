/**
 * Which of a batch's jobs launch now. In order: read the jobs (a job gone or no longer `queued` is
 * someone else's; one that cannot launch fails; one that waited past the queue timeout times out),
 * keep those over the runner limits or beyond the GitHub grant waiting in the queue, claim the rest
 * (queued → launching, conditional, so duplicates and concurrent launchers cannot double-launch),
 * and check the limits again with the claims register (giveBackOverLimits). The decisions are
 * core/admission.ts's.
 */
import type { SQSRecord } from "aws-lambda";
import pMap from "p-map";
import { registerClaims, unregisterClaims } from "../adapters/claims-register";
import { listActiveJobs } from "../adapters/job-queries";
import { getJob, transitionJob } from "../adapters/jobs-table";
import { loadLabelConfigs } from "../adapters/label-configs";
import {
  activeCounts,
  allocateSlots,
  budgetWaitSeconds,
  claimsOverLimits,
  queueTimedOut,
  withRecentClaims,
} from "../core/admission";
import { groupByConfig } from "../core/fleet-request";
import { backoffSeconds } from "../core/spot-fallback";
import { type JobRecord, queuedSince } from "../shared/job";
import type { LabelConfig } from "../shared/label-config";
import { settings } from "../shared/settings";
import { logger, MetricUnit, metrics } from "../shared/telemetry";
import {
  type Candidate,
  configOf,
  done,
  IO_CONCURRENCY,
  type LaunchEntry,
  retryAfter,
  type Settled,
  type StepResult,
} from "./batch-records";
import { type Grant, takeRegistrations } from "./github-grants";

const oldestFirst = (a: Candidate, b: Candidate) => queuedSince(a.job).localeCompare(queuedSince(b.job));

/** Reads each entry's job: the candidates that may launch; every other message settled. */
export async function screenJobs(entries: LaunchEntry[]): Promise<StepResult> {
  const now = new Date();
  const configs = await loadLabelConfigs();
  const settled: Settled[] = [];
  const next: Candidate[] = [];
  await pMap(
    entries,
    async (entry) => {
      const candidate = await asCandidate(entry, await getJob(entry.message.jobId), configs, now);
      if (candidate) next.push(candidate);
      else settled.push(done(entry));
    },
    { concurrency: IO_CONCURRENCY },
  );
  return { settled, next };
}

/** The entry as a candidate if its job may launch; a job that may not is left or ended here. */
async function asCandidate(
  entry: LaunchEntry,
  job: JobRecord | undefined,
  configs: Map<string, LabelConfig>,
  now: Date,
): Promise<Candidate | undefined> {
  const { jobId } = entry.message;
  if (!job) {
    logger.warn("launch message for an unknown job", { jobId });
    return undefined;
  }
  if (job.state !== "queued") return undefined;
  const config = configs.get(job.configName);
  if (!config) {
    await transitionJob(jobId, "failed", { set: { reason: `no label config named ${job.configName}` }, now });
    return undefined;
  }
  if (settings().githubAuthMode === "app" && !job.installationId) {
    // Nothing to register the runner with: do not launch an instance for it.
    await transitionJob(jobId, "failed", {
      set: { reason: "the job has no GitHub App installation id" },
      now,
    });
    return undefined;
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
    return undefined;
  }
  return { ...entry, job, config };
}

/**
 * Limits before claiming, and the GitHub grant: jobs beyond the limits wait for a free slot, jobs
 * beyond the grant for about the time the budget needs. No more instances than GitHub lets us
 * register now (each needs one JIT registration): an instance waiting minutes for its registration
 * costs money and may time out. The grant is taken while the limits are read (one round trip less;
 * what the batch does not use is given back at its end).
 */
export async function admitWithinLimits(candidates: Candidate[]): Promise<StepResult & { grant: Grant }> {
  const [active, grant] = await Promise.all([listActiveJobs(), takeRegistrations(candidates.length)]);
  const byConfig = groupByConfig(candidates.sort(oldestFirst), configOf);
  const slots = allocateSlots(
    [...byConfig.values()].map((group) => ({
      configName: group[0]!.config.name,
      maxRunners: group[0]!.config.maxRunners,
      wanted: group.length,
    })),
    activeCounts(active),
    settings().maxRunnersTotal,
  );
  const settled: Settled[] = [];
  const withinLimits: Candidate[] = [];
  for (const [configName, group] of byConfig) {
    const n = slots.get(configName) ?? 0;
    withinLimits.push(...group.slice(0, n));
    settled.push(...group.slice(n).map(limitWait));
  }

  withinLimits.sort(oldestFirst);
  const waiting = withinLimits.slice(grant.granted);
  settled.push(...waiting.map((c, i) => retryAfter(c, budgetWaitSeconds(i, grant, grant.askedAt))));
  if (waiting.length > 0) logger.info("waiting for GitHub registration budget", { waiting: waiting.length });
  return { settled, next: withinLimits.slice(0, grant.granted), grant };
}

/**
 * Claims each job: queued → launching. Losing the race means someone else has the job. The claim
 * time is the write's own time: racing launchers rank claims by it (claimsOverLimits).
 */
export async function claimJobs(admitted: Candidate[]): Promise<StepResult> {
  const settled: Settled[] = [];
  const next: Candidate[] = [];
  await pMap(
    admitted,
    async (candidate) => {
      const at = new Date();
      const job = await transitionJob(candidate.job.jobId, "launching", {
        set: { launchingAt: at.toISOString() },
        add: { attempts: 1 },
        now: at,
      });
      if (job) next.push({ ...candidate, job });
      else settled.push(done(candidate));
    },
    { concurrency: IO_CONCURRENCY },
  );
  return { settled, next };
}

/**
 * Limits after claiming: a concurrent launcher may have claimed too, so ours ranked over a limit go
 * back to `queued`. The byState index may not show the latest claims yet (its own or other
 * launchers'), so the claims also go into the launchers' register, which returns every recent claim
 * in the same atomic write: of two launchers claiming at once, the later writer sees the earlier's
 * claims and, counting the others' first (claimsOverLimits), gives way. Without the register (a
 * failed write) the index alone is used, as the best remaining view.
 */
export async function giveBackOverLimits(claimed: Candidate[]): Promise<StepResult> {
  if (claimed.length === 0) return { settled: [], next: claimed };
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
  if (giveBack.size === 0) return { settled: [], next: claimed };
  const back = claimed.filter((c) => giveBack.has(c.job.jobId));
  const settled = await pMap(
    back,
    async (c) => {
      await transitionJob(c.job.jobId, "queued", {
        set: { reason: "waiting for a free runner slot" },
        remove: ["launchingAt"],
        add: { attempts: -1 },
      });
      return limitWait(c);
    },
    { concurrency: IO_CONCURRENCY },
  );
  logger.info("gave back claims over the runner limits", { count: back.length });
  await forgetClaims(back);
  return { settled, next: claimed.filter((c) => !giveBack.has(c.job.jobId)) };
}

/** Takes claims given back or released out of the register (best effort: they expire anyway). */
export async function forgetClaims(candidates: Candidate[]): Promise<void> {
  await unregisterClaims(candidates.map((c) => c.job.jobId)).catch((error: unknown) => {
    logger.warn("could not take released claims out of the register; they expire", { error: String(error) });
  });
}

/** A job waiting for a free runner slot: its delay grows with the message's receives. */
function limitWait(c: { record: SQSRecord }): Settled {
  const receives = Number(c.record.attributes?.ApproximateReceiveCount ?? 1);
  return retryAfter(c, backoffSeconds(receives, { baseSeconds: 10, capSeconds: 120 }));
}
