/**
 * The webhook's use case: verify a delivery's signature, route it to a label config
 * (core/intake-decision.ts decideIntake), record the job and enqueue its launch, or apply a later
 * action to the job's record; `in_progress` goes on in after-in-progress.ts. Every write is
 * conditional, so duplicate and out-of-order deliveries are safe.
 */
import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";
import {
  decideIntake,
  ENQUEUE_CLAIM_SECONDS,
  type Intake,
  type NewJob,
  type Unmatched,
} from "../core/intake-decision";
import type { Outcome } from "../core/webhook-response";
import type { ServedScope } from "../core/workflow-job-payload";
import type { LabelRoute } from "../shared/label-config";
import { type Settings, settings } from "../shared/settings";
import { logger } from "../shared/telemetry";

// The AWS adapters (the JSON-protocol client with its SigV4 signer, ~55 KiB: no SDK client) load in
// the background from here on, so importing this module stays cheap. The secret comes first: every
// request needs it, so it is fetched as soon as it can be (once per process: readSecret caches it; a
// failure is not cached, so the first request that needs it tries again and reports it). The ledger
// and queue code loads while that fetch is on the wire.
const noop = () => {};
const secrets = import("../adapters/ssm-secrets");
secrets.then((s) => s.readSecret(settings().webhookSecretParam)).catch(noop);
const afterSecrets = secrets.then(noop, noop);
const ledger = afterSecrets.then(() => import("../adapters/jobs-table"));
const launchQueue = afterSecrets.then(() => import("../adapters/launch-queue"));
ledger.catch(noop);
launchQueue.catch(noop);

let routes: readonly LabelRoute[] | undefined;

const APP_PENDING: Outcome = {
  status: "unavailable",
  reason: "the GitHub App is not set up yet: run `npm run setup:github-app -- create`, then `pulumi up`",
};

/**
 * A delivery as the entry read it: a well-formed signature over a non-empty body of bounded size, as
 * bytes (GitHub signs the bytes it sends, which need not even be UTF-8).
 */
export interface SignedDelivery {
  bytes: Uint8Array;
  signature: string;
  event?: string;
  deliveryId?: string;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

export async function recordDelivery(delivery: SignedDelivery): Promise<Outcome> {
  const secret = await (await secrets).readSecret(settings().webhookSecretParam);
  if (!signatureMatches(secret, delivery.bytes, delivery.signature)) {
    return { status: "rejected", code: 401, reason: "signature does not match" };
  }
  let body: string;
  try {
    body = utf8.decode(delivery.bytes);
  } catch {
    return { status: "rejected", code: 400, reason: "body is not UTF-8" };
  }

  const s = settings();
  routes ??= s.labelRoutes;
  const intake = decideIntake(
    { event: delivery.event, deliveryId: delivery.deliveryId, body },
    {
      routes,
      requiredLabel: s.requiredLabel,
      served: servedScope(s),
      queueTimeoutMinutes: s.queueTimeoutMinutes,
      now: new Date(),
    },
  );
  const job = "job" in intake ? intake.job : undefined;
  if (job) logger.appendKeys({ jobId: job.jobId, repo: job.repo, configName: job.configName });
  return carryOut(intake);
}

/** GitHub's signature: `sha256=` and the HMAC-SHA256 of the bytes, lower-case hex; compared in constant time. */
function signatureMatches(secret: string, bytes: Uint8Array, signature: string): boolean {
  const expected = Buffer.from(`sha256=${createHmac("sha256", secret).update(bytes).digest("hex")}`);
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Whose jobs this stack runs (core/workflow-job-payload.ts ServedScope): the installation only when
 * configured, as the stack does not know it at deploy (the App is installed after).
 */
function servedScope(s: Settings): ServedScope {
  return {
    owner: s.servedOwner,
    host: s.servedHost,
    repositories: s.runnerScope === "repo" ? s.servedRepositories : undefined,
    installationId: s.servedInstallationId,
  };
}

async function carryOut(intake: Intake): Promise<Outcome> {
  switch (intake.kind) {
    case "reject":
      return { status: "rejected", code: 400, reason: intake.reason };
    case "pong":
      return { status: "pong" };
    case "ignore":
      if (intake.unmatched) await recordUnmatched(intake.unmatched);
      return { status: "ignored", reason: intake.reason, logged: intake.logged };
    case "not-served":
      return { status: "not-served", reason: intake.reason };
    case "launch":
      // Nothing recorded: once the App exists, the reconciler has GitHub redeliver what failed here.
      if (settings().githubAppState === "pending") return APP_PENDING;
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
 * `in_progress` follow-up (after-in-progress.ts): point the job at its runner's instance, and
 * relaunch at once the job that runner was launched for if it took this one instead. Idempotent; a
 * failure is logged, not answered with a 5xx: the reconciler does the same within a minute.
 */
async function followInProgress(jobId: string, runnerName: string | undefined): Promise<void> {
  try {
    await (await import("./after-in-progress")).afterInProgress({ jobId, runnerName });
  } catch (error) {
    logger.warn("in_progress follow-up failed; the reconciler catches up", error as Error);
  }
}

/**
 * A job for this fleet that no config takes waits on GitHub with nothing saying why: kept for a day
 * so `npm run status` shows it with the closest config. Best effort: the answer does not depend on it.
 */
async function recordUnmatched(unmatched: Unmatched): Promise<void> {
  try {
    await (await import("../adapters/unmatched-deliveries")).recordUnmatchedDelivery(unmatched);
  } catch (error) {
    logger.warn("unmatched delivery not recorded", error as Error);
  }
}
