/**
 * GitHub's workflow jobs: whether a job finished (the reconciler's check of a job whose instance is
 * gone) and its re-run (on-demand after a spot interruption). Calls take a client of github-client.ts.
 */
import type { GitHub } from "./github-client";

export interface WorkflowJob {
  id: number;
  runId: number;
  status: string;
  conclusion: string | null;
  labels: string[];
  runnerName: string | null;
  runnerId: number | null;
}

/** A workflow job (`repo` is `owner/name`), or undefined if GitHub no longer knows it. */
export async function getWorkflowJob(
  gh: GitHub,
  repo: string,
  jobId: number,
): Promise<WorkflowJob | undefined> {
  const [owner = "", name = ""] = repo.split("/", 2);
  try {
    const { data } = await gh.request("GET /repos/{owner}/{repo}/actions/jobs/{job_id}", {
      owner,
      repo: name,
      job_id: jobId,
    });
    return {
      id: Number(data.id),
      runId: Number(data.run_id),
      status: data.status,
      conclusion: data.conclusion,
      labels: data.labels,
      runnerName: data.runner_name,
      runnerId: data.runner_id,
    };
  } catch (error) {
    if ((error as { status?: number }).status === 404) return undefined;
    throw error;
  }
}

/** Re-runs one workflow job (and what depends on it). */
export async function rerunJob(gh: GitHub, repo: string, jobId: number): Promise<void> {
  const [owner = "", name = ""] = repo.split("/", 2);
  await gh.request("POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun", {
    owner,
    repo: name,
    job_id: jobId,
  });
}
