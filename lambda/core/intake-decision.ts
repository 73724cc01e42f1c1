/**
 * Webhook intake: from a verified delivery (event name, delivery id, raw body) to a decision the
 * handler carries out. Pure: no I/O, the clock is an argument.
 *
 * To handle another workflow_job action (or change what one does), add or edit its entry in
 * ACTION_PLANS: every plan is data (create / transition / update-while), executed generically by
 * lambda/webhook/record-delivery.ts with conditional writes, so out-of-order and duplicate
 * deliveries stay safe.
 */
import type { JobRecord, JobState } from "../shared/job";
import type { LabelRoute } from "../shared/label-config";
import { routeJob } from "./routing";
import {
  githubHostOf,
  MAX_NAME_LENGTH,
  notServedReason,
  parseWorkflowJob,
  type ServedScope,
  type WorkflowJobPayload,
} from "./workflow-job-payload";

/** A job item as intake builds it; the writer adds the TTL (expiresAt). */
export type NewJob = Omit<JobRecord, "expiresAt">;

/** Conditional writes for one delivery, tried in this order until one applies. */
export interface RecordPlan {
  /** Move the job to `to` (if the state machine allows it from its current state), setting `set`. */
  transition?: { to: JobState; set: Partial<JobRecord> };
  /**
   * When the job was never seen: create it (directly in its final state, so a later, out-of-order
   * `queued` finds it and cannot launch it again). Tried after `transition`, which is retried once if
   * the create loses a race to another delivery of the same job.
   */
  createIfMissing?: NewJob;
  /** Otherwise: set fields without a state change while the job is in one of `inStates`. */
  update?: { inStates: readonly JobState[]; set: Partial<JobRecord> };
}

export type Intake =
  /** 400: the signed body is not what it claims to be. */
  | { kind: "reject"; reason: string }
  /** 200: GitHub's hook check. */
  | { kind: "pong" }
  /**
   * 202: not for us (other event or action, labels that route to no config, a `queued` too old to
   * launch). `logged` is what the reason leaves out of the answer because it quotes the request.
   */
  | {
      kind: "ignore";
      reason: string;
      logged?: Record<string, unknown>;
      job?: JobSummary;
      unmatched?: Unmatched;
    }
  /** 202: signed, but for an owner, repository, host or installation this stack does not serve. */
  | { kind: "not-served"; reason: string; job: JobSummary }
  /** `queued`: create the job item and enqueue its launch (see lambda/webhook/record-delivery.ts for the protocol). */
  | { kind: "launch"; job: NewJob }
  /** Other actions: record what GitHub reports on the job. */
  | { kind: "record"; action: WorkflowJobAction; job: JobSummary; plan: RecordPlan };

/**
 * A `queued` job meant for this fleet that no label config takes (a mistyped label, most likely):
 * kept a short while so `npm run status` can show it with the closest config.
 */
export interface Unmatched {
  jobId: string;
  labels: string[];
  owner: string;
  repo: string;
  runUrl: string;
  jobUrl: string;
  deliveredAt: string;
  deliveryId: string;
}

/** What logs and responses say about a job. */
export interface JobSummary {
  jobId: string;
  repo: string;
  configName?: string;
}

export const WORKFLOW_JOB_ACTIONS = ["queued", "waiting", "in_progress", "completed"] as const;
export type WorkflowJobAction = (typeof WORKFLOW_JOB_ACTIONS)[number];

/**
 * How long one delivery's claim on sending a job's launch message stands before another delivery may
 * take over (it outlives the webhook Lambda's timeout, so it only expires when its holder is gone).
 */
export const ENQUEUE_CLAIM_SECONDS = 60;

export interface IntakeContext {
  routes: readonly LabelRoute[];
  requiredLabel: string;
  served: ServedScope;
  /** The launcher's queue timeout: a `queued` delivery for a job created longer ago is not launched. */
  queueTimeoutMinutes: number;
  now: Date;
}

