/**
 * retryOnInterruption: a job that a spot interruption failed is re-run once (GitHub's re-run job API)
 * on on-demand capacity. "Once" is the conditional create of a marker on (repo, run id); the marker is
 * also what tells the launcher to launch the run's next attempt of that config on-demand
 * (launcher/launch-market.ts launchMarketOverrides), since the re-run job arrives as a new `queued`
 * job with a new id and run attempt. Looks at jobs completed in the last RERUN_WINDOW_SECONDS (the
 * reconciler runs every minute).
 */
import { githubForInstallation } from "../adapters/github-client";
import { rerunJob } from "../adapters/github-jobs";
import { listInterruptedCompletions } from "../adapters/job-queries";
import { updateJobFields } from "../adapters/jobs-table";
import { loadLabelConfigs } from "../adapters/label-configs";
import { createRetryMarker, releaseRetryMarker } from "../adapters/reserved-items";
import { decideRetryOnInterruption } from "../core/lifecycle";
import { logger } from "../shared/telemetry";

/** How far back the re-run step looks for interrupted jobs that completed (several runs' worth). */
const RERUN_WINDOW_SECONDS = 30 * 60;

/** Returns how many jobs were re-run. */
export async function rerunInterruptedJobs(now: Date): Promise<number> {
  const candidates = await listInterruptedCompletions(new Date(now.getTime() - RERUN_WINDOW_SECONDS * 1000));
  if (candidates.length === 0) return 0;
  const configs = await loadLabelConfigs(now.getTime());
  let rerun = 0;
  for (const job of candidates) {
    const decision = decideRetryOnInterruption(job, job.conclusion, configs.get(job.configName));
    if (!decision.rerun) continue;
    const marker = {
      repo: job.repo,
      runId: job.runId,
      fromAttempt: job.runAttempt ?? 1,
      jobId: job.jobId,
      configName: job.configName,
      reason: decision.reason,
      createdAt: now.toISOString(),
    };
    if (!(await createRetryMarker(marker, now))) continue; // re-run once already
    try {
      await rerunJob(await githubForInstallation(job.installationId), job.repo, Number(job.jobId));
    } catch (error) {
      // Give the marker back: the next run tries again (GitHub refuses while the run is still going).
      await releaseRetryMarker(job.repo, job.runId, now);
      logger.warn("could not re-run an interrupted job", {
        jobId: job.jobId,
        error: (error as Error).message,
      });
      continue;
    }
    await updateJobFields(job.jobId, { set: { reason: decision.reason }, now });
    logger.info("interrupted job re-run on on-demand capacity", {
      jobId: job.jobId,
      repo: job.repo,
      runId: job.runId,
    });
    rerun++;
  }
  return rerun;
}
