/**
 * GitHub's self-hosted runners of an organization or a repository: JIT registration (the launcher),
 * listing and removal (the reconciler's sweep, the janitor). Calls take a client of github-client.ts.
 */
import type { RunnerScope } from "../core/stack-identity";
import { settings } from "../shared/settings";
import type { GitHub } from "./github-client";

/** The scope a job's runner registers in, per `settings().runnerScope`. `repo` is `owner/name`. */
export function scopeFor(job: { owner: string; repo: string }, mode = settings().runnerScope): RunnerScope {
  if (mode === "org") return { kind: "org", org: job.owner };
  const [owner = job.owner, name = ""] = job.repo.includes("/")
    ? job.repo.split("/", 2)
    : [job.owner, job.repo];
  return { kind: "repo", owner, repo: name };
}

export interface JitRequest {
  name: string;
  /** Org scope: the label config's runner group. Repository runners have no groups: 1 (Default). */
  runnerGroupId: number;
  labels: string[];
  workFolder?: string;
}

export interface JitConfig {
  runnerId: number;
  runnerName: string;
  /** Secret: hand it to the instance, never log it. */
  encodedJitConfig: string;
}

/** `generate-jitconfig`: registers a one-job runner and returns its encoded config. */
export async function generateJitConfig(
  gh: GitHub,
  scope: RunnerScope,
  request: JitRequest,
): Promise<JitConfig> {
  const body = {
    name: request.name,
    runner_group_id: scope.kind === "org" ? request.runnerGroupId : 1,
    labels: request.labels,
    work_folder: request.workFolder ?? "_work",
  };
  const { data } =
    scope.kind === "org"
      ? await gh.request("POST /orgs/{org}/actions/runners/generate-jitconfig", { org: scope.org, ...body })
      : await gh.request("POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig", {
          owner: scope.owner,
          repo: scope.repo,
          ...body,
        });
  return {
    runnerId: data.runner.id,
    runnerName: data.runner.name,
    encodedJitConfig: data.encoded_jit_config,
  };
}

export interface Runner {
  id: number;
  name: string;
  status: string;
  busy: boolean;
  labels: string[];
}

/** Self-hosted runners of a scope (all pages), optionally only those named `name`. */
export async function listRunners(
  gh: GitHub,
  scope: RunnerScope,
  options: { name?: string } = {},
): Promise<Runner[]> {
  const runners: Runner[] = [];
  for (let page = 1; ; page++) {
    const query = { per_page: 100, page, ...(options.name ? { name: options.name } : {}) };
    const { data } =
      scope.kind === "org"
        ? await gh.request("GET /orgs/{org}/actions/runners", { org: scope.org, ...query })
        : await gh.request("GET /repos/{owner}/{repo}/actions/runners", {
            owner: scope.owner,
            repo: scope.repo,
            ...query,
          });
    for (const r of data.runners) {
      runners.push({
        id: r.id,
        name: r.name,
        status: r.status,
        busy: r.busy,
        labels: r.labels.map((l) => l.name),
      });
    }
    if (data.runners.length < 100 || runners.length >= data.total_count) return runners;
  }
}

/** Removes a runner registration; an already removed one (404) is fine. */
export async function deleteRunner(gh: GitHub, scope: RunnerScope, runnerId: number): Promise<void> {
  try {
    if (scope.kind === "org") {
      await gh.request("DELETE /orgs/{org}/actions/runners/{runner_id}", {
        org: scope.org,
        runner_id: runnerId,
      });
    } else {
      await gh.request("DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}", {
        owner: scope.owner,
        repo: scope.repo,
        runner_id: runnerId,
      });
    }
  } catch (error) {
    if ((error as { status?: number }).status !== 404) throw error;
  }
}
