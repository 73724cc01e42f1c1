/**
 * The reconciler's rules about one job, by state: a queued job enqueued again or timed out; a
 * launching job whose launcher died released, or recorded launched when its instance has its
 * hand-off; a launched job whose instance died relaunched; a running job whose instance is gone
 * checked on GitHub, and given up on long after the max runtime. Pure; the planner
 * (reconcile-plan.ts) asks them about every job, `npm run status --job` about one.
 */
import { type JobRecord, queuedSince } from "../shared/job";
import {
  ALIVE,
  type FleetView,
  instanceOf,
  isDue,
  minutes,
  type ReconcileAction,
  type StackInstance,
  seconds,
} from "./reconcile-model";

/** What one run does about a job the instance rules left alone. */
export function jobActions(job: JobRecord, view: FleetView): ReconcileAction[] {
  // The runner launched for this job took another one (a missed in_progress follow-up): relaunch now.
  const taker = job.instanceId ? view.holder.get(job.instanceId) : undefined;
  if ((job.state === "launching" || job.state === "launched") && taker && taker.jobId !== job.jobId) {
    const reason = `runner of instance ${job.instanceId} took job ${taker.jobId}: relaunch`;
    return [release(job, job.state, job.instanceId, reason)];
  }
  switch (job.state) {
    case "queued":
      return queuedActions(job, view);
    case "launching":
      return launchingActions(job, view);
    case "launched":
      return launchedActions(job, view);
    case "running":
    case "interrupted":
      return runningActions(job, view);
    default:
      return [];
  }
}

function release(
  job: JobRecord,
  from: "launching" | "launched",
  instanceId: string | undefined,
  reason: string,
  check = false,
): ReconcileAction {
  return { kind: "release", jobId: job.jobId, configName: job.configName, from, instanceId, reason, check };
}

function queuedActions(job: JobRecord, view: FleetView): ReconcileAction[] {
  const { policy: p, now } = view;
  const { jobId, configName } = job;
  if (isDue(view, "queue-timeout", queuedSince(job), p.queueTimeoutSeconds)) {
    const reason = `no runner within the queue timeout of ${minutes(p.queueTimeoutSeconds)} (${job.attempts ?? 0} launch attempts)`;
    return [{ kind: "expire", jobId, from: "queued", reason }];
  }
  if (!job.enqueuedAt) {
    if (!isDue(view, "enqueue-claim", job.enqueueClaimedAt ?? job.updatedAt, p.enqueueClaimSeconds))
      return [];
    const reason = "recorded but never enqueued (webhook stopped between record and enqueue)";
    return [{ kind: "enqueue", jobId, configName, reason, check: false }];
  }
  // Counted from the later of the send and the last change (a release, a redelivered webhook).
  const since = Date.parse(job.enqueuedAt) > Date.parse(job.updatedAt) ? job.enqueuedAt : job.updatedAt;
  if (!isDue(view, "requeue", since, p.requeueAfterSeconds)) return [];
  // Queued this long, it may have been cancelled with the webhook lost: ask GitHub first.
  const check = view.mayCheck();
  const reason = `queued ${minutes(seconds(job.updatedAt, now))} with no launch: enqueued again`;
  return [{ kind: "enqueue", jobId, configName, reason, check }];
}

/**
 * A job `launching` past the launching timeout lost its launcher. Where the launcher got to decides
 * (see the crash points in launcher/launch-batch.ts): without an instance recorded, or with one that
 * has no hand-off, the job is released (and that instance, which can never start a runner,
 * terminated). An instance with its hand-off may already run the job's runner: the job is recorded
 * `launched`, so the launched and idle rules take over; a second launch would give it two runners.
 */
