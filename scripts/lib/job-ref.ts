/**
 * What `npm run status -- --job` accepts: a job id, or the job's page on GitHub as the browser shows
 * it (`https://github.com/OWNER/REPO/actions/runs/RUN/job/JOB`, the same path on a GHES host, with
 * or without `/attempts/N`, a query or a `#step` fragment).
 */

export interface JobRef {
  jobId: string;
  /** From a URL: `owner/repo`, the run and the host. */
  repo?: string;
  runId?: number;
  host?: string;
}

const JOB_PATH = /\/([^/]+)\/([^/]+)\/actions\/runs\/(\d+)(?:\/attempts\/\d+)?\/job\/(\d+)\/?$/;
const RUN_PATH = /\/actions\/runs\/\d+(\/attempts\/\d+)?\/?$/;

export function parseJobRef(text: string): JobRef {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return { jobId: trimmed };
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    throw new Error(
      `--job ${JSON.stringify(text)}: expected a job id (e.g. 29679449) or a job URL (https://github.com/OWNER/REPO/actions/runs/RUN/job/JOB)`,
    );
  }
  const match = JOB_PATH.exec(url.pathname);
  if (!match) {
    const hint = RUN_PATH.test(url.pathname)
      ? "that is a run's URL: open the job in it and copy that URL (…/job/ID)"
      : "expected …/OWNER/REPO/actions/runs/RUN/job/JOB";
    throw new Error(`--job ${url.href}: ${hint}`);
  }
  const [, owner, repo, runId, jobId] = match;
  return {
    jobId: jobId!,
    repo: `${decodeURIComponent(owner!)}/${decodeURIComponent(repo!)}`,
    runId: Number(runId),
    host: url.host.toLowerCase(),
  };
}
