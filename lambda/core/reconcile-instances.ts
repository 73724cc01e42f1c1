/**
 * The reconciler's rules about the stack's instances: which to terminate (stopped, over the max
 * runtime, done, orphaned, idle) and what that means for the job on it; a running job's spot
 * interruption the instance saw first; the hand-offs of instances that are gone. Stopped-pool members
 * are the pool tending's (core/pool-plan.ts) until a job holds them. Pure.
 */
import type { HandoffReport } from "../shared/handoff-report";
import type { JobRecord } from "../shared/job";
import {
  ALIVE,
  type FleetView,
  isDue,
  minutes,
  type ReconcileAction,
  type StackInstance,
  seconds,
} from "./reconcile-model";
import { instanceIdFromRunnerName } from "./stack-identity";

/** What one run does about an instance and the job holding it. Instances come first in a plan. */
export function instanceActions(instance: StackInstance, view: FleetView): ReconcileAction[] {
  const { instanceId } = instance;
  const job = view.holder.get(instanceId);
  const pooled = poolMemberActions(instance, job, view);
  if (pooled) return pooled;
  if (instance.state === "stopping" || instance.state === "stopped") {
    return [{ kind: "terminate", instanceId, jobId: job?.jobId, reason: `instance is ${instance.state}` }];
  }
  if (!ALIVE.has(instance.state)) return [];
  const { policy: p, now } = view;
  if (isDue(view, "max-runtime", instance.launchTime, p.maxRuntimeSeconds)) {
    const age = seconds(instance.launchTime, now);
    const reason = `instance ran ${minutes(age)}, over the max runtime of ${minutes(p.maxRuntimeSeconds)}`;
    const actions: ReconcileAction[] = [{ kind: "terminate", instanceId, jobId: job?.jobId, reason }];
    if (job && (job.state === "running" || job.state === "interrupted" || job.state === "launched")) {
      actions.push({ kind: "expire", jobId: job.jobId, from: job.state, reason });
    }
    return actions;
  }
  const report = view.handoffs?.get(instanceId);
  if (job && (job.state === "running" || job.state === "interrupted")) {
    // The instance saw the spot notice (IMDS) but the EventBridge warning never reached ec2-events.
    if (job.state !== "running" || !report?.interruptedAt) return [];
    const { interruptedAt } = report;
    const reason = `spot interruption of ${instanceId} (reported by the instance)`;
    return [{ kind: "interrupt", jobId: job.jobId, instanceId, interruptedAt, reason }];
  }
  const done = view.finished.get(instanceId);
  // A runner runs one job: once the job its runner took (in_progress named it) is closed, the
  // instance has nothing left to do, even if it never reported the job finished (crashed runner).
  const ranHere =
    !job &&
    done?.startedAt &&
    done.runnerName &&
    instanceIdFromRunnerName(p.stackName, done.runnerName) === instanceId;
  if (report?.jobStartedAt && !report.jobFinishedAt && !ranHere) return []; // a job runs there (webhook not seen yet)
  if (report?.jobFinishedAt) {
    if (!isDue(view, "finished-grace", report.jobFinishedAt, p.completedGraceSeconds)) return [];
    const reason = `its job finished ${minutes(seconds(report.jobFinishedAt, now))} ago and the instance did not shut down`;
    return [{ kind: "terminate", instanceId, jobId: job?.jobId, reason }];
  }
  if (!job && done) {
    const closedAt = done.completedAt ?? done.updatedAt;
    if (!isDue(view, "finished-grace", closedAt, p.completedGraceSeconds)) return [];
    const reason = `job ${done.jobId} is ${done.state} for ${minutes(seconds(closedAt, now))} and the instance still runs`;
    return [{ kind: "terminate", instanceId, jobId: done.jobId, reason }];
  }
  if (!job && !report) {
    if (!isDue(view, "orphan", instance.launchTime, p.orphanGraceSeconds)) return [];
    const reason = `orphan: no job and no hand-off ${minutes(seconds(instance.launchTime, now))} after launch`;
    return [{ kind: "terminate", instanceId, reason }];
  }
  return idleActions(instance, job, report, view);
}