export interface Delivery {
  /** X-GitHub-Event */
  event: string | undefined;
  /** X-GitHub-Delivery */
  deliveryId: string | undefined;
  /** The raw (already verified, base64-decoded) body. */
  body: string;
}

/** Decides what to do with one verified delivery. */
export function decideIntake(delivery: Delivery, context: IntakeContext): Intake {
  let payload: unknown;
  try {
    payload = JSON.parse(delivery.body);
  } catch {
    // The parser's message quotes the body: never pass it on.
    return { kind: "reject", reason: "body is not valid JSON" };
  }
  if (!delivery.event) return { kind: "reject", reason: "missing X-GitHub-Event header" };
  if (delivery.event === "ping") return { kind: "pong" };
  if (delivery.event !== "workflow_job") {
    return { kind: "ignore", reason: "event not handled", logged: { event: clip(delivery.event) } };
  }
  const action = (payload as { action?: unknown } | null)?.action;
  if (typeof action !== "string") return { kind: "reject", reason: "workflow_job without an action" };
  if (!(WORKFLOW_JOB_ACTIONS as readonly string[]).includes(action)) {
    return { kind: "ignore", reason: "workflow_job action not handled", logged: { action: clip(action) } };
  }
  const parsed = parseWorkflowJob(payload);
  if ("invalid" in parsed)
    return { kind: "reject", reason: `invalid workflow_job payload: ${parsed.invalid}` };
  if (!delivery.deliveryId) return { kind: "reject", reason: "missing X-GitHub-Delivery header" };
  if (delivery.deliveryId.length > MAX_NAME_LENGTH)
    return { kind: "reject", reason: `X-GitHub-Delivery longer than ${MAX_NAME_LENGTH} characters` };

  const event = parsed.event;
  const job: JobSummary = { jobId: String(event.workflow_job.id), repo: event.repository.full_name };
  const foreign = notServedReason(event, context.served);
  if (foreign) return { kind: "not-served", reason: `not served: ${foreign}`, job };
  const route = routeJob(event.workflow_job.labels, context.routes, context.requiredLabel);
  if ("ignored" in route) {
    const unmatched =
      route.unmatched && action === "queued"
        ? unmatchedJob(event, delivery.deliveryId, context.now)
        : undefined;
    return {
      kind: "ignore",
      reason: route.ignored,
      logged: { labels: event.workflow_job.labels },
      job,
      unmatched,
    };
  }
  job.configName = route.config;
  return ACTION_PLANS[action as WorkflowJobAction](event, {
    ...context,
    job,
    deliveryId: delivery.deliveryId,
  });
}

/**
 * Whether a `queued` delivery is too old to launch: older than the queue timeout, the job is one the
 * launcher would give up on, and the delivery a redelivery or a replay of a signed request (a
 * signature carries no time) that must not launch again once the ledger has forgotten the job (its
 * TTL outlives the longest queue timeout: settings.ts MIN_JOB_TTL_DAYS). A missing or unreadable
 * created_at cannot tell, so it does not launch either. The price: a job whose `queued` GitHub sends
 * longer than the queue timeout after it created the job (an environment approval that waited that
 * long) is not launched either.
 */
function tooOldToLaunch(event: WorkflowJobPayload, ctx: IntakeContext): Intake | undefined {
  const createdAt = Date.parse(event.workflow_job.created_at ?? "");
  const ageMinutes = (ctx.now.getTime() - createdAt) / 60_000;
  if (ageMinutes <= ctx.queueTimeoutMinutes) return undefined;
  return {
    kind: "ignore",
    reason: Number.isNaN(createdAt)
      ? "queued without a readable workflow_job.created_at: not launched"
      : `queued for a job created more than the queue timeout (${ctx.queueTimeoutMinutes} min) ago: not launched`,
    logged: { createdAt: event.workflow_job.created_at },
  };
}

/** A header or field quoted in our log: bounded, so a long one cannot bloat a log line. */
const clip = (text: string) => text.slice(0, 100);

interface PlanContext extends IntakeContext {
  job: JobSummary & { configName?: string };
  deliveryId: string;
}

