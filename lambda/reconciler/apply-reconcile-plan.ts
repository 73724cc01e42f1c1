/**
 * Applies a reconcile plan (core/reconcile-plan.ts): terminations first in one call, then each other
 * action as a conditional write or an idempotent API call (an action whose premise changed since the
 * plan is skipped), then the launch messages of the jobs it enqueued or released, in batches. Stops
 * starting actions at the deadline; what is left waits for the next run.
 */
import pMap from "p-map";
import { terminateInstances } from "../adapters/ec2";
import { deleteRunner } from "../adapters/github-runners";
import { deleteHandoff } from "../adapters/handoff";
import { markJobEnqueued, releaseToQueue, transitionIf } from "../adapters/jobs-table";
import { enqueueLaunches } from "../adapters/launch-queue";
import type { ReconcileAction } from "../core/reconcile-model";
import type { ReconcilePlan } from "../core/reconcile-plan";
import type { JobRecord } from "../shared/job";
import { logger } from "../shared/telemetry";
import type { RunnerScopes } from "./gather-fleet-state";
import { settledOnGitHub } from "./settle-job-from-github";

const ACTION_CONCURRENCY = 8;

export interface ApplyReport {
  /** Actions applied, by kind. */
  applied: Record<string, number>;
  /** Actions whose condition no longer held (someone else acted first), by kind. */
  skipped: Record<string, number>;
  failed: number;
  /** Planned but left for the next run (action cap or time budget). */
  deferred: number;
}

interface ApplyContext {
  now: Date;
  byId: Map<string, JobRecord>;
  runnerScopes: RunnerScopes;
  /** Launch messages to send after the writes, in batches. */
  toEnqueue: { jobId: string; configName: string }[];
}

type Outcome = "applied" | "skipped";

export async function applyReconcilePlan(
  plan: ReconcilePlan,
  seen: { jobs: JobRecord[]; runnerScopes?: RunnerScopes },
  { now, deadline }: { now: Date; deadline: number },
): Promise<ApplyReport> {
  const report: ApplyReport = { applied: {}, skipped: {}, failed: 0, deferred: plan.deferred };
  const byId = new Map(seen.jobs.map((j) => [j.jobId, j]));
  const ctx: ApplyContext = { now, byId, runnerScopes: seen.runnerScopes ?? new Map(), toEnqueue: [] };
  // Terminations first, in one call: they stop spend, and the job actions after them assume them.
  const terminations = plan.actions.filter((a) => a.kind === "terminate");
  if (terminations.length) {
    try {
      await terminateInstances([...new Set(terminations.map((a) => a.instanceId))]);
      for (const a of terminations) count(a, "applied", report);
    } catch (error) {
      logger.error("terminate failed", error as Error);
      report.failed += terminations.length;
    }
  }
  const rest = plan.actions.filter((a) => a.kind !== "terminate");
  await pMap(
    rest,
    async (action) => {
      if (Date.now() > deadline) {
        report.deferred++;
        return;
      }
      try {
        count(action, await apply(action, ctx), report);
      } catch (error) {
        report.failed++;
        logger.error("reconcile action failed", {
          action: describe(action),
          error: (error as Error).message,
        });
      }
    },
    { concurrency: ACTION_CONCURRENCY },
  );
  report.failed += await sendLaunches(ctx);
  return report;
}

async function apply(action: ReconcileAction, ctx: ApplyContext): Promise<Outcome> {
  const { now } = ctx;
  const settled = (jobId: string) => settledOnGitHub(jobId, ctx.byId.get(jobId), now);
  const outcome = (done: unknown): Outcome => (done ? "applied" : "skipped");
  switch (action.kind) {
    case "enqueue": {
      if (action.check && (await settled(action.jobId))) return "applied";
      // Only while unchanged since the plan read it: a job launched, or enqueued by another reconciler
      // or the webhook meanwhile, needs no message.
      const job = await transitionIf(action.jobId, {
        from: "queued",
        to: "queued",
        updatedAt: ctx.byId.get(action.jobId)?.updatedAt,
        set: { reason: action.reason, enqueueClaimedAt: now.toISOString() },
        remove: ["enqueuedAt"],
        now,
      });
      if (job) ctx.toEnqueue.push({ jobId: job.jobId, configName: job.configName });
      return outcome(job);
    }
    case "release": {
      if (action.check && (await settled(action.jobId))) return "applied";
      const { from, instanceId, reason } = action;
      const job = await releaseToQueue(action.jobId, { from, instanceId, reason, now });
      if (job) ctx.toEnqueue.push({ jobId: job.jobId, configName: job.configName });
      return outcome(job);
    }
    case "mark-launched": {
      const { instanceId, launchedAt, reason } = action;
      const set = { launchedAt, reason };
      return outcome(
        await transitionIf(action.jobId, { from: "launching", to: "launched", instanceId, set, now }),
      );
    }
    case "expire": {
      const set = { reason: action.reason, completedAt: now.toISOString() };
      return outcome(await transitionIf(action.jobId, { from: action.from, to: "timed-out", set, now }));
    }
    case "check":
      return outcome(await settled(action.jobId));
    case "interrupt": {
      const set = { interruptedAt: action.interruptedAt, reason: action.reason };
      return outcome(await transitionIf(action.jobId, { from: "running", to: "interrupted", set, now }));
    }
    case "delete-handoff":
      await deleteHandoff(action.instanceId);
      return "applied";
    case "delete-runner": {
      const where = ctx.runnerScopes.get(action.runnerId);
      if (!where) return "skipped";
      await deleteRunner(where.gh, where.scope, action.runnerId);
      return "applied";
    }
    case "terminate":
      // Applied in one batch before the others (see applyReconcilePlan).
      return "skipped";
  }
}

/** Sends the launch messages; returns how many could not be sent. */
async function sendLaunches(ctx: ApplyContext): Promise<number> {
  if (!ctx.toEnqueue.length) return 0;
  try {
    await enqueueLaunches(ctx.toEnqueue);
  } catch (error) {
    // The jobs hold a claim that goes stale: the next run enqueues them.
    logger.error("could not send launch messages", error as Error);
    return ctx.toEnqueue.length;
  }
  await pMap(ctx.toEnqueue, (m) => markJobEnqueued(m.jobId, { now: ctx.now }), {
    concurrency: ACTION_CONCURRENCY,
  });
  return 0;
}

function describe(action: ReconcileAction) {
  const { kind, reason, ...rest } = action;
  return { kind, reason, ...rest };
}

function count(action: ReconcileAction, outcome: Outcome, report: ApplyReport) {
  const counts = outcome === "applied" ? report.applied : report.skipped;
  counts[action.kind] = (counts[action.kind] ?? 0) + 1;
  if (outcome === "applied") logger.info("reconcile", { ...describe(action) });
}