/**
 * A stopped pool's member (undefined: the ordinary rules decide). While its item is warming, ready or
 * retiring the pool tending owns it, stopped or not. A claimed one is its job's, but for a grace after
 * the claim it may still look stopped, or have no job yet: its launcher is starting and registering
 * it. A pool-tagged instance with no item and no job is an orphan after the usual grace, stopped too.
 * With the pool table unread, a pool-tagged instance no job holds is left alone.
 */
function poolMemberActions(
  instance: StackInstance,
  job: JobRecord | undefined,
  view: FleetView,
): ReconcileAction[] | undefined {
  const { instanceId } = instance;
  const member = view.poolMembers?.get(instanceId);
  if (!instance.poolConfig && !member) return undefined;
  if (!view.poolMembers) return job ? undefined : [];
  const { policy: p, now } = view;
  if (member) {
    if (member.state !== "claimed") return [];
    return isDue(view, "orphan", member.claimedAt, p.orphanGraceSeconds) ? undefined : [];
  }
  if (job || view.finished.has(instanceId) || !MEMBER_STATES.has(instance.state)) return undefined;
  if (!isDue(view, "orphan", instance.launchTime, p.orphanGraceSeconds)) return [];
  const age = minutes(seconds(instance.launchTime, now));
  return [
    { kind: "terminate", instanceId, reason: `orphan: pool-tagged, no member item ${age} after launch` },
  ];
}

/** The states a pool member's instance passes through while it is one (launch, warm-up, stop). */
const MEMBER_STATES = new Set(["pending", "running", "stopping", "stopped"]);

/** A runner (started or still booting) that got no job: terminated at the idle timeout, its job relaunched. */
function idleActions(
  instance: StackInstance,
  job: JobRecord | undefined,
  report: HandoffReport | undefined,
  view: FleetView,
): ReconcileAction[] {
  const { policy: p, now } = view;
  const { instanceId } = instance;
  const idleFrom = report?.runnerStartedAt ?? instance.launchTime;
  if (!isDue(view, "idle", idleFrom, p.idleTimeoutSeconds)) return [];
  const what = report?.runnerStartedAt ? "its runner got no job" : "its runner never started";
  const reason = `idle: ${what} in ${minutes(seconds(idleFrom, now))} (idle timeout ${minutes(p.idleTimeoutSeconds)})`;
  const actions: ReconcileAction[] = [{ kind: "terminate", instanceId, jobId: job?.jobId, reason }];
  if (job && (job.state === "launched" || job.state === "launching")) {
    // Check GitHub first when the runner was up: the job may have been cancelled or taken elsewhere.
    const check = !!report?.runnerStartedAt && view.mayCheck();
    const { jobId, configName } = job;
    actions.push({ kind: "release", jobId, configName, from: job.state, instanceId, reason, check });
  }
  return actions;
}

/**
 * The hand-off of an instance that is gone is deleted; an instance not listed yet (DescribeInstances
 * is eventually consistent) keeps its fresh hand-off. Only when EC2 was read.
 */
export function handoffActions(report: HandoffReport, view: FleetView): ReconcileAction[] {
  if (!view.instances) return [];
  const instance = view.instances.get(report.instanceId);
  if (instance && ALIVE.has(instance.state)) return [];
  if (instance && instance.state !== "terminated" && isPoolMember(instance, view)) {
    // A stopped member starts again: its launcher writes the hand-off before EC2 shows it running.
    return [];
  }
  const unlisted =
    !instance &&
    (view.holder.has(report.instanceId) ||
      seconds(report.createdAt, view.now) <= view.policy.orphanGraceSeconds);
  if (unlisted) return [];
  return [
    {
      kind: "delete-handoff",
      instanceId: report.instanceId,
      reason: `instance is ${instance?.state ?? "gone"}`,
    },
  ];
}

/** Whether an instance is a pool member (has an item; pool-tagged when the pool table was not read). */
function isPoolMember(instance: StackInstance, view: FleetView): boolean {
  return view.poolMembers ? view.poolMembers.has(instance.instanceId) : !!instance.poolConfig;
}
