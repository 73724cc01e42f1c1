/**
 * The reconciler's planner: a pure function from what the stack sees (jobs in the ledger, the stack's
 * EC2 instances, its GitHub runners, the instances' hand-off reports) to a list of actions, each with
 * the reason an on-call reads. Nothing here does I/O; the reconciler Lambda applies the actions, each
 * as a conditional write or an idempotent API call, so a plan made from a slightly stale view is safe:
 * an action whose premise no longer holds fails its condition and is skipped.
 */
import type { HandoffReport } from "../shared/handoff-report";
import type { JobRecord, JobState } from "../shared/job";
import { isTerminal, queuedSince } from "../shared/job";
import { instanceIdFromRunnerName } from "./stack-identity";

/** An EC2 instance carrying the stack tag, as DescribeInstances reports it. */
export interface StackInstance {
  instanceId: string;
  /** EC2 state name: pending, running, shutting-down, terminated, stopping, stopped. */
  state: string;
  /** ISO-8601 launch time. */
  launchTime: string;
  configName?: string;
}

/** A self-hosted runner registered with GitHub (org or repo scope). */
export interface GithubRunner {
  id: number;
  name: string;
  /** `online` or `offline`. */
  status: string;
  busy: boolean;
}

/** Timeouts and bounds of one reconciler run; all durations in seconds. */
export interface ReconcilePolicy {
  stackName: string;
  /**
   * A queued job whose launch message was never sent (no `enqueuedAt`: the webhook died between its
   * record and its enqueue) is enqueued when its enqueue claim is this old
   * (intake-decision.ts ENQUEUE_CLAIM_SECONDS).
   */
  enqueueClaimSeconds: number;
  /** A queued job with a launch message but no launch for this long is enqueued again (lost message). */
  requeueAfterSeconds: number;
  /** A job `launching` this long (longer than the launcher may run) lost its launcher. */
  launchingTimeoutSeconds: number;
  /** A job still without a runner this long after it was queued is failed (`timed-out`). */
  queueTimeoutSeconds: number;
  /** An instance older than this is terminated. */
  maxRuntimeSeconds: number;
  /** An instance whose runner got no job for this long (from runner start, or launch) is terminated. */
  idleTimeoutSeconds: number;
  /** An instance with no job and no hand-off this long after launch is an orphan. */
  orphanGraceSeconds: number;
  /** An instance still alive this long after its job finished is terminated; also how long a
   * running job may outlive its instance before GitHub is asked whether it finished. */
  completedGraceSeconds: number;
  /** Most actions in one run; the rest wait for the next run (oldest first). */
  maxActions: number;
  /** Most GitHub job look-ups in one run. */
  maxGithubChecks: number;
}

export type ReconcileAction =
  /** Enqueue a queued job again (webhook record-then-enqueue gap, lost or delayed message). */
  | { kind: "enqueue"; jobId: string; configName: string; reason: string; check: boolean }
  /** Move a launching/launched job back to queued (conditional on `from` and `instanceId`), then enqueue. */
  | {
      kind: "release";
      jobId: string;
      configName: string;
      from: "launching" | "launched";
      instanceId?: string;
      reason: string;
      check: boolean;
    }
  /** Fail a job that never got capacity, or ran past the max runtime (state `timed-out`). */
  | { kind: "expire"; jobId: string; from: JobState; reason: string }
  /** Mark a running job interrupted: its instance reported a spot interruption notice. */
  | { kind: "interrupt"; jobId: string; instanceId: string; interruptedAt: string; reason: string }
  /** Ask GitHub whether a job whose instance is gone finished (a lost `completed` webhook). */
  | { kind: "check"; jobId: string; reason: string }
  | { kind: "terminate"; instanceId: string; jobId?: string; reason: string }
  | { kind: "delete-handoff"; instanceId: string; reason: string }
  | { kind: "delete-runner"; runnerId: number; runnerName: string; reason: string };

