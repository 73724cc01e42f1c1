/**
 * Asks GitHub about a job whose webhooks may be lost, and records what GitHub knows: completed →
 * closed with GitHub's conclusion; unknown to GitHub → failed; taken by a runner while the ledger
 * still waits for one → running on that runner (no new launch for it).
 */
import { githubForInstallation } from "../adapters/github-client";
import { getWorkflowJob } from "../adapters/github-jobs";
import { getJob, transitionIf } from "../adapters/jobs-table";
import type { JobRecord } from "../shared/job";

/**
 * Returns whether the job was settled that way (false: GitHub still has it queued, or in progress
 * where the ledger says so too). `known` is the item as the run read it, if it did.
 */
export async function settledOnGitHub(
  jobId: string,
  known: JobRecord | undefined,
  now: Date,
): Promise<boolean> {
  const job = known ?? (await getJob(jobId));
  if (!job) return false;
  const gh = await githubForInstallation(job.installationId);
  const remote = await getWorkflowJob(gh, job.repo, Number(job.jobId));
  const at = now.toISOString();
  if (remote?.status === "in_progress" && !["running", "interrupted"].includes(job.state)) {
    const running = await transitionIf(jobId, {
      from: job.state,
      to: "running",
      set: {
        runnerName: remote.runnerName ?? undefined,
        runnerId: remote.runnerId ?? undefined,
        startedAt: at,
        lastAction: "in_progress",
        reason: "in progress on GitHub (read by the reconciler: the in_progress webhook was not seen)",
      },
      now,
    });
    return !!running;
  }
  if (remote && remote.status !== "completed") return false;
  const set: Partial<JobRecord> = remote
    ? {
        conclusion: remote.conclusion ?? undefined,
        completedAt: at,
        lastAction: "completed",
        reason: "completed on GitHub (read by the reconciler: the completed webhook was not seen)",
      }
    : { completedAt: at, reason: "GitHub no longer knows this job" };
  const closed = await transitionIf(jobId, {
    from: job.state,
    to: remote ? "completed" : "failed",
    set,
    now,
  });
  return !!closed;
}
