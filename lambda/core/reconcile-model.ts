/**
 * The reconciler's model, shared by its rules (reconcile-instances.ts, reconcile-jobs.ts,
 * reconcile-runners.ts) and its planner (reconcile-plan.ts): what the stack sees, the policy, the
 * actions, and the view every rule reads (the input indexed by instance). Pure, no I/O.
 */
import type { PoolMember } from "../adapters/pool-members";
import type { HandoffReport } from "../shared/handoff-report";
import type { JobRecord, JobState } from "../shared/job";
import { instanceIdFromRunnerName } from "./stack-identity";

/** An EC2 instance carrying the stack tag, as DescribeInstances reports it. */
export interface StackInstance {
  instanceId: string;
  /** EC2 state name: pending, running, shutting-down, terminated, stopping, stopped. */
  state: string;
  /** ISO-8601 launch time. */
  launchTime: string;
  configName?: string;
  /** The config whose stopped pool it was launched for (TAGS.poolMember), if it is a pool member. */
  poolConfig?: string;
}

/** What the instance rules need of a pool member's item (lambda/adapters/pool-members.ts). */
export type PoolMemberItem = Pick<PoolMember, "instanceId" | "state" | "claimedAt">;

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
  /** Record `launched` for a job whose launcher died after handing its instance the JIT config. */
  | { kind: "mark-launched"; jobId: string; instanceId: string; launchedAt: string; reason: string }
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
  /**
   * The instances' hand-off reports, or undefined when the hand-off table could not be read (then
   * no job that recorded an instance is released for a lost launcher: its instance may be taking it).
   */
  handoffs?: HandoffReport[];
  /**
   * The stopped pools' member items, or undefined when the pool table could not be read (then no
   * pool-tagged instance without a job is touched: it may be a member).
   */
  poolMembers?: PoolMemberItem[];
  policy: ReconcilePolicy;
  now: Date;
}

/** The timed rules: each waits from some moment for a span of the policy (see `isDue`). */
export type RuleTimer =
  | "queue-timeout"
  | "enqueue-claim"
  | "requeue"
  | "launching-timeout"
  | "unlisted-instance"
  | "stale-listing"
  | "completion-check"
  | "give-up"
  | "max-runtime"
  | "finished-grace"
  | "orphan"
  | "idle";

/** What every rule reads besides the thing it decides about: the input indexed by instance. */
export interface FleetView {
  policy: ReconcilePolicy;
  now: Date;
  /** Undefined when EC2 could not be read. */
  instances?: Map<string, StackInstance>;
  /** Undefined when the hand-off table could not be read. */
  handoffs?: Map<string, HandoffReport>;
  /** The non-terminal job holding each instance. */
  holder: Map<string, JobRecord>;
  /** The latest terminal job that ran on each instance. */
  finished: Map<string, JobRecord>;
  /** Pool member items by instance; undefined when the pool table could not be read. */
  poolMembers?: Map<string, PoolMemberItem>;
  /** Takes one GitHub look-up from the run's budget; false once it is spent. */
  mayCheck(): boolean;
  /** When set, each timed rule a decision passes records when it comes due (epoch ms). */
  timers?: Map<RuleTimer, number>;
}

export const ALIVE = new Set(["pending", "running"]);

export const seconds = (from: string | undefined, now: Date): number =>
  from ? (now.getTime() - Date.parse(from)) / 1000 : Number.POSITIVE_INFINITY;

export const minutes = (s: number) => `${Math.round(s / 60)} min`;

/**
 * Whether `waitSeconds` have passed since `from` (always, without `from`); records when the wait
 * ends on the view's timers, so an explanation can say when a rule will act.
 */
export function isDue(view: FleetView, timer: RuleTimer, from: string | undefined, waitSeconds: number) {
  view.timers?.set(timer, from ? Date.parse(from) + waitSeconds * 1000 : Number.NEGATIVE_INFINITY);
  return seconds(from, view.now) > waitSeconds;
}

/**
 * Where a job runs: the runner named in its last event (`in_progress` names the runner that took
 * it, which after a "stolen" runner is not the instance launched for it, and the webhook's follow-up
 * that moves instanceId may not have run), else the instance launched for it.
 */
export function instanceOf(job: JobRecord, stackName: string): string | undefined {
  return (job.runnerName ? instanceIdFromRunnerName(stackName, job.runnerName) : undefined) ?? job.instanceId;
}