export interface ReconcileInput {
  /** Jobs in non-terminal states, plus the jobs found by instance id for instances no such job holds. */
  jobs: JobRecord[];
  /** Every stack-tagged instance, or undefined when EC2 could not be read (instance rules are skipped). */
  instances?: StackInstance[];
  /** This stack's runners on GitHub, or undefined when GitHub could not be read. */
  runners?: GithubRunner[];
  handoffs: HandoffReport[];
  policy: ReconcilePolicy;
  now: Date;
}

export interface ReconcilePlan {
  actions: ReconcileAction[];
  /** Actions found but left for the next run (maxActions). */
  deferred: number;
}

const ALIVE = new Set(["pending", "running"]);
const HOLDING: readonly JobState[] = ["launching", "launched", "running", "interrupted"];

/** Which of two jobs naming one instance holds it: the one whose runner took it. */
const rank = (job: JobRecord) => (job.state === "running" || job.state === "interrupted" ? 1 : 0);

const seconds = (from: string | undefined, now: Date): number =>
  from ? (now.getTime() - Date.parse(from)) / 1000 : Number.POSITIVE_INFINITY;

const minutes = (s: number) => `${Math.round(s / 60)} min`;

export function planReconcile(input: ReconcileInput): ReconcilePlan {
  const { policy: p, now } = input;
  const actions: ReconcileAction[] = [];
  const handoffs = new Map(input.handoffs.map((h) => [h.instanceId, h]));
  const instances = input.instances ? new Map(input.instances.map((i) => [i.instanceId, i])) : undefined;
  // The non-terminal job holding each instance, and the latest terminal job that ran on it.
  const holder = new Map<string, JobRecord>();
  const finished = new Map<string, JobRecord>();
  // Where a job runs: the runner named in its last event (`in_progress` names the runner that took
  // it, which after a "stolen" runner is not the instance launched for it, and the webhook's follow-up
  // that moves instanceId may not have run), else the instance launched for it.
  const instanceOf = (job: JobRecord) =>
    (job.runnerName ? instanceIdFromRunnerName(p.stackName, job.runnerName) : undefined) ?? job.instanceId;
  for (const job of input.jobs) {
    const instanceId = instanceOf(job);
    if (!instanceId) continue;
    // A runner that took another job than it was launched for ("stolen") is held by the running job.
    const current = holder.get(instanceId);
    if (HOLDING.includes(job.state) && !(current && rank(current) >= rank(job))) holder.set(instanceId, job);
    else if (isTerminal(job.state)) finished.set(instanceId, job);
  }
  const handled = new Set<string>(); // jobs that already have an action
  let checks = 0;
  const mayCheck = () => checks < p.maxGithubChecks && ++checks > 0;

  // Instances first: terminating an instance also decides what happens to its job.
  for (const instance of input.instances ?? []) {
    const { instanceId } = instance;
    const job = holder.get(instanceId);
    if (instance.state === "stopping" || instance.state === "stopped") {
      actions.push({
        kind: "terminate",
        instanceId,
        jobId: job?.jobId,
        reason: `instance is ${instance.state}`,
      });
      continue;
    }
    if (!ALIVE.has(instance.state)) continue;
    const age = seconds(instance.launchTime, now);
    const report = handoffs.get(instanceId);
    if (age > p.maxRuntimeSeconds) {
      const reason = `instance ran ${minutes(age)}, over the max runtime of ${minutes(p.maxRuntimeSeconds)}`;
      actions.push({ kind: "terminate", instanceId, jobId: job?.jobId, reason });
      if (job && (job.state === "running" || job.state === "interrupted" || job.state === "launched")) {
        actions.push({ kind: "expire", jobId: job.jobId, from: job.state, reason });
        handled.add(job.jobId);
      }
      continue;
    }
    if (job && (job.state === "running" || job.state === "interrupted")) {
      // The instance saw the spot notice (IMDS) but the EventBridge warning never reached ec2-events.
      if (job.state === "running" && report?.interruptedAt) {
        actions.push({
          kind: "interrupt",
          jobId: job.jobId,
          instanceId,
          interruptedAt: report.interruptedAt,
          reason: `spot interruption of ${instanceId} (reported by the instance)`,
        });
      }
      continue;
    }
    const done = finished.get(instanceId);
    // A runner runs one job: once the job its runner took (in_progress named it) is closed, the
    // instance has nothing left to do, even if it never reported the job finished (crashed runner).
    const ranHere =
      !job &&
      done?.startedAt &&
      done.runnerName &&
      instanceIdFromRunnerName(p.stackName, done.runnerName) === instanceId;
    if (report?.jobStartedAt && !report.jobFinishedAt && !ranHere) continue; // a job runs there (webhook not seen yet)
    if (report?.jobFinishedAt) {
      const after = seconds(report.jobFinishedAt, now);
      if (after > p.completedGraceSeconds) {
        const reason = `its job finished ${minutes(after)} ago and the instance did not shut down`;
        actions.push({ kind: "terminate", instanceId, jobId: job?.jobId, reason });
      }
      continue;
    }
    if (!job && done) {
      const after = seconds(done.completedAt ?? done.updatedAt, now);
      if (after > p.completedGraceSeconds) {
        const reason = `job ${done.jobId} is ${done.state} for ${minutes(after)} and the instance still runs`;
        actions.push({ kind: "terminate", instanceId, jobId: done.jobId, reason });
      }
      continue;
    }
    if (!job && !report) {
      if (age > p.orphanGraceSeconds) {
        const reason = `orphan: no job and no hand-off ${minutes(age)} after launch`;
        actions.push({ kind: "terminate", instanceId, reason });
      }
      continue;
    }
    // A runner (started or still booting) that got no job.
    const idleFrom = report?.runnerStartedAt ?? instance.launchTime;
    const idle = seconds(idleFrom, now);
    if (idle > p.idleTimeoutSeconds) {
      const what = report?.runnerStartedAt ? "its runner got no job" : "its runner never started";
      const reason = `idle: ${what} in ${minutes(idle)} (idle timeout ${minutes(p.idleTimeoutSeconds)})`;
      actions.push({ kind: "terminate", instanceId, jobId: job?.jobId, reason });
      if (job && (job.state === "launched" || job.state === "launching")) {
        // Check GitHub first when the runner was up: the job may have been cancelled or taken elsewhere.
        const check = !!report?.runnerStartedAt && mayCheck();
        actions.push({
          kind: "release",
          jobId: job.jobId,
          configName: job.configName,
          from: job.state,
          instanceId,
          reason,
          check,
        });
        handled.add(job.jobId);
      }
    }
  }

  for (const job of input.jobs) {
    if (handled.has(job.jobId) || isTerminal(job.state)) continue;
    const waited = seconds(queuedSince(job), now);
    const sinceChange = seconds(job.updatedAt, now);
    const instanceId = instanceOf(job);
    const instance = instanceId ? instances?.get(instanceId) : undefined;
    // The runner launched for this job took another one (a missed in_progress follow-up): relaunch now.
    const taker = job.instanceId ? holder.get(job.instanceId) : undefined;
    if ((job.state === "launching" || job.state === "launched") && taker && taker.jobId !== job.jobId) {
      actions.push({
        kind: "release",
        jobId: job.jobId,
        configName: job.configName,
        from: job.state,
        instanceId: job.instanceId,
        reason: `runner of instance ${job.instanceId} took job ${taker.jobId}: relaunch`,
        check: false,
      });
      continue;
    }
    switch (job.state) {
      case "queued":
        if (waited > p.queueTimeoutSeconds) {
          actions.push({
            kind: "expire",
            jobId: job.jobId,
            from: "queued",
            reason: `no runner within the queue timeout of ${minutes(p.queueTimeoutSeconds)} (${job.attempts ?? 0} launch attempts)`,
          });
        } else if (
          !job.enqueuedAt &&
          seconds(job.enqueueClaimedAt ?? job.updatedAt, now) > p.enqueueClaimSeconds
        ) {
          const reason = "recorded but never enqueued (webhook stopped between record and enqueue)";
          actions.push({
            kind: "enqueue",
            jobId: job.jobId,
            configName: job.configName,
            reason,
            check: false,
          });
        } else if (
          job.enqueuedAt &&
          Math.min(sinceChange, seconds(job.enqueuedAt, now)) > p.requeueAfterSeconds
        ) {
          // Queued this long, it may have been cancelled with the webhook lost: ask GitHub first.
          const check = mayCheck();
          const reason = `queued ${minutes(sinceChange)} with no launch: enqueued again`;
          actions.push({ kind: "enqueue", jobId: job.jobId, configName: job.configName, reason, check });
        }
        break;
      case "launching":
        if (seconds(job.launchingAt ?? job.updatedAt, now) > p.launchingTimeoutSeconds) {
          const reason = `launching for ${minutes(seconds(job.launchingAt ?? job.updatedAt, now))}: launcher lost`;
          actions.push({
            kind: "release",
            jobId: job.jobId,
            configName: job.configName,
            from: "launching",
            reason,
            check: false,
          });
        }
        break;
      case "launched": {
        if (!job.instanceId || !instances) break;
        const gone = !instance
          ? seconds(job.launchedAt ?? job.updatedAt, now) > p.orphanGraceSeconds
          : !ALIVE.has(instance.state);
        if (gone) {
          const reason = `instance ${job.instanceId} is ${instance?.state ?? "gone"} before the job started: relaunch`;
          actions.push({
            kind: "release",
            jobId: job.jobId,
            configName: job.configName,
            from: "launched",
            instanceId: job.instanceId,
            reason,
            check: false,
          });
        }
        break;
      }
      case "running":
      case "interrupted": {
        if (!instances) break;
        const alive = instance && ALIVE.has(instance.state);
        if (!alive && sinceChange > p.completedGraceSeconds && mayCheck()) {
          const where = instanceId
            ? `instance ${instanceId} is ${instance?.state ?? "gone"}`
            : "no runner of this stack";
          actions.push({
            kind: "check",
            jobId: job.jobId,
            reason: `${job.state} but ${where}: completion not seen`,
          });
        }
        if (waited > p.maxRuntimeSeconds + p.queueTimeoutSeconds + p.completedGraceSeconds) {
          actions.push({
            kind: "expire",
            jobId: job.jobId,
            from: job.state,
            reason: `still ${job.state} ${minutes(waited)} after it was queued, and no completion seen`,
          });
        }
        break;
      }
    }
  }

  if (input.instances && input.runners) {
    const alive = new Set(input.instances.filter((i) => ALIVE.has(i.state)).map((i) => i.instanceId));
    for (const runner of input.runners) {
      const instanceId = instanceIdFromRunnerName(p.stackName, runner.name);
      if (!instanceId || runner.status !== "offline" || runner.busy) continue;
      // A fresh instance may not be listed yet (DescribeInstances is eventually consistent): its job or
      // hand-off names it. A listed instance that is not alive is gone.
      if (alive.has(instanceId) || holder.has(instanceId)) continue;
      if (handoffs.has(instanceId) && !instances?.has(instanceId)) continue;
      actions.push({
        kind: "delete-runner",
        runnerId: runner.id,
        runnerName: runner.name,
        reason: `offline and its instance ${instanceId} is gone`,
      });
    }
  }

  if (input.instances) {
    for (const report of input.handoffs) {
      const instance = instances?.get(report.instanceId);
      if (instance && ALIVE.has(instance.state)) continue;
      // An instance not listed yet (DescribeInstances is eventually consistent) keeps its fresh hand-off.
      const unlisted =
        !instance &&
        (holder.has(report.instanceId) || seconds(report.createdAt, now) <= p.orphanGraceSeconds);
      if (!unlisted) {
        actions.push({
          kind: "delete-handoff",
          instanceId: report.instanceId,
          reason: `instance is ${instance?.state ?? "gone"}`,
        });
      }
    }
  }

  return { actions: actions.slice(0, p.maxActions), deferred: Math.max(0, actions.length - p.maxActions) };
}
