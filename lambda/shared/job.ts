/**
 * The job ledger's model: one item per GitHub workflow job and the state machine every writer obeys.
 * Every transition is a conditional update whose condition is "the current state is one of
 * `ALLOWED_FROM[target]`", so concurrent or out-of-order writers can never move a job backwards.
 */

export const JOB_STATES = [
  "queued",
  "launching",
  "launched",
  "running",
  "completed",
  "failed",
  "timed-out",
  "interrupted",
] as const;
export type JobState = (typeof JOB_STATES)[number];

/** States after which nothing but a late conclusion is recorded. */
export const TERMINAL_STATES: readonly JobState[] = ["completed", "failed", "timed-out"];

/** States that hold (or are about to hold) an instance: what the launch limits count. */
export const ACTIVE_STATES: readonly JobState[] = ["launching", "launched", "running"];

/** For each target state, the states a job may be in for the transition to apply. */
export const ALLOWED_FROM: Record<JobState, readonly JobState[]> = {
  queued: ["launching", "launched"], // a launch released for retry (no capacity, instance lost)
  launching: ["queued"],
  launched: ["launching"],
  running: ["queued", "launching", "launched"],
  interrupted: ["launched", "running"],
  completed: ["queued", "launching", "launched", "running", "interrupted"],
  failed: ["queued", "launching", "launched", "running", "interrupted"],
  "timed-out": ["queued", "launching", "launched", "running", "interrupted"],
};

export function isTerminal(state: JobState): boolean {
  return TERMINAL_STATES.includes(state);
}

export type Market = "spot" | "on-demand";

/** A job item as stored in the jobs table (JOBS_TABLE in ./tables.ts). Times are ISO-8601 strings. */
export interface JobRecord {
  jobId: string;
  state: JobState;
  /** Label config the job routed to. */
  configName: string;
  labels: string[];
  /** `owner/name` of the repository. */
  repo: string;
  owner: string;
  installationId?: number;
  runId: number;
  runAttempt?: number;
  /** Host of the GitHub instance (github.com or the GHES host) the job came from. */
  githubHost: string;
  /** X-GitHub-Delivery of the delivery that created the record, and of the latest one applied. */
  deliveryId: string;
  lastDeliveryId?: string;
  /** The last workflow_job action applied (queued, waiting, in_progress, completed). */
  lastAction: string;
  createdAt: string;
  updatedAt: string;
  /** DynamoDB TTL, epoch seconds. */
  expiresAt: number;
  /** Launch attempts so far (each CreateFleet that included this job). */
  attempts?: number;
  spotFailures?: number;
  instanceId?: string;
  instanceType?: string;
  availabilityZone?: string;
  market?: Market;
  runnerName?: string;
  runnerId?: number;
  conclusion?: string;
  /** Why the job is failed / timed-out / was retried, for the on-call. */
  reason?: string;
  queuedAt?: string;
  /**
   * Webhook intake (lambda/webhook/record-delivery.ts): when the launch message was sent, and the
   * claim of the one delivery currently sending it (a lease: see claimJobEnqueue in
   * adapters/jobs-table.ts). A `queued` job without `enqueuedAt` whose claim is stale has no launch
   * message: the reconciler re-enqueues it.
   */
  enqueuedAt?: string;
  enqueueClaimedAt?: string;
  launchingAt?: string;
  launchedAt?: string;
  startedAt?: string;
  completedAt?: string;
  interruptedAt?: string;
}

/** When the job entered the queue (the queue timeout counts from here). */
export function queuedSince(job: Pick<JobRecord, "queuedAt" | "createdAt">): string {
  return job.queuedAt ?? job.createdAt;
}

/** What the launcher's limits need to know about a job holding (or about to hold) an instance. */
export type ActiveJob = Pick<JobRecord, "jobId" | "configName" | "state" | "launchingAt">;

/** The SQS launch queue message: ids only; the job item is the source of truth. */
export interface LaunchMessage {
  jobId: string;
  configName: string;
}