function launchingActions(job: JobRecord, view: FleetView): ReconcileAction[] {
  const since = job.launchingAt ?? job.updatedAt;
  if (!isDue(view, "launching-timeout", since, view.policy.launchingTimeoutSeconds)) return [];
  const lost = `launching for ${minutes(seconds(since, view.now))}: launcher lost`;
  const { instanceId } = job;
  if (!instanceId) return [release(job, "launching", undefined, lost)];
  if (!view.handoffs) return []; // unread: its instance may be taking the job
  const report = view.handoffs.get(instanceId);
  const instance = view.instances?.get(instanceId);
  const alive = instance && ALIVE.has(instance.state);
  if (!report) {
    const reason = `${lost} before the hand-off to ${instanceId}`;
    const terminate: ReconcileAction[] = alive
      ? [{ kind: "terminate", instanceId, jobId: job.jobId, reason }]
      : [];
    return [...terminate, release(job, "launching", instanceId, reason)];
  }
  if (instance && !alive) {
    // A runner that started may have run the job before its instance died: ask GitHub first.
    const check = !!report.runnerStartedAt && view.mayCheck();
    const reason = `${lost}; instance ${instanceId} is ${instance.state} after its hand-off: relaunch`;
    return [release(job, "launching", instanceId, reason, check)];
  }
  const progress = report.runnerStartedAt
    ? "its runner started"
    : report.fetchedAt
      ? "it took its JIT config"
      : "it has not taken its JIT config yet";
  return [
    {
      kind: "mark-launched",
      jobId: job.jobId,
      instanceId,
      launchedAt: report.createdAt ?? view.now.toISOString(),
      reason: `${lost} after the hand-off to ${instanceId} (${progress}): recorded launched`,
    },
  ];
}

/** A launched job whose instance is not alive, or was never listed, is launched again. */
function launchedActions(job: JobRecord, view: FleetView): ReconcileAction[] {
  if (!job.instanceId || !view.instances) return [];
  const instance = view.instances.get(instanceOf(job, view.policy.stackName) ?? job.instanceId);
  const since = job.launchedAt ?? job.updatedAt;
  const gone = instance
    ? !ALIVE.has(instance.state) &&
      !(
        listedBeforeStart(instance, job) &&
        !isDue(view, "stale-listing", since, view.policy.orphanGraceSeconds)
      )
    : isDue(view, "unlisted-instance", since, view.policy.orphanGraceSeconds);
  if (!gone) return [];
  const reason = `instance ${job.instanceId} is ${instance?.state ?? "gone"} before the job started: relaunch`;
  return [release(job, "launched", job.instanceId, reason)];
}

/**
 * A stopped pool member listed as it was before the launcher started it for this job: DescribeInstances
 * lags a StartInstances, and a start resets the launch time, so a stopped listing whose launch time
 * is older than the job's launch predates the start (given the orphan grace to catch up).
 */
function listedBeforeStart(instance: StackInstance, job: JobRecord): boolean {
  const stoppedState = instance.state === "stopped" || instance.state === "stopping";
  return stoppedState && !!job.launchedAt && Date.parse(instance.launchTime) < Date.parse(job.launchedAt);
}

/** A running job whose instance is gone: GitHub is asked whether it finished; given up on much later. */
function runningActions(job: JobRecord, view: FleetView): ReconcileAction[] {
  if (!view.instances) return [];
  const { policy: p, now } = view;
  const actions: ReconcileAction[] = [];
  const instanceId = instanceOf(job, p.stackName);
  const instance = instanceId ? view.instances.get(instanceId) : undefined;
  const alive = instance && ALIVE.has(instance.state);
  if (!alive && isDue(view, "completion-check", job.updatedAt, p.completedGraceSeconds) && view.mayCheck()) {
    const where = instanceId
      ? `instance ${instanceId} is ${instance?.state ?? "gone"}`
      : "no runner of this stack";
    actions.push({
      kind: "check",
      jobId: job.jobId,
      reason: `${job.state} but ${where}: completion not seen`,
    });
  }
  const giveUpAfter = p.maxRuntimeSeconds + p.queueTimeoutSeconds + p.completedGraceSeconds;
  if (isDue(view, "give-up", queuedSince(job), giveUpAfter)) {
    const reason = `still ${job.state} ${minutes(seconds(queuedSince(job), now))} after it was queued, and no completion seen`;
    actions.push({ kind: "expire", jobId: job.jobId, from: job.state, reason });
  }
  return actions;
}
