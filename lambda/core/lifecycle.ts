/**
 * Pure decisions about a job's life after its launch: a runner taking another job than the one it was
 * launched for ("stolen" runner), a spot interruption, an instance that died, the per-config spot
 * circuit breaker, and the re-run of a job that an interruption failed. The handlers (webhook,
 * ec2-events, reconciler) read state, call these, and apply the result with conditional writes.
 */
import type { JobRecord, JobState, Market } from "../shared/job";
import type { LabelConfig } from "../shared/label-config";
import { instanceIdFromRunnerName } from "./stack-identity";

/** States in which a job holds an instance whose runner has not taken it yet. */
const WAITING_FOR_RUNNER: readonly JobState[] = ["launching", "launched"];

export interface InProgressDecision {
  /** The instance the runner runs on, when it is one of this stack's runners. */
  instanceId?: string;
  /** Jobs launched for that instance whose runner took this job instead: each needs a new launch. */
  release: { jobId: string; configName: string; from: "launching" | "launched"; reason: string }[];
}

/**
 * `in_progress` for `jobId` on runner `runnerName`. GitHub gives a JIT runner any queued job whose
 * labels it matches, so the runner launched for job A may start job B; A then has no runner coming and
 * is released to the queue at once (not after the idle timeout). `onInstance` are the jobs the ledger
 * maps to the runner's instance.
 */
export function decideInProgress(args: {
  stackName: string;
  jobId: string;
  runnerName: string;
  onInstance: JobRecord[];
}): InProgressDecision {
  const instanceId = instanceIdFromRunnerName(args.stackName, args.runnerName);
  if (!instanceId) return { release: [] };
  const release = args.onInstance
    .filter(
      (j) => j.jobId !== args.jobId && j.instanceId === instanceId && WAITING_FOR_RUNNER.includes(j.state),
    )
    .map((j) => ({
      jobId: j.jobId,
      configName: j.configName,
      from: j.state as "launching" | "launched",
      reason: `runner ${args.runnerName} took job ${args.jobId} instead: relaunched`,
    }));
  return { instanceId, release };
}

export type InstanceEventDecision =
  /** The job had not started: give it a new instance now (release to queued, enqueue). */
  | { kind: "relaunch"; from: "launched"; reason: string; terminate: boolean }
  /** The job is running on a spot instance about to be reclaimed. */
  | { kind: "mark-interrupted"; reason: string }
  | { kind: "none"; reason: string };

/**
 * A spot interruption warning (2 minutes ahead) for the instance of `job`. A job still waiting for its
 * runner is relaunched at once and the doomed instance terminated, so its runner cannot take a job in
 * the two minutes left; a running job is marked interrupted (GitHub fails it when the runner dies).
 */
export function decideInterruption(job: JobRecord | undefined, instanceId: string): InstanceEventDecision {
  if (!job) return { kind: "none", reason: `no job on ${instanceId}` };
  if (job.state === "launched") {
    return {
      kind: "relaunch",
      from: "launched",
      reason: `spot interruption of ${instanceId} before the job started: relaunched`,
      terminate: true,
    };
  }
  if (job.state === "running")
    return { kind: "mark-interrupted", reason: `spot interruption of ${instanceId}` };
  return { kind: "none", reason: `job ${job.jobId} is ${job.state}` };
}

/**
 * An instance of `job` reached `state` at `at` (EC2 state-change notification). A change from before
 * the job was launched on the instance belongs to its earlier life: a stopped pool member's stop
 * after its warm-up, delivered late, must not relaunch the job that has just started it.
 */
export function decideInstanceStopped(
  job: JobRecord | undefined,
  instanceId: string,
  state: string,
  at?: Date,
): InstanceEventDecision {
  if (state !== "terminated" && state !== "stopped" && state !== "shutting-down") {
    return { kind: "none", reason: `state ${state}` };
  }
  // EventBridge times events to the second: one in the launch's own second cannot be ordered, so it counts.
  const launchSecond = job?.launchedAt ? Math.floor(Date.parse(job.launchedAt) / 1000) * 1000 : Number.NaN;
  if (at && at.getTime() < launchSecond) {
    return { kind: "none", reason: `${state} at ${at.toISOString()}, before job ${job?.jobId} was launched` };
  }
  if (job?.state === "launched" && job.instanceId === instanceId) {
    return {
      kind: "relaunch",
      from: "launched",
      reason: `instance ${instanceId} ${state} before the job started: relaunched`,
      terminate: state === "stopped",
    };
  }
  return { kind: "none", reason: job ? `job ${job.jobId} is ${job.state}` : `no job on ${instanceId}` };
}

