/**
 * What one reconciler run sees: the live jobs in the ledger, the stack's instances, the hand-off
 * reports, the pool member items (when a pool member is among the instances) and (every few runs)
 * the stack's runners on GitHub, plus the closed job of each instance still up that no live job holds. A part that cannot be read is left undefined and named in
 * `unreadable`: its rules are skipped this run, the others still apply.
 */
import pMap from "p-map";
import { type GitHub, githubForInstallation } from "../adapters/github-client";
import { listRunners, scopeFor } from "../adapters/github-runners";
import { jobsOnInstance, listJobsByState, recentlyClosedJobScopes } from "../adapters/job-queries";
import type { GithubRunner, PoolMemberItem, StackInstance } from "../core/reconcile-model";
import { isStackRunner, type RunnerScope } from "../core/stack-identity";
import type { HandoffReport } from "../shared/handoff-report";
import type { JobRecord, JobState } from "../shared/job";
import { logger } from "../shared/telemetry";
import { type FleetReads, fleetReads } from "./fleet-reads";

/** The states the reconciler reads from the ledger (terminal jobs come in only via their instance). */
const LIVE_STATES: readonly JobState[] = ["queued", "launching", "launched", "running", "interrupted"];
const MAX_JOBS_PER_STATE = 2000;
const MAX_INSTANCE_LOOKUPS = 200;
/** Scopes (org or repo) whose runners are listed in one run. */
const MAX_RUNNER_SCOPES = 10;
const LOOKUP_CONCURRENCY = 8;
/** Runs of the reconciler (minutes) between two listings of the stack's runners on GitHub. */
const RUNNER_SWEEP_MINUTES = 5;
/** The sweep also covers the scopes of jobs closed this recently (leftovers of an idle fleet). */
const SWEEP_LOOKBACK_SECONDS = 2 * 3600;

/** Where to ask GitHub about one of the stack's runners (to delete it). */
export type RunnerScopes = Map<number, { gh: GitHub; scope: RunnerScope }>;

export interface FleetState {
  jobs: JobRecord[];
  instances?: StackInstance[];
  handoffs?: HandoffReport[];
  /** Undefined when the pool table could not be read. */
  poolMembers?: PoolMemberItem[];
  runners?: { list: GithubRunner[]; scopeOf: RunnerScopes };
  /** Stack instances pending or running (undefined when EC2 was unreadable). */
  alive?: number;
  /** Parts that could not be read this run. */
  unreadable: string[];
}

export async function gatherFleetState(
  stackName: string,
  now: Date,
  sweepRunners = Math.floor(now.getTime() / 60_000) % RUNNER_SWEEP_MINUTES === 0,
  reads: FleetReads = fleetReads(stackName),
): Promise<FleetState> {
  const unreadable: string[] = [];
  const skip = (part: string, what: string) => (error: unknown) => {
    logger.warn(`could not read ${what}: its rules are skipped this run`, error as Error);
    unreadable.push(part);
    return undefined;
  };
  // The reads are independent: in parallel, so a run stays short.
  const [jobs, { instances, poolMembers }, handoffs] = await Promise.all([
    Promise.all(LIVE_STATES.map((state) => listJobsByState(state, { limit: MAX_JOBS_PER_STATE }))).then(
      (all) => all.flat(),
    ),
    readInstances(reads)
      .catch(skip("instances", "the stack's instances"))
      .then(async (instances) => ({
        instances,
        // Only a pool-tagged instance needs them (a stack without a pool reads nothing more).
        poolMembers: instances?.some((i) => i.poolConfig)
          ? await reads.poolMembers().catch(skip("pool", "the pool members"))
          : [],
      })),
    reads.handoffs().catch(skip("handoffs", "the hand-off reports")),
  ]);
  // Terminal jobs matter only for instances still up: "its job completed, the instance did not stop".
  const held = new Set(jobs.map((j) => j.instanceId).filter(Boolean));
  const alive = instances?.filter((i) => i.state === "running" || i.state === "pending");
  const unheld = (alive ?? []).filter((i) => !held.has(i.instanceId));
  // Offline runners are harmless for a few minutes: they are listed every few runs (GitHub rate limits).
  const [finished, runners] = await Promise.all([
    // One job per instance tells the planner what it was for (a stolen runner's has two: the first).
    pMap(unheld.slice(0, MAX_INSTANCE_LOOKUPS), async (i) => (await jobsOnInstance(i.instanceId))[0], {
      concurrency: LOOKUP_CONCURRENCY,
    }),
    sweepRunners
      ? recentlyClosedJobScopes(new Date(now.getTime() - SWEEP_LOOKBACK_SECONDS * 1000))
          .then((recent) => readRunners(runnerScopes([...jobs, ...recent]), stackName))
          .catch(skip("runners", "the stack's runners on GitHub"))
      : undefined,
  ]);
  for (const job of finished) if (job) jobs.push(job);
  return { jobs, instances, handoffs, poolMembers, runners, alive: alive?.length, unreadable };
}

async function readInstances(reads: FleetReads): Promise<StackInstance[]> {
  const all = await reads.instances();
  return all.map((i) => ({
    instanceId: i.instanceId,
    state: i.state ?? "unknown",
    launchTime: (i.launchTime ?? new Date(0)).toISOString(),
    configName: i.configName,
    poolConfig: i.poolConfig,
  }));
}

/** The runner scopes (org or repo) of the jobs in view, with an installation to ask each one through. */
function runnerScopes(
  jobs: Pick<JobRecord, "owner" | "repo" | "installationId">[],
): { scope: RunnerScope; installationId?: number }[] {
  const scopes = new Map<string, { scope: RunnerScope; installationId?: number }>();
  for (const job of jobs) {
    const scope = scopeFor(job);
    const key = JSON.stringify(scope);
    if (!scopes.has(key) || (job.installationId && !scopes.get(key)?.installationId)) {
      scopes.set(key, { scope, installationId: job.installationId });
    }
  }
  return [...scopes.values()].slice(0, MAX_RUNNER_SCOPES);
}

async function readRunners(scopes: { scope: RunnerScope; installationId?: number }[], stackName: string) {
  const list: GithubRunner[] = [];
  const scopeOf: RunnerScopes = new Map();
  for (const { scope, installationId } of scopes) {
    const gh = await githubForInstallation(installationId);
    for (const runner of await listRunners(gh, scope)) {
      if (!isStackRunner(runner.name, stackName)) continue;
      list.push(runner);
      scopeOf.set(runner.id, { gh, scope });
    }
  }
  return { list, scopeOf };
}
