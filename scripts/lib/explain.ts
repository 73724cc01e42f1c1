/**
 * The on-call's "why is my job stuck?", pure: a job item (and its instance's hand-off report)
 * explained in plain words, for `npm run status --job` (the fleet summary is ./fleet-summary.ts). What the reconciler does next
 * about a job, and when, is asked of the reconciler's own rules (core/reconcile-plan.ts jobOutlook);
 * this file only words it. Says what it does not know rather than guessing: limits it was not given,
 * hand-off reports it could not read.
 */
import {
  instanceOf,
  type ReconcileAction,
  type ReconcilePolicy,
  type RuleTimer,
  type StackInstance,
} from "../../lambda/core/reconcile-model";
import { jobOutlook, reconcilePolicy } from "../../lambda/core/reconcile-plan";
import { initialMarket } from "../../lambda/core/spot-fallback";
import type { HandoffReport } from "../../lambda/shared/handoff-report";
import { type JobRecord, queuedSince } from "../../lambda/shared/job";
import type { SpotPolicy } from "../../lambda/shared/label-config";
import { loadSettings } from "../../lambda/shared/settings";

/** The reconciler's own timings, which the program leaves at their defaults (loadSettings). */
export type ReconcilerTimings = Pick<
  ReconcilePolicy,
  | "enqueueClaimSeconds"
  | "requeueAfterSeconds"
  | "launchingTimeoutSeconds"
  | "orphanGraceSeconds"
  | "completedGraceSeconds"
>;

export interface ConfigLimits {
  maxRunners: number;
  spotPolicy: SpotPolicy;
  spotFailuresBeforeOnDemand: number;
}

/** What the explanation may use besides the job; every part is optional (unknown is said so). */
export interface FleetLimits {
  maxRunnersTotal?: number;
  queueTimeoutMinutes?: number;
  maxRuntimeMinutes?: number;
  idleTimeoutMinutes?: number;
  configs?: Record<string, ConfigLimits>;
  /** Jobs holding an instance now (launching, launched, running), in total and per config. */
  active?: { total: number; byConfig: Record<string, number> };
  /** Overrides of the reconciler's own timings (their defaults otherwise). */
  reconciler?: Partial<ReconcilerTimings>;
}

/**
 * The hand-off report of the job's instance: the report, `null` when it was read and is not there,
 * `undefined` when it was not read (no access, no table name).
 */
export type HandoffLookup = HandoffReport | null | undefined;

/**
 * The policy the reconciler runs with, as far as it is known: a limit not given never comes due
 * (the explanation says it is unknown). The stack name is not known either: a job's instance is the
 * one it records.
 */
function policyFor(limits: FleetLimits): ReconcilePolicy {
  const seconds = (minutes: number | undefined) =>
    minutes === undefined ? Number.POSITIVE_INFINITY : minutes * 60;
  return {
    ...reconcilePolicy(loadSettings({}), ""),
    queueTimeoutSeconds: seconds(limits.queueTimeoutMinutes),
    maxRuntimeSeconds: seconds(limits.maxRuntimeMinutes),
    idleTimeoutSeconds: seconds(limits.idleTimeoutMinutes),
    ...limits.reconciler,
  };
}

/** What the reconciler's rules say about the job: its next actions, and when each timed rule acts. */
interface Outlook {
  policy: ReconcilePolicy;
  actions: ReconcileAction[];
  /** Seconds until the timed rule acts (at most 0: at the next run); undefined: not in play or unknown. */
  dueIn(timer: RuleTimer): number | undefined;
}

