/**
 * The reconciler Lambda (EventBridge schedule, every minute): sees the fleet, plans with
 * lambda/core/reconcile-plan.ts and applies the plan (reconcile-fleet.ts), so two runs at once, or a
 * run racing the launcher, cannot launch a job twice or lose one. Beside that, and
 * independent of it, re-runs interrupted jobs (rerun-interrupted-jobs.ts), asks GitHub to redeliver
 * failed webhooks (redeliver-webhooks.ts) and tends the stopped pools (tend-pools.ts): one part
 * failing does not stop the others. Work is bounded
 * (actions per run, GitHub look-ups, a time budget); every count is a metric, every decision is
 * logged with its reason.
 */
import type { Context, ScheduledEvent } from "aws-lambda";
import { recordReconcilerHeartbeat } from "../adapters/reserved-items";
import { settings } from "../shared/settings";
import { logger, MetricUnit, metrics } from "../shared/telemetry";
import { fleetReads } from "./fleet-reads";
import { type FleetReconciled, reconcileFleet } from "./reconcile-fleet";
import { redeliverWebhooks } from "./redeliver-webhooks";
import { rerunInterruptedJobs } from "./rerun-interrupted-jobs";
import { emptyReport, POOL_METRICS, type PoolsTended, tendPools } from "./tend-pools";

export interface ReconcileReport extends FleetReconciled {
  redelivered: number;
  /** Interrupted jobs re-run on on-demand capacity (retryOnInterruption). */
  rerun: number;
  /** What the pool tending did. */
  pools: PoolsTended;
}

export async function handler(_event: ScheduledEvent, context?: Context): Promise<ReconcileReport> {
  // Leave 10 s of the Lambda's timeout for the last in-flight calls and the metrics.
  const budgetMs = context ? Math.max(5_000, context.getRemainingTimeInMillis() - 10_000) : 50_000;
  const report = await reconcile({ now: new Date(), deadline: Date.now() + budgetMs });
  for (const [kind, n] of Object.entries(report.applied)) {
    // e.g. ReconcileDeleteRunner: how many offline runners were removed this run.
    const name = kind.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase());
    metrics.addMetric(`Reconcile${name}`, MetricUnit.Count, n);
  }
  metrics.addMetric("ReconcileSkipped", MetricUnit.Count, sum(report.skipped));
  metrics.addMetric("ReconcileFailed", MetricUnit.Count, report.failed);
  metrics.addMetric("ReconcileDeferred", MetricUnit.Count, report.deferred);
  metrics.addMetric("WebhooksRedelivered", MetricUnit.Count, report.redelivered);
  metrics.addMetric("InterruptedJobsRerun", MetricUnit.Count, report.rerun);
  for (const [kind, n] of Object.entries(report.pools.applied))
    metrics.addMetric(POOL_METRICS[kind as keyof typeof POOL_METRICS], MetricUnit.Count, n);
  metrics.addMetric("PoolActionsFailed", MetricUnit.Count, report.pools.failed);
  if (report.instances !== undefined)
    metrics.addMetric("RunnerInstances", MetricUnit.Count, report.instances);
  metrics.publishStoredMetrics();
  logger.info("reconciled", { ...report });
  return report;
}

const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

/** One reconciler pass at `now`; stops starting new work after `deadline` (epoch ms). */
export async function reconcile(
  options: { now?: Date; deadline?: number; sweepRunners?: boolean } = {},
): Promise<ReconcileReport> {
  const now = options.now ?? new Date();
  const deadline = options.deadline ?? Date.now() + 50_000;
  const s = settings();
  const unreadable: string[] = [];
  // Before the App exists (first deploy) there is no runner and no delivery to look at on GitHub.
  const githubReady = s.githubAppState !== "pending";

  const sweepRunners = githubReady ? options.sweepRunners : false;
  // The instances, hand-off reports and pool members are read once and shared by the parts that need them.
  const reads = fleetReads(s.stackName);
  const rerun = async () => {
    if (!githubReady || Date.now() > deadline) return 0;
    return rerunInterruptedJobs(now).catch((error: unknown) => {
      logger.warn("re-run of interrupted jobs skipped", error as Error);
      unreadable.push("interrupted-jobs");
      return 0;
    });
  };
  const redeliver = async () => {
    if (!githubReady || Date.now() > deadline) return 0;
    const result = await redeliverWebhooks(now);
    if (result.unreadable) unreadable.push("deliveries");
    return result.redelivered;
  };
  const tend = async () => {
    // Before the App exists no job can use a member: no pool costs money yet.
    if (!githubReady) return emptyReport();
    return tendPools(s, { now, deadline, reads }).catch((error: unknown) => {
      logger.error("pool tending skipped", error as Error);
      unreadable.push("pools");
      return { ...emptyReport(), failed: 1 };
    });
  };
  const [fleet, rerunCount, redelivered, pools] = await settleAll([
    reconcileFleet(s, { now, deadline, sweepRunners, reads }),
    rerun(),
    redeliver(),
    tend(),
  ] as const);
  const report = {
    ...fleet,
    redelivered,
    rerun: rerunCount,
    pools,
    unreadable: [...fleet.unreadable, ...unreadable],
  };
  await recordHeartbeat(now, report);
  return report;
}

/** `npm run doctor` tells from this item that the reconciler runs; a failed write costs only that. */
async function recordHeartbeat(now: Date, report: ReconcileReport): Promise<void> {
  await recordReconcilerHeartbeat({
    ranAt: now.toISOString(),
    failed: report.failed,
    unreadable: report.unreadable,
  }).catch((error: unknown) => logger.warn("reconciler heartbeat not recorded", error as Error));
}

/** Waits for every part, then fails with the first failure: one failing part does not cut the others short. */
async function settleAll<T extends readonly unknown[]>(parts: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const results = await Promise.allSettled(parts);
  const failure = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failure) throw failure.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
