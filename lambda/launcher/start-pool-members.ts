/**
 * Jobs on a config's stopped pool members (LabelConfig.pool), before any fleet: the config's ready
 * members, oldest first, one claimed per job (a conditional write, so two launchers never take one
 * member: a member another launcher took is skipped for the next), then its instance started. The
 * caller registers a started member's instance as it would a fleet's (an on-demand instance). A job
 * left without a member (none ready, the pool unreadable, or its member's start failed) takes the
 * cold path in the same invocation; a failed start gives the member back or retires it
 * (core/pool-start.ts).
 */
import pMap from "p-map";
import { startInstance } from "../adapters/ec2";
import { ec2ErrorCode } from "../adapters/ec2-client";
import { prepareGitHub } from "../adapters/github-client";
import {
  claimMember,
  listMembers,
  moveMember,
  type PoolMember,
  unclaimMember,
} from "../adapters/pool-members";
import type { LaunchedInstance } from "../core/fleet-request";
import { afterStartFailure } from "../core/pool-start";
import type { LabelConfig } from "../shared/label-config";
import { logger, MetricUnit, metrics } from "../shared/telemetry";
import { type Candidate, IO_CONCURRENCY } from "./batch-records";

/** A job and the instance it is given. */
export interface Assignment {
  job: Candidate;
  instance: LaunchedInstance;
}

/** What the pool served: jobs on started members, and the jobs for the cold path. */
export interface PoolStarts {
  started: Assignment[];
  cold: Candidate[];
}

export async function startPoolMembers(config: LabelConfig, jobs: Candidate[]): Promise<PoolStarts> {
  if (!config.pool || jobs.length === 0) return { started: [], cold: jobs };
  const members = await readyMembers(config.name);
  if (members.length === 0) return { started: [], cold: jobs };
  // Registration follows the start: get GitHub ready while EC2 answers.
  prepareGitHub(jobs.map((c) => c.job.installationId));
  // Jobs take members off one shared list (oldest first), so no two jobs try the same member here.
  const taken = await pMap(jobs, (c) => startMemberFor(c, members), { concurrency: IO_CONCURRENCY });
  const started: Assignment[] = [];
  const cold: Candidate[] = [];
  jobs.forEach((job, i) => {
    const member = taken[i];
    if (!member) cold.push(job);
    else {
      const { instanceId, instanceType, availabilityZone } = member;
      started.push({ job, instance: { instanceId, instanceType, availabilityZone, market: "on-demand" } });
    }
  });
  return { started, cold };
}

/** The config's ready members, longest ready first; none if the pool table cannot be read. */
async function readyMembers(config: string): Promise<PoolMember[]> {
  try {
    return (await listMembers(config))
      .filter((m) => m.state === "ready")
      .sort((a, b) => (a.readyAt ?? "").localeCompare(b.readyAt ?? ""));
  } catch (error) {
    logger.warn("pool members unreadable; launching cold", { config, error: String(error) });
    return [];
  }
}

/** Claims the next member `members` still offers for the job and starts it: the member, if started. */
async function startMemberFor(c: Candidate, members: PoolMember[]): Promise<PoolMember | undefined> {
  for (let member = members.shift(); member; member = members.shift()) {
    const claimed = await claimMember(member, c.job.jobId).catch((error: unknown) => {
      logger.warn("could not claim a pool member; launching cold", {
        jobId: c.job.jobId,
        instanceId: member?.instanceId,
        error: String(error),
      });
      return undefined;
    });
    if (claimed === undefined) return undefined;
    // false: another launcher claimed it (or the reconciler retired it) since the list was read.
    if (claimed) return (await started(c, member)) ? member : undefined;
  }
  return undefined;
}

/** Starts a claimed member; on failure gives it back or retires it (core/pool-start.ts). */
async function started(c: Candidate, member: PoolMember): Promise<boolean> {
  const { instanceId } = member;
  try {
    await startInstance(instanceId);
    metrics.addMetric("PoolStarts", MetricUnit.Count, 1);
    logger.info("pool member started", { jobId: c.job.jobId, config: member.config, instanceId });
    return true;
  } catch (error) {
    const code = ec2ErrorCode(error);
    const next = afterStartFailure(code);
    metrics.addMetric("PoolStartFailures", MetricUnit.Count, 1);
    logger.warn("pool member did not start; launching cold", { jobId: c.job.jobId, instanceId, code, next });
    const moved = next === "unclaim" ? unclaimMember(member) : moveMember(member, ["claimed"], "retiring");
    // Else it stays `claimed` with no job on it: the reconciler reaps it after the claim's grace.
    await moved.catch((e: unknown) =>
      logger.error("could not release a pool member", { instanceId, next, error: String(e) }),
    );
    return false;
  }
}