/** What to do per action, once the job is known to route to a config. */
export const ACTION_PLANS: Record<
  WorkflowJobAction,
  (event: WorkflowJobPayload, ctx: PlanContext) => Intake
> = {
  queued: (event, ctx) =>
    tooOldToLaunch(event, ctx) ?? {
      kind: "launch",
      // The creating delivery holds the enqueue claim from the start, so concurrent copies of this
      // delivery see it and do not send a second launch message.
      job: {
        ...newJob(event, ctx, "queued"),
        queuedAt: ctx.now.toISOString(),
        enqueueClaimedAt: ctx.now.toISOString(),
      },
    },
  // A job waiting for an environment's approval: noted while the job is live; never creates one (the
  // `queued` that follows approval does).
  waiting: (_event, ctx) => ({
    kind: "record",
    action: "waiting",
    job: ctx.job,
    plan: {
      update: {
        inStates: ["queued", "launching", "launched", "running"],
        set: { lastAction: "waiting", lastDeliveryId: ctx.deliveryId },
      },
    },
  }),
  in_progress: (event, ctx) => {
    const set = {
      ...runnerFields(event),
      startedAt: ctx.now.toISOString(),
      lastAction: "in_progress",
      lastDeliveryId: ctx.deliveryId,
    };
    return {
      kind: "record",
      action: "in_progress",
      job: ctx.job,
      // Never seen: some runner already has it, so record it running; a late `queued` then finds
      // it and launches nothing.
      plan: {
        transition: { to: "running", set },
        createIfMissing: { ...newJob(event, ctx, "running"), ...set },
      },
    };
  },
  completed: (event, ctx) => {
    const set = {
      ...runnerFields(event),
      conclusion: event.workflow_job.conclusion ?? undefined,
      completedAt: ctx.now.toISOString(),
      lastAction: "completed",
      lastDeliveryId: ctx.deliveryId,
    };
    const late = {
      conclusion: set.conclusion,
      lastAction: set.lastAction,
      lastDeliveryId: set.lastDeliveryId,
    };
    return {
      kind: "record",
      action: "completed",
      job: ctx.job,
      plan: {
        transition: { to: "completed", set },
        createIfMissing: { ...newJob(event, ctx, "completed"), ...set },
        // Failed or timed out by us first: keep that state, but record GitHub's conclusion.
        update: { inStates: ["failed", "timed-out"], set: late },
      },
    };
  },
};

function newJob(event: WorkflowJobPayload, ctx: PlanContext, state: JobState): NewJob {
  const now = ctx.now.toISOString();
  return {
    jobId: ctx.job.jobId,
    state,
    configName: ctx.job.configName!,
    labels: event.workflow_job.labels,
    repo: event.repository.full_name,
    owner: event.repository.owner.login,
    installationId: event.installation?.id,
    runId: event.workflow_job.run_id,
    runAttempt: event.workflow_job.run_attempt,
    githubHost: githubHostOf(event),
    deliveryId: ctx.deliveryId,
    lastDeliveryId: ctx.deliveryId,
    lastAction: event.action,
    createdAt: now,
    updatedAt: now,
  };
}

function runnerFields(event: WorkflowJobPayload): Pick<JobRecord, "runnerId" | "runnerName"> {
  return {
    runnerId: event.workflow_job.runner_id ?? undefined,
    runnerName: event.workflow_job.runner_name ?? undefined,
  };
}

function unmatchedJob(event: WorkflowJobPayload, deliveryId: string, now: Date): Unmatched {
  const runUrl = `${event.repository.html_url}/actions/runs/${event.workflow_job.run_id}`;
  return {
    jobId: String(event.workflow_job.id),
    labels: event.workflow_job.labels,
    owner: event.repository.owner.login,
    repo: event.repository.full_name,
    runUrl,
    jobUrl: `${runUrl}/job/${event.workflow_job.id}`,
    deliveredAt: now.toISOString(),
    deliveryId,
  };
}
