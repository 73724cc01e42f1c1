/**
 * The webhook Lambda (API Gateway HTTP API, payload 2.0): verifies a GitHub `workflow_job` delivery,
 * routes it to a label config, records the job and enqueues its launch; answers in milliseconds.
 * Decisions are in core/intake.ts; this file does the I/O they call for.
 */
import { Buffer } from "node:buffer";
import { verify } from "@octokit/webhooks-methods";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { decideIntake, ENQUEUE_CLAIM_SECONDS, type Intake, type NewJob } from "./core/intake-decision";
import { METRIC_OF, type Outcome, statusCodeOf, toResponse } from "./core/webhook-response";
import type { LabelRoute } from "./shared/label-config";
import { settings } from "./shared/settings";
import { logger, MetricUnit, metrics } from "./shared/telemetry";

// The AWS adapters (the JSON-protocol client with its SigV4 signer, ~55 KiB: no SDK client) load in
// the background from here on, so importing this module stays cheap. The secret comes first: every
// request needs it, so it is fetched as soon as it can be (once per process: readSecret caches it; a
// failure is not cached, so the first request that needs it tries again and reports it). The ledger
// and queue code loads while that fetch is on the wire.
const noop = () => {};
const secrets = import("./adapters/ssm-secrets");
secrets.then((s) => s.readSecret(settings().webhookSecretParam)).catch(noop);
const afterSecrets = secrets.then(noop, noop);
const ledger = afterSecrets.then(() => import("./adapters/jobs-table"));
const launchQueue = afterSecrets.then(() => import("./adapters/launch-queue"));
ledger.catch(noop);
launchQueue.catch(noop);

const SIGNATURE = /^sha256=[0-9a-f]{64}$/;

let routes: readonly LabelRoute[] | undefined;

export async function handler(
  event: APIGatewayProxyEventV2,
  context?: Context,
): Promise<APIGatewayProxyStructuredResultV2> {
  const started = Date.now();
  if (context) logger.addContext(context);
  const headers = lowerCaseKeys(event.headers);
  logger.appendKeys({ deliveryId: headers["x-github-delivery"], githubEvent: headers["x-github-event"] });
  let outcome: Outcome;
  try {
    outcome = await receive(event, headers);
  } catch (error) {
    logger.error("webhook delivery failed", error as Error);
    outcome = { status: "failed", reason: "internal error; GitHub may redeliver" };
  }
  try {
    const { status, ...details } = outcome;
    const statusCode = statusCodeOf(outcome);
    logger.info("webhook delivery", {
      outcome: status,
      ...details,
      statusCode,
      durationMs: Date.now() - started,
    });
    metrics.addMetric(METRIC_OF[status], MetricUnit.Count, 1);
    metrics.publishStoredMetrics();
  } finally {
    logger.resetKeys();
  }
  return toResponse(outcome);
}

async function receive(event: APIGatewayProxyEventV2, headers: Record<string, string>): Promise<Outcome> {
  const signature = headers["x-hub-signature-256"];
  if (!signature) return { status: "rejected", code: 401, reason: "missing X-Hub-Signature-256" };
  if (!SIGNATURE.test(signature)) return { status: "rejected", code: 401, reason: "malformed signature" };
  const body = event.isBase64Encoded
    ? Buffer.from(event.body ?? "", "base64").toString("utf8")
    : (event.body ?? "");
  if (!body) return { status: "rejected", code: 401, reason: "empty body cannot be verified" };

  const secret = await (await secrets).readSecret(settings().webhookSecretParam);
  if (!(await verify(secret, body, signature))) {
    return { status: "rejected", code: 401, reason: "signature does not match" };
  }

  routes ??= settings().labelRoutes;
  const intake = decideIntake(
    { event: headers["x-github-event"], deliveryId: headers["x-github-delivery"], body },
    { routes, requiredLabel: settings().requiredLabel, now: new Date() },
  );
  const job = "job" in intake ? intake.job : undefined;
  if (job) logger.appendKeys({ jobId: job.jobId, repo: job.repo, configName: job.configName });
  return carryOut(intake);
}

async function carryOut(intake: Intake): Promise<Outcome> {
  switch (intake.kind) {
    case "reject":
      return { status: "rejected", code: 400, reason: intake.reason };
    case "pong":
      return { status: "pong" };
    case "ignore":
      return { status: "ignored", reason: intake.reason };
    case "launch":
      return launch(intake.job);
    case "record":
      return record(intake);
  }
}

