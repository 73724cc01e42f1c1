/**
 * The reconciler's planner: a pure function from what the stack sees (jobs in the ledger, the stack's
 * EC2 instances, its GitHub runners, the instances' hand-off reports) to a list of actions, each with
 * the reason an on-call reads. It asks the rules per kind of thing (reconcile-instances.ts,
 * reconcile-jobs.ts, reconcile-runners.ts); `jobOutlook` asks the same rules about one job, for
 * `npm run status --job`. Nothing here does I/O; the reconciler Lambda applies the actions, each as a
 * conditional write or an idempotent API call, so a plan made from a slightly stale view is safe: an
 * action whose premise no longer holds fails its condition and is skipped.
 */
import type { HandoffReport } from "../shared/handoff-report";
import { isTerminal, type JobRecord, type JobState } from "../shared/job";
import type { Settings } from "../shared/settings";
import { ENQUEUE_CLAIM_SECONDS } from "./intake-decision";
import { handoffActions, instanceActions } from "./reconcile-instances";
import { jobActions } from "./reconcile-jobs";
import {
  type FleetView,
  instanceOf,
  type ReconcileAction,
  type ReconcileInput,
  type ReconcilePolicy,
  type RuleTimer,
  type StackInstance,
} from "./reconcile-model";
import { runnerActions } from "./reconcile-runners";

/** Bounds of one run: actions applied, GitHub job look-ups. */
const MAX_ACTIONS = 200;
const MAX_GITHUB_CHECKS = 30;

export interface ReconcilePlan {
  actions: ReconcileAction[];
  /** Actions found but left for the next run (maxActions). */
  deferred: number;
}

type ReconcileSettings = Pick<
  Settings,
  | "requeueAfterSeconds"
  | "launchingTimeoutSeconds"
  | "queueTimeoutMinutes"
  | "maxRuntimeMinutes"
  | "idleTimeoutMinutes"
  | "orphanGraceSeconds"
  | "completedGraceSeconds"
>;

/** The reconciler's policy from its settings (the status tool passes the settings' defaults). */
export function reconcilePolicy(s: ReconcileSettings, stackName: string): ReconcilePolicy {
  return {
    stackName,
    enqueueClaimSeconds: ENQUEUE_CLAIM_SECONDS,
    requeueAfterSeconds: s.requeueAfterSeconds,
    launchingTimeoutSeconds: s.launchingTimeoutSeconds,
    queueTimeoutSeconds: s.queueTimeoutMinutes * 60,
    maxRuntimeSeconds: s.maxRuntimeMinutes * 60,
    idleTimeoutSeconds: s.idleTimeoutMinutes * 60,
    orphanGraceSeconds: s.orphanGraceSeconds,
    completedGraceSeconds: s.completedGraceSeconds,
    maxActions: MAX_ACTIONS,
    maxGithubChecks: MAX_GITHUB_CHECKS,
  };
}

export function planReconcile(input: ReconcileInput): ReconcilePlan {
  const view = fleetView(input);
  // Instances first: terminating an instance also decides what happens to its job.
  const actions = (input.instances ?? []).flatMap((instance) => instanceActions(instance, view));
  const decided = decidedJobs(actions);
  for (const job of input.jobs) {
    if (!decided.has(job.jobId) && !isTerminal(job.state)) actions.push(...jobActions(job, view));
  }
  if (input.runners) actions.push(...runnerActions(input.runners, view));
  for (const report of input.handoffs ?? []) actions.push(...handoffActions(report, view));
  const { maxActions } = input.policy;
  return { actions: actions.slice(0, maxActions), deferred: Math.max(0, actions.length - maxActions) };
}

/** What is known about one job's instance besides the job: EC2's view of it and its hand-off. */
export interface JobSurroundings {
  /** Its instance; undefined: not read (no instance rule is asked). */
  instance?: StackInstance;
  /** Its hand-off report; null: read, there is none; undefined: not read. */
  handoff?: HandoffReport | null;
}

export interface JobOutlook {
  /** What the next reconciler run does about the job, each with its reason (empty: nothing). */
  actions: ReconcileAction[];
  /** When each timed rule the decision passed comes due (epoch ms; in the past: due now). */
  timers: Map<RuleTimer, number>;
}

/** The rules asked about one job alone, as the planner asks them about every job. */
export function jobOutlook(
  job: JobRecord,
  known: JobSurroundings,
  policy: ReconcilePolicy,
  now: Date,
): JobOutlook {
  const timers = new Map<RuleTimer, number>();
  const view = fleetView(
    {
      jobs: [job],
      instances: known.instance && [known.instance],
      handoffs: known.handoff === undefined ? undefined : known.handoff ? [known.handoff] : [],
      policy,
      now,
    },
    timers,
  );
  const actions = known.instance ? instanceActions(known.instance, view) : [];
  if (!decidedJobs(actions).has(job.jobId) && !isTerminal(job.state)) actions.push(...jobActions(job, view));
  return { actions, timers };
}

/** Jobs an instance rule already released or expired: the job rules leave them alone. */
function decidedJobs(actions: ReconcileAction[]): Set<string> {
  return new Set(actions.flatMap((a) => (a.kind === "release" || a.kind === "expire" ? [a.jobId] : [])));
}

const HOLDING: readonly JobState[] = ["launching", "launched", "running", "interrupted"];

/** Which of two jobs naming one instance holds it: the one whose runner took it. */
const rank = (job: JobRecord) => (job.state === "running" || job.state === "interrupted" ? 1 : 0);

function fleetView(input: Omit<ReconcileInput, "runners">, timers?: Map<RuleTimer, number>): FleetView {
  const { policy, now } = input;
  const holder = new Map<string, JobRecord>();
  const finished = new Map<string, JobRecord>();
  for (const job of input.jobs) {
    const instanceId = instanceOf(job, policy.stackName);
    if (!instanceId) continue;
    // A runner that took another job than it was launched for ("stolen") is held by the running job.
    const current = holder.get(instanceId);
    if (HOLDING.includes(job.state) && !(current && rank(current) >= rank(job))) holder.set(instanceId, job);
    else if (isTerminal(job.state)) finished.set(instanceId, job);
  }
  let checks = 0;
  return {
    policy,
    now,
    instances: input.instances && new Map(input.instances.map((i) => [i.instanceId, i])),
    handoffs: input.handoffs && new Map(input.handoffs.map((h) => [h.instanceId, h])),
    poolMembers: input.poolMembers && new Map(input.poolMembers.map((m) => [m.instanceId, m])),
    holder,
    finished,
    mayCheck: () => checks < policy.maxGithubChecks && ++checks > 0,
    timers,
  };
}
