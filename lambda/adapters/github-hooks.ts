/**
 * Webhook deliveries, for the reconciler's redelivery of failed ones: the App's webhook (App JWT:
 * github-client.ts githubApp()), or a webhook the program created in token mode (the PAT's client),
 * an organization's or a repository's.
 */
import { delivered, type HookDelivery } from "../core/redelivery";
import type { GitHubWebhook } from "../shared/settings";
import type { GitHub } from "./github-client";

/** Whose deliveries: the App's webhook, or an organization's or repository's (by hook id). */
export type WebhookSource =
  | { kind: "app" }
  | { kind: "org"; org: string; hookId: number }
  | { kind: "repo"; owner: string; repo: string; hookId: number };

/** The source of a token-mode webhook (settings().githubWebhooks); none: the App's. */
export function webhookSource(webhook?: GitHubWebhook): WebhookSource {
  if (!webhook) return { kind: "app" };
  return webhook.repo
    ? { kind: "repo", owner: webhook.owner, repo: webhook.repo, hookId: webhook.hookId }
    : { kind: "org", org: webhook.owner, hookId: webhook.hookId };
}

/** One page of a webhook's deliveries, newest first. */
function deliveriesPage(gh: GitHub, source: WebhookSource, cursor: string | undefined) {
  const page = { per_page: 100, ...(cursor ? { cursor } : {}) };
  switch (source.kind) {
    case "app":
      return gh.request("GET /app/hook/deliveries", page);
    case "org":
      return gh.request("GET /orgs/{org}/hooks/{hook_id}/deliveries", {
        org: source.org,
        hook_id: source.hookId,
        ...page,
      });
    case "repo":
      return gh.request("GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries", {
        owner: source.owner,
        repo: source.repo,
        hook_id: source.hookId,
        ...page,
      });
  }
}

/**
 * A webhook's deliveries that failed (status code not 2xx) since `since`, newest first. A delivery
 * that was later redelivered successfully appears with its guid on a success too: the result leaves
 * out guids that have any successful delivery in the window.
 */
export async function listFailedDeliveries(
  gh: GitHub,
  since: Date,
  source: WebhookSource = { kind: "app" },
): Promise<HookDelivery[]> {
  const all: HookDelivery[] = [];
  let cursor: string | undefined;
  for (;;) {
    const response = await deliveriesPage(gh, source, cursor);
    let reachedSince = false;
    for (const d of response.data) {
      if (Date.parse(d.delivered_at) < since.getTime()) {
        reachedSince = true;
        break;
      }
      all.push({
        id: Number(d.id),
        guid: d.guid,
        delivered_at: d.delivered_at,
        redelivery: d.redelivery,
        status_code: d.status_code,
        event: d.event,
        action: d.action,
      });
    }
    const next = /[?&]cursor=([^&>]+)[^>]*>;\s*rel="next"/.exec(response.headers.link ?? "")?.[1];
    cursor = next && decodeURIComponent(next);
    if (reachedSince || !cursor || response.data.length === 0) break;
  }
  const succeeded = new Set(all.filter(delivered).map((d) => d.guid));
  return all.filter((d) => !delivered(d) && !succeeded.has(d.guid));
}

/** Asks GitHub to deliver a webhook delivery again. */
export async function redeliver(
  gh: GitHub,
  deliveryId: number,
  source: WebhookSource = { kind: "app" },
): Promise<void> {
  switch (source.kind) {
    case "app":
      await gh.request("POST /app/hook/deliveries/{delivery_id}/attempts", { delivery_id: deliveryId });
      return;
    case "org":
      await gh.request("POST /orgs/{org}/hooks/{hook_id}/deliveries/{delivery_id}/attempts", {
        org: source.org,
        hook_id: source.hookId,
        delivery_id: deliveryId,
      });
      return;
    case "repo":
      await gh.request("POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts", {
        owner: source.owner,
        repo: source.repo,
        hook_id: source.hookId,
        delivery_id: deliveryId,
      });
      return;
  }
}
