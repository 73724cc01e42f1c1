/**
 * The webhook's `in_progress` use case, beyond recording the delivery (record-delivery.ts); the
 * decision is core/lifecycle.ts decideInProgress, every write conditional: point the job at the
 * instance its runner runs on, and give the job that runner was launched for a new launch at once
 * when the runner took another job ("stolen" runner: GitHub gives a JIT runner any queued job its
 * labels match). `completed` needs nothing more: terminating an instance that outlives its job, and
 * re-running a job that a spot interruption failed, are the reconciler's (it holds the GitHub
 * credentials and reads the label configs; the webhook needs neither).
 */

import { jobsOnInstance } from "../adapters/job-queries";
import { releaseToQueue, updateJobFields } from "../adapters/jobs-table";
import { decideInProgress } from "../core/lifecycle";
import { instanceIdFromRunnerName } from "../core/stack-identity";
import { enqueueReleased } from "../shared/relaunch";
import { settings } from "../shared/settings";
import { logger, MetricUnit, metrics } from "../shared/telemetry";

/**
 * After `in_progress` for `jobId` on `runnerName` was recorded. Returns the jobs relaunched. Safe to
 * repeat (a duplicate delivery finds nothing left to release) and in any order with `completed`.
 */
export async function afterInProgress(
  args: { jobId: string; runnerName?: string | null },
  now = new Date(),
): Promise<string[]> {
  if (!args.runnerName) return [];
  const instanceId = instanceIdFromRunnerName(settings().stackName, args.runnerName);
  if (!instanceId) return []; // not one of this stack's runners
  const decision = decideInProgress({
    stackName: settings().stackName,
    jobId: args.jobId,
    runnerName: args.runnerName,
    onInstance: await jobsOnInstance(instanceId),
  });
  // Point the job at the instance its runner runs on (whatever state it reached: completed jobs too,
  // so the reconciler can tell when that instance outlived its job).
  await updateJobFields(args.jobId, { set: { instanceId }, now });
  const relaunched: string[] = [];
  for (const release of decision.release) {
    const job = await releaseToQueue(release.jobId, {
      from: release.from,
      instanceId,
      reason: release.reason,
      now,
    });
    if (!job) continue;
    await enqueueReleased(job, now);
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