/**
 * `queued`: one conditional put creates the job item, then its launch message is sent.
 *
 * The item and the message are two writes, and the message can fail after the item exists. Then we
 * answer 5xx, and the redelivery finds the item: it must send the message, not answer "duplicate",
 * or the job would never launch. Re-sending on every duplicate while the job is still `queued` would
 * be safe (the launcher's conditional queued→launching ignores extra messages) but turns a burst of
 * copies of one delivery into as many messages and launcher runs. So sending is claimed instead: the
 * creating delivery holds the claim from the start (`enqueueClaimedAt` in the new item), drops it if
 * the send fails, and marks `enqueuedAt` once sent; a duplicate sends only if it can take the claim
 * (queued, not enqueued, claim absent or older than ENQUEUE_CLAIM_SECONDS, i.e. its holder is gone).
 * If even the release fails, the claim expires; a job left queued without `enqueuedAt` is also what
 * the reconciler looks for.
 */
async function launch(job: NewJob): Promise<Outcome> {
  const jobs = await ledger;
  const now = new Date(job.createdAt);
  if (await jobs.createJob(job)) {
    await sendLaunch(job);
    return { status: "accepted", jobId: job.jobId, configName: job.configName };
  }
  const staleBefore = new Date(now.getTime() - ENQUEUE_CLAIM_SECONDS * 1000);
  if (!(await jobs.claimJobEnqueue(job.jobId, { now, staleBefore }))) {
    return { status: "duplicate", jobId: job.jobId, reason: "job already recorded" };
  }
  await sendLaunch(job);
  return {
    status: "accepted",
    jobId: job.jobId,
    configName: job.configName,
    reason: "job was recorded without a launch message: enqueued now",
  };
}

async function sendLaunch(job: NewJob): Promise<void> {
  const jobs = await ledger;
  try {
    await (await launchQueue).enqueueLaunches([{ jobId: job.jobId, configName: job.configName }]);
  } catch (error) {
    await jobs.releaseJobEnqueue(job.jobId).catch((releaseError: Error) => {
      logger.warn("could not release the enqueue claim; it expires by itself", releaseError);
    });
    throw error;
  }
  try {
    await jobs.markJobEnqueued(job.jobId);
  } catch (error) {
    // The message is sent, so the job will launch; only a later redelivery might send a harmless copy.
    logger.warn("launch message sent but not marked on the job", error as Error);
  }
}

/** Other actions: the plan's conditional writes, in order, until one applies. */
async function record(intake: Extract<Intake, { kind: "record" }>): Promise<Outcome> {
  const jobs = await ledger;
  const { plan, job } = intake;
  const transition = async () =>
    plan.transition !== undefined &&
    (await jobs.transitionJob(job.jobId, plan.transition.to, { set: plan.transition.set })) !== undefined;

  let changed = await transition();
  if (!changed && plan.createIfMissing) {
    changed = await jobs.createJob(plan.createIfMissing);
    // Lost the create to another delivery of this job: its item may now accept the transition.
    if (!changed) changed = await transition();
  }
  if (!changed && plan.update) {
    changed =
      (await jobs.updateJobFields(job.jobId, { set: plan.update.set, inStates: plan.update.inStates })) !==
      undefined;
  }
  // Also after a duplicate: a late in_progress (after completed) still tells whose runner was taken.
  if (intake.action === "in_progress") await followInProgress(job.jobId, plan.transition?.set.runnerName);
  return changed
    ? { status: "recorded", jobId: job.jobId, reason: intake.action }
    : { status: "duplicate", jobId: job.jobId, reason: `${intake.action}: job unknown or already past it` };
}

/**
 * `in_progress` follow-up (adapters/job-lifecycle.ts): point the job at its runner's instance, and
 * relaunch at once the job that runner was launched for if it took this one instead. Idempotent; a
 * failure is logged, not answered with a 5xx: the reconciler does the same within a minute.
 */
async function followInProgress(jobId: string, runnerName: string | undefined): Promise<void> {
  try {
    await (await import("./adapters/job-lifecycle")).afterInProgress({ jobId, runnerName });
  } catch (error) {
    logger.warn("in_progress follow-up failed; the reconciler catches up", error as Error);
  }
}

/** API Gateway v2 lower-cases header names; other sources may not. */
function lowerCaseKeys(headers: APIGatewayProxyEventV2["headers"] | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value !== undefined) result[name.toLowerCase()] = value;
  }
  return result;
}