/** Asks the rules, with the job's instance taken as up since its launch (EC2 is not read here). */
function outlookOf(job: JobRecord, now: Date, limits: FleetLimits, handoff: HandoffLookup): Outlook {
  const policy = policyFor(limits);
  const instanceId = instanceOf(job, policy.stackName);
  const launchTime = job.launchedAt ?? job.startedAt ?? job.launchingAt;
  const instance: StackInstance | undefined =
    instanceId && launchTime ? { instanceId, state: "running", launchTime } : undefined;
  const { actions, timers } = jobOutlook(job, { instance, handoff }, policy, now);
  const dueIn = (timer: RuleTimer) => {
    const at = timers.get(timer);
    return at === undefined || !Number.isFinite(at) ? undefined : (at - now.getTime()) / 1000;
  };
  return { policy, actions, dueIn };
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** "40 s", "7 min", "2 h 5 min", "3 d 4 h". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

export function secondsSince(iso: string | undefined, now: Date): number | undefined {
  if (!iso) return undefined;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : (now.getTime() - t) / 1000;
}

function since(iso: string | undefined, now: Date): string {
  const s = secondsSince(iso, now);
  return s === undefined ? "for an unknown time" : `for ${formatDuration(s)}`;
}

function ago(iso: string | undefined, now: Date): string {
  const s = secondsSince(iso, now);
  return s === undefined ? "at an unknown time" : `${formatDuration(s)} ago`;
}

function instanceText(job: JobRecord): string {
  const details = [job.market, job.instanceType, job.availabilityZone].filter(Boolean).join(", ");
  return `${job.instanceId ?? "an unrecorded instance"}${details ? ` (${details})` : ""}`;
}

/** Which market the job's next launch asks for, and the policy that says so. */
function nextLaunch(job: JobRecord, config: ConfigLimits | undefined): string {
  if (!config) return `next: unknown (config ${job.configName} is not in the stack config read)`;
  const failures = job.spotFailures ?? 0;
  const market = initialMarket(config, failures);
  switch (config.spotPolicy) {
    case "onDemandOnly":
      return "next: on-demand (onDemandOnly)";
    case "spotOnly":
      return "next: spot (spotOnly: waits for spot capacity until the queue timeout)";
    default:
      return market === "on-demand"
        ? `next: on-demand (spotPreferred after ${config.spotFailuresBeforeOnDemand})`
        : `next: spot (spotPreferred: on-demand after ${plural(config.spotFailuresBeforeOnDemand, "spot failure")})`;
  }
}

function capacityLine(job: JobRecord, limits: FleetLimits): string {
  const config = limits.configs?.[job.configName];
  if (!limits.active) return "capacity: unknown (active runners not counted)";
  const inConfig = limits.active.byConfig[job.configName] ?? 0;
  const parts = [
    `config ${job.configName} ${inConfig}/${config ? config.maxRunners : "?"} runners`,
    `all configs ${limits.active.total}/${limits.maxRunnersTotal ?? "?"}`,
  ];
  const full = [
    config && inConfig >= config.maxRunners && "the config is at its limit",
    limits.maxRunnersTotal !== undefined &&
      limits.active.total >= limits.maxRunnersTotal &&
      "the fleet is at its total limit",
  ].filter(Boolean);
  return `capacity: ${parts.join(", ")}${full.length ? ` — ${full.join(" and ")}: it waits for a runner to finish` : ""}`;
}

function queuedLines(job: JobRecord, now: Date, limits: FleetLimits, outlook: Outlook): string[] {
  const attempts = job.attempts ?? 0;
  const spotFailures = job.spotFailures ?? 0;
  const parts: string[] = [];
  if (job.reason) parts.push(`last: ${job.reason}`);
  else if (attempts > 0) parts.push("no capacity yet");
  else if (!job.enqueuedAt) parts.push("no launch message sent yet (the reconciler re-sends a lost one)");
  else {
    const sent = secondsSince(job.enqueuedAt, now) ?? 0;
    const resend = outlook.dueIn("requeue");
    parts.push(
      resend !== undefined && sent > outlook.policy.requeueAfterSeconds
        ? `its launch message was sent ${formatDuration(sent)} ago and nothing launched: the reconciler asks GitHub and sends it again${resend > 0 ? ` in ${formatDuration(resend)}` : ""}`
        : "waiting for the launcher",
    );
  }
  if (attempts > 0) parts.push(plural(attempts, "launch attempt"));
  if (spotFailures > 0) parts.push(plural(spotFailures, "spot failure"));
  parts.push(nextLaunch(job, limits.configs?.[job.configName]));
  const lines = [`queued ${since(queuedSince(job), now)}: ${parts.join("; ")}`];
  lines.push(capacityLine(job, limits));
  const left = outlook.dueIn("queue-timeout");
  if (limits.queueTimeoutMinutes !== undefined && left !== undefined) {
    lines.push(
      left > 0
        ? `fails at the queue timeout in ${formatDuration(left)} (queueTimeoutMinutes ${limits.queueTimeoutMinutes})`
        : `past the queue timeout (${limits.queueTimeoutMinutes} min): the next reconciler run fails it`,
    );
  } else {
    lines.push("queue timeout: unknown");
  }
  return lines;
}

function runnerProgress(handoff: HandoffLookup, now: Date, limits: FleetLimits, outlook: Outlook): string {
  if (handoff === undefined) return "runner progress unknown (hand-off reports not read)";
  if (handoff === null) return "no hand-off item (the instance removed it, or it expired)";
  if (handoff.jobStartedAt) return `the job started ${ago(handoff.jobStartedAt, now)}`;
  if (handoff.runnerStartedAt) {
    const idleIn = outlook.dueIn("idle");
    const idleLimit = limits.idleTimeoutMinutes;
    return (
      `runner started ${ago(handoff.runnerStartedAt, now)}, waiting for GitHub to assign the job` +
      (idleLimit === undefined || idleIn === undefined
        ? ""
        : ` (terminated as idle in ${formatDuration(idleIn)} without one, idleTimeoutMinutes ${idleLimit})`)
    );
  }
  if (handoff.fetchedAt) return `took its JIT config ${ago(handoff.fetchedAt, now)}, runner not started yet`;
  return "runner not started yet (the instance has not taken its JIT config: still booting?)";
}

/** A launch, and what the reconciler does once it takes longer than the launching timeout. */
function launchingLines(job: JobRecord, now: Date, outlook: Outlook): string[] {
  const attempt = job.attempts ? ` (attempt ${job.attempts + 1})` : "";
  const lines = [
    `launching ${since(job.launchingAt ?? job.updatedAt, now)}${attempt}: a launcher is creating its instance`,
  ];
  const over = `longer than the ${formatDuration(outlook.policy.launchingTimeoutSeconds)} a launch may take`;
  const next = <K extends ReconcileAction["kind"]>(kind: K) =>
    outlook.actions.find((a): a is Extract<ReconcileAction, { kind: K }> => a.kind === kind);
  const [marked, release, terminate] = [next("mark-launched"), next("release"), next("terminate")];
  if (marked) {
    lines.push(
      `${over}, but ${marked.instanceId} has its hand-off: the reconciler records it launched (no second launch)`,
    );
  } else if (release && terminate) {
    lines.push(
      `the reconciler terminates ${terminate.instanceId} and releases the job for another launch: ${release.reason}`,
    );
  } else if (release) {
    lines.push(`${over}: the reconciler releases it for another launch`);
  } else if ((outlook.dueIn("launching-timeout") ?? 1) < 0) {
    lines.push(`${over}: the reconciler reads its instance's hand-off (not read here) before it releases it`);
  }
  return lines;
}

/**
 * The job in plain words: a header, then what its state means now and what happens next. `limits`
 * and `handoff` may be partial or missing; the lines then say what is unknown.
 */
export function explainJob(
  job: JobRecord,
  now: Date,
  limits: FleetLimits = {},
  handoff?: HandoffLookup,
): string[] {
  const run = `run ${job.runId}${job.runAttempt ? `, attempt ${job.runAttempt}` : ""}`;
  const lines = [
    `job ${job.jobId} in ${job.repo} (${run}), config ${job.configName}, labels ${job.labels.join(", ")}`,
  ];
  const outlook = outlookOf(job, now, limits, handoff);
  switch (job.state) {
    case "queued":
      lines.push(...queuedLines(job, now, limits, outlook));
      break;
    case "launching":
      lines.push(...launchingLines(job, now, outlook));
      break;
    case "launched":
      lines.push(
        `launched on ${instanceText(job)} ${ago(job.launchedAt ?? job.updatedAt, now)}, ${runnerProgress(handoff, now, limits, outlook)}`,
      );
      break;
    case "running": {
      lines.push(
        `running on ${instanceText(job)} ${since(job.startedAt ?? job.updatedAt, now)}` +
          (job.runnerName ? ` as runner ${job.runnerName}` : ""),
      );
      const left = outlook.dueIn("max-runtime");
      if (limits.maxRuntimeMinutes !== undefined && left !== undefined) {
        lines.push(
          `its instance is terminated at the max runtime (${limits.maxRuntimeMinutes} min) in ${formatDuration(left)}`,
        );
      }
      break;
    }
    case "completed":
      lines.push(
        `completed${job.conclusion ? ` (${job.conclusion})` : ""} ${ago(job.completedAt ?? job.updatedAt, now)}` +
          (job.instanceId ? ` on ${instanceText(job)}` : ""),
      );
      break;
    case "failed":
      lines.push(
        `failed ${ago(job.completedAt ?? job.updatedAt, now)}: ${job.reason ?? "no reason recorded"}`,
      );
      break;
    case "timed-out":
      lines.push(
        `timed out ${ago(job.completedAt ?? job.updatedAt, now)}: ${job.reason ?? "no reason recorded"}`,
      );
      break;
    case "interrupted":
      lines.push(
        `interrupted ${ago(job.interruptedAt ?? job.updatedAt, now)} on ${instanceText(job)}: ${job.reason ?? "spot interruption"}; ` +
          "waiting for GitHub's conclusion (a failed job is re-run once on on-demand when the config allows)",
      );
      break;
  }
  lines.push(
    `last GitHub event: ${job.lastAction} (delivery ${job.lastDeliveryId ?? job.deliveryId}); item updated ${ago(job.updatedAt, now)}`,
  );
  return lines;
}