// ---- Spot circuit breaker -------------------------------------------------------------------------

export interface BreakerPolicy {
  /** Interruptions within the window that open the breaker. */
  threshold: number;
  windowSeconds: number;
  /** How long an open breaker keeps the config off spot. */
  cooldownSeconds: number;
}

/** Per-config breaker state, as stored (see adapters/reserved-items.ts). */
export interface BreakerState {
  configName: string;
  /** ISO times of the interruptions inside the window. */
  interruptions: string[];
  openUntil?: string;
  /** Times the breaker opened, for the on-call. */
  opened?: number;
}

/** The breaker after one more interruption at `at`: opens when `threshold` fall inside the window. */
export function recordInterruption(
  state: BreakerState | undefined,
  configName: string,
  at: Date,
  policy: BreakerPolicy,
): { state: BreakerState; opened: boolean } {
  const since = at.getTime() - policy.windowSeconds * 1000;
  const interruptions = [...(state?.interruptions ?? []), at.toISOString()]
    .filter((t) => Date.parse(t) > since)
    .sort();
  const alreadyOpen = breakerOpen(state, at);
  if (!alreadyOpen && interruptions.length >= policy.threshold) {
    return {
      state: {
        configName,
        interruptions: [],
        openUntil: new Date(at.getTime() + policy.cooldownSeconds * 1000).toISOString(),
        opened: (state?.opened ?? 0) + 1,
      },
      opened: true,
    };
  }
  return { state: { ...state, configName, interruptions }, opened: false };
}

export function breakerOpen(state: BreakerState | undefined, now: Date): boolean {
  return !!state?.openUntil && Date.parse(state.openUntil) > now.getTime();
}

// ---- Re-run on interruption -----------------------------------------------------------------------

/**
 * Marks a workflow run whose job an interruption failed and that was re-run: jobs of the run's later
 * attempts launch on on-demand capacity. Keyed by (repo, run id) because the re-run job is a new job
 * id in attempt `fromAttempt + 1`; the webhook records repo, run id and attempt on every job.
 */
export interface RetryMarker {
  repo: string;
  runId: number;
  /** The attempt the interrupted job belonged to. */
  fromAttempt: number;
  jobId: string;
  configName: string;
  reason: string;
  createdAt: string;
}

/**
 * `completed` for a job: should GitHub re-run it once on on-demand capacity? Only when its config asks
 * for it, a spot interruption hit the job, and it failed; "once" is the marker's conditional create.
 */
export function decideRetryOnInterruption(
  job: JobRecord,
  conclusion: string | undefined,
  config: Pick<LabelConfig, "retryOnInterruption"> | undefined,
): { rerun: false; reason: string } | { rerun: true; reason: string } {
  if (!config?.retryOnInterruption) return { rerun: false, reason: "retryOnInterruption is off" };
  if (!job.interruptedAt && job.state !== "interrupted") return { rerun: false, reason: "not interrupted" };
  if (job.market === "on-demand") return { rerun: false, reason: "ran on on-demand capacity" };
  if (conclusion !== "failure") return { rerun: false, reason: `conclusion ${conclusion ?? "none"}` };
  return {
    rerun: true,
    reason: `spot interruption of ${job.instanceId ?? "its instance"} failed the job: re-run once on on-demand`,
  };
}

// ---- What the launcher asks ------------------------------------------------------------------------

/**
 * The market a launch of `job` must use instead of its config's spot policy, or undefined to follow the
 * policy. A re-run of an interrupted job goes on-demand (retryOnInterruption asks for exactly that, even
 * with spotOnly); an open breaker moves a spotPreferred config to on-demand (spotOnly keeps spot: the
 * user said never on-demand; onDemandOnly is on-demand anyway).
 */
export function marketOverride(args: {
  job: Pick<JobRecord, "runAttempt" | "configName">;
  config: Pick<LabelConfig, "spotPolicy">;
  breaker?: BreakerState;
  retry?: RetryMarker;
  now: Date;
}): { market: Market; reason: string } | undefined {
  const { job, config, breaker, retry, now } = args;
  if (config.spotPolicy === "onDemandOnly") return undefined;
  // Same config only: the re-run attempt also holds the job's dependents, which did not fail.
  if (retry && retry.configName === job.configName && (job.runAttempt ?? 1) > retry.fromAttempt) {
    return { market: "on-demand", reason: `re-run after spot interruption of job ${retry.jobId}` };
  }
  if (config.spotPolicy === "spotPreferred" && breakerOpen(breaker, now)) {
    return { market: "on-demand", reason: `spot circuit breaker open until ${breaker?.openUntil}` };
  }
  return undefined;
}
