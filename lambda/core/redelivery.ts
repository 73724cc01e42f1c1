/**
 * Missed webhooks: GitHub does not redeliver a failed delivery by itself, so a `workflow_job`
 * delivery lost to an outage of the webhook endpoint would strand its job. The reconciler reads a
 * webhook's recent deliveries (newest first: the App's `GET /app/hook/deliveries` in App mode; in
 * token mode those of the organization's or each repository's webhook the program created) and asks
 * GitHub to redeliver (`POST …/deliveries/{id}/attempts`) each failed `workflow_job` delivery that no
 * later attempt of the same event (same `guid`, `redelivery: true`) delivered, with a backoff and an
 * attempt limit. This module is the pure bookkeeping; the state is one small item per webhook.
 */

/** One entry of `GET /app/hook/deliveries` (the fields used here). */
export interface HookDelivery {
  id: number;
  guid: string;
  delivered_at: string;
  redelivery: boolean;
  status_code: number;
  event: string;
  action?: string | null;
}

export interface PendingRedelivery {
  /** Latest failed delivery id of the event (redeliver this one). */
  id: number;
  /** Redeliveries asked for so far. */
  attempts: number;
  /** When the latest attempt was made (by GitHub or asked for by us). */
  lastAt: string;
  action?: string;
}

/** What the reconciler remembers between runs. */
export interface RedeliveryState {
  /** delivered_at of the newest delivery already read: the next run reads back to here. */
  scannedUntil?: string;
  /** Failed events (by guid) not yet delivered. */
  pending: Record<string, PendingRedelivery>;
}

export interface RedeliveryPolicy {
  /** On the first run (no state): how far back to look. */
  lookbackSeconds: number;
  /** Redeliveries of one event before giving up (the reconciler's other rules still close its job). */
  maxAttempts: number;
  /** Wait before redelivery n (n >= 1) is baseBackoffSeconds * 2^(n-1); the first one is immediate. */
  baseBackoffSeconds: number;
  /** Most redeliveries asked for in one run. */
  maxPerRun: number;
}

/** Whether the delivery reached the endpoint (a 2xx answer). */
export const delivered = (d: Pick<HookDelivery, "status_code">) =>
  d.status_code >= 200 && d.status_code < 300;

/** GitHub records a delivery (or our redelivery's result) within seconds; read this far behind to see it. */
export const SETTLE_SECONDS = 60;

/**
 * Where the next read of the deliveries (newest first) may stop: back to the previous read, and far
 * enough to see the latest attempt of every pending event; on the first run, the look-back.
 */
export function readSince(state: RedeliveryState | undefined, now: Date, policy: RedeliveryPolicy): Date {
  const floor = now.getTime() - policy.lookbackSeconds * 1000;
  const marks = [state?.scannedUntil, ...Object.values(state?.pending ?? {}).map((p) => p.lastAt)]
    .filter((t): t is string => !!t)
    .map((t) => Date.parse(t) - SETTLE_SECONDS * 1000);
  return new Date(marks.length ? Math.max(floor, Math.min(...marks)) : floor);
}

/**
 * Folds the deliveries read back to `readSince(state)` into the state and picks what to redeliver now.
 * The read may hold only failures, with every event that was delivered since left out (github-hooks.ts
 * listFailedDeliveries): a pending event that no longer shows a failure, and whose latest attempt is
 * old enough to have been recorded, was delivered. Returns the new state (the chosen redeliveries
 * counted) and the delivery ids to redeliver.
 */
export function planRedeliveries(
  state: RedeliveryState | undefined,
  deliveries: HookDelivery[],
  now: Date,
  policy: RedeliveryPolicy,
): { state: RedeliveryState; redeliver: { id: number; guid: string; attempt: number }[]; gaveUp: string[] } {
  const pending: Record<string, PendingRedelivery> = { ...(state?.pending ?? {}) };
  const jobEvents = deliveries
    .filter((d) => d.event === "workflow_job")
    .sort((a, b) => Date.parse(a.delivered_at) - Date.parse(b.delivered_at));
  const failures = jobEvents.filter((d) => !delivered(d));
  for (const d of failures) {
    const known = pending[d.guid];
    // A failed original or a failed redelivery (ours): remember the newest id to redeliver.
    if (!known || Date.parse(d.delivered_at) >= Date.parse(known.lastAt)) {
      pending[d.guid] = {
        id: d.id,
        attempts: known?.attempts ?? 0,
        lastAt: d.delivered_at,
        action: d.action ?? undefined,
      };
    }
  }
  // A success seen at any point wins over failures read in the same batch.
  for (const d of jobEvents) if (delivered(d)) delete pending[d.guid];
  const failing = new Set(failures.map((d) => d.guid));
  for (const [guid, p] of Object.entries(pending)) {
    if (!failing.has(guid) && now.getTime() - Date.parse(p.lastAt) > SETTLE_SECONDS * 1000)
      delete pending[guid];
  }

  const redeliver: { id: number; guid: string; attempt: number }[] = [];
  const gaveUp: string[] = [];
  for (const [guid, p] of Object.entries(pending).sort((a, b) => a[1].lastAt.localeCompare(b[1].lastAt))) {
    if (p.attempts >= policy.maxAttempts) {
      delete pending[guid];
      gaveUp.push(guid);
      continue;
    }
    const wait = p.attempts === 0 ? 0 : policy.baseBackoffSeconds * 2 ** (p.attempts - 1);
    if (now.getTime() - Date.parse(p.lastAt) < wait * 1000 || redeliver.length >= policy.maxPerRun) continue;
    redeliver.push({ id: p.id, guid, attempt: p.attempts + 1 });
    pending[guid] = { ...p, attempts: p.attempts + 1, lastAt: now.toISOString() };
  }
  return { state: { scannedUntil: now.toISOString(), pending }, redeliver, gaveUp };
}

/**
 * The webhooks one reconciler run reads (token mode, repository scope: one webhook per repository,
 * one GitHub call each to list its deliveries): all of them when they fit `perRun`, else the run's
 * turn of a rotation (`runIndex`: the run's minute), so each is read every ceil(n / perRun) runs and
 * the calls stay a small share of the token's hourly rate limit.
 */
export function webhooksToScan<T>(webhooks: readonly T[], runIndex: number, perRun: number): T[] {
  if (webhooks.length <= perRun) return [...webhooks];
  const turns = Math.ceil(webhooks.length / perRun);
  const turn = ((runIndex % turns) + turns) % turns;
  return webhooks.filter((_, i) => i % turns === turn);
}
