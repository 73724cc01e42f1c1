/**
 * Asks GitHub to redeliver failed `workflow_job` webhooks: the App's webhook in App mode; in token
 * mode the webhooks the program created, a rotating share of them per run (core/redelivery.ts). A
 * bookmark and backoff per webhook (the redelivery state item) keep a delivery from being asked for
 * again and again.
 */
import pMap from "p-map";
import { githubApp, githubForInstallation } from "../adapters/github-client";
import { listFailedDeliveries, redeliver, webhookSource } from "../adapters/github-hooks";
import { readRedeliveryState, writeRedeliveryState } from "../adapters/reserved-items";
import { planRedeliveries, readSince, webhooksToScan } from "../core/redelivery";
import { type GitHubWebhook, settings, webhookOwner } from "../shared/settings";
import { logger } from "../shared/telemetry";

const REDELIVERY = { maxAttempts: 6, baseBackoffSeconds: 60, maxPerRun: 50 };
/**
 * Token mode, repository scope: webhooks whose deliveries one run reads (one GitHub call each). With
 * more, each is read every few minutes (core/redelivery.ts webhooksToScan): 5 a minute is 300 of the
 * token's 5,000 calls an hour.
 */
const WEBHOOKS_PER_RUN = 5;

/**
 * Redelivers every webhook's failed deliveries due this run. One webhook that cannot be read (say,
 * the token lost its Webhooks permission) skips only itself: `unreadable` says so.
 */
export async function redeliverWebhooks(now: Date): Promise<{ redelivered: number; unreadable: boolean }> {
  let unreadable = false;
  const counts = await pMap(
    webhooksToRead(now),
    (webhook) =>
      redeliverFailed(webhook, now).catch((error: unknown) => {
        logger.warn("webhook redelivery skipped", { ...webhookFields(webhook), error: String(error) });
        unreadable = true;
        return 0;
      }),
    { concurrency: 2 },
  );
  return { redelivered: counts.reduce((sum, n) => sum + n, 0), unreadable };
}

/** Whose deliveries this run reads: the App's webhook (`undefined`), or a share of the program's. */
function webhooksToRead(now: Date): (GitHubWebhook | undefined)[] {
  const s = settings();
  if (s.githubAuthMode === "app") return [undefined];
  return webhooksToScan(s.githubWebhooks, Math.floor(now.getTime() / 60_000), WEBHOOKS_PER_RUN);
}

function webhookFields(webhook: GitHubWebhook | undefined) {
  return webhook ? { hookId: webhook.hookId, hookOwner: webhookOwner(webhook) } : { hookId: "app" };
}

/**
 * One webhook's failed `workflow_job` deliveries: reads its failures since the bookmark, saves the
 * plan, asks GitHub. Returns how many it asked for.
 */
async function redeliverFailed(webhook: GitHubWebhook | undefined, now: Date): Promise<number> {
  const policy = { ...REDELIVERY, lookbackSeconds: settings().redeliveryLookbackHours * 3600 };
  const source = webhookSource(webhook);
  const stored = await readRedeliveryState(webhook);
  const { version, ...state } = stored ?? { version: undefined, pending: {} };
  const gh = webhook ? await githubForInstallation() : await githubApp();
  const failed = await listFailedDeliveries(gh, readSince(stored, now, policy), source);
  const plan = planRedeliveries(stored ? state : undefined, failed, now, policy);
  // Save first: a crash after asking GitHub must not ask again at once.
  if (!(await writeRedeliveryState(webhook, plan.state, version, now))) return 0; // another run got there
  let sent = 0;
  const hook = webhookFields(webhook);
  for (const { id, guid, attempt } of plan.redeliver) {
    try {
      await redeliver(gh, id, source);
      sent++;
      logger.info("webhook redelivered", { deliveryId: id, guid, attempt, ...hook });
    } catch (error) {
      logger.warn("webhook redelivery failed", {
        deliveryId: id,
        guid,
        error: (error as Error).message,
        ...hook,
      });
    }
  }
  for (const guid of plan.gaveUp) logger.warn("gave up redelivering a webhook", { guid, ...hook });
  return sent;
}
