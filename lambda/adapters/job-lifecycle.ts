/**
 * What the webhook does after it recorded a `workflow_job` event, beyond the record itself
 * (decisions in core/lifecycle.ts, writes conditional):
 * - `in_progress`: map the job to the instance its runner runs on, and give the job that runner was
 *   launched for a new launch at once when the runner took another job ("stolen" runner);
 * - `completed`: re-run a job that a spot interruption failed, once, on on-demand capacity (when its
 *   config asks). Terminating an instance that outlives its job is the reconciler's work.
 */
import { decideInProgress, decideRetryOnInterruption } from "../core/lifecycle";
import type { JobRecord } from "../shared/job";
import { logger, MetricUnit, metrics } from "../shared/observability";
import { settings } from "../shared/settings";
import { githubForInstallation, rerunJob } from "./github";
import { markJobEnqueued, updateJobFields } from "./jobs-table";
import { loadLabelConfigs } from "./label-configs";
import { enqueueLaunches } from "./launch-queue";
import { createRetryMarker, deleteRetryMarker, jobsOnInstance, releaseToQueue } from "./lifecycle-store";

/**
 * After `in_progress` for `jobId` on `runnerName` was recorded. Returns the jobs relaunched. Safe to
 * repeat (a duplicate delivery finds nothing left to release) and in any order with `completed`.
 */
export async function afterInProgress(
  args: { jobId: string; runnerName?: string | null },
  now = new Date(),
): Promise<string[]> {
  if (!args.runnerName) return [];
  const stackName = settings().stackName;
  const probe = decideInProgress({
    stackName,
    jobId: args.jobId,
    runnerName: args.runnerName,
    onInstance: [],
  });
  if (!probe.instanceId) return []; // not one of this stack's runners
  const instanceId = probe.instanceId;
  const onInstance = await jobsOnInstance(instanceId);
  const decision = decideInProgress({
    stackName,
    jobId: args.jobId,
    runnerName: args.runnerName,
    onInstance,
  });
  // Point the job at the instance its runner runs on (whatever state it reached: completed jobs too,
  // so the reconciler can tell when that instance outlived its job).
  await updateJobFields(args.jobId, { set: { instanceId }, now });
  const relaunched: string[] = [];
  for (const release of decision.release) {
    const job = await releaseToQueue(release.jobId, {
      from: "launched",
      instanceId,
      reason: release.reason,
      now,
    });
    if (!job) continue;
    await enqueueLaunches([{ jobId: job.jobId, configName: job.configName }]);
    await markJobEnqueued(job.jobId, { now });
    relaunched.push(job.jobId);
    metrics.addMetric("RunnersStolen", MetricUnit.Count, 1);
    logger.info("runner taken by another job: relaunched", {
      jobId: job.jobId,
      takenBy: args.jobId,
      instanceId,
    });
  }
  return relaunched;
}

/**
 * After `completed` was recorded (`job` as it is now). With `retryOnInterruption`, a job that a spot
 * interruption failed is re-run once: the marker on (repo, run id) makes "once" a conditional create,
 * and tells the launcher to launch the run's next attempt of this config on-demand
 * (launchMarketOverrides in lifecycle-store.ts). Returns whether a re-run was requested.
 */
export async function afterCompleted(
  job: JobRecord,
  conclusion: string | undefined,
  now = new Date(),
): Promise<boolean> {
  const configs = await loadLabelConfigs(now.getTime());
  const decision = decideRetryOnInterruption(job, conclusion, configs.get(job.configName));
  if (!decision.rerun) return false;
  const created = await createRetryMarker(
    {
      repo: job.repo,
      runId: job.runId,
      fromAttempt: job.runAttempt ?? 1,
      jobId: job.jobId,
      configName: job.configName,
      reason: decision.reason,
      createdAt: now.toISOString(),
    },
    now,
  );
  if (!created) return false; // already re-run once (or a duplicate delivery)
  const gh = await githubForInstallation(job.installationId);
  try {
    await rerunJob(gh, job.repo, Number(job.jobId));
  } catch (error) {
    // Give the marker back and fail the delivery: the reconciler redelivers it, and that one tries again.
    await deleteRetryMarker(job.repo, job.runId);
    throw error;
  }
  await updateJobFields(job.jobId, { set: { reason: decision.reason }, now });
  metrics.addMetric("InterruptedJobsRerun", MetricUnit.Count, 1);
  logger.info("interrupted job re-run on on-demand", { jobId: job.jobId, repo: job.repo, runId: job.runId });
  return true;
}
