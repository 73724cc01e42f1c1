/**
 * The jobs table's reserved items (keys in shared/reserved-keys.ts) that the lifecycle keeps: the
 * per-config spot circuit breaker, the re-run-on-demand marker of a workflow run, and the
 * reconciler's webhook-redelivery bookmarks. Each is written under a version check (optimistic), so
 * concurrent writers never lose an update. Beside them, what the operator tools read: the
 * reconciler's heartbeat (the deliveries that matched no config are unmatched-deliveries.ts).
 */
import { marshall } from "@aws-sdk/util-dynamodb";
import type { BreakerPolicy, BreakerState, RetryMarker } from "../core/lifecycle";
import { recordInterruption } from "../core/lifecycle";
import type { RedeliveryState } from "../core/redelivery";
import { RESERVED_KEYS } from "../shared/reserved-keys";
import { type GitHubWebhook, settings } from "../shared/settings";
import { dynamodb, expiryFor, getItem, marshallOptions, unlessConditionFailed } from "./dynamodb";

/** A reserved item's value (without its key and expiry), with the version it was written at. */
export async function getReserved<T>(
  key: string,
  table: string,
): Promise<(T & { version?: number }) | undefined> {
  const item = await getItem<Record<string, unknown>>(table, { jobId: key });
  if (!item) return undefined;
  const { jobId: _key, expiresAt: _ttl, ...rest } = item;
  return rest as T & { version?: number };
}

/** Writes a reserved item if its version is still `version` (optimistic); false when it changed. */
async function putReserved(
  key: string,
  value: object,
  version: number | undefined,
  expiresAt: number,
  table: string,
  /** For a new item (no version): an existing one that matches this may be replaced. */
  replaceIf?: string,
): Promise<boolean> {
  const create = replaceIf ? `attribute_not_exists(jobId) OR ${replaceIf}` : "attribute_not_exists(jobId)";
  const written = await unlessConditionFailed(
    dynamodb("PutItem", {
      TableName: table,
      Item: marshall({ ...value, jobId: key, version: (version ?? 0) + 1, expiresAt }, marshallOptions),
      ConditionExpression: version === undefined ? create : "version = :v",
      ExpressionAttributeValues: version === undefined ? undefined : marshall({ ":v": version }),
    }),
  );
  return written !== undefined;
}

export function getBreaker(
  configName: string,
  table = settings().jobsTable,
): Promise<BreakerState | undefined> {
  return getReserved<BreakerState>(RESERVED_KEYS.breaker(configName), table);
}

/** Counts one spot interruption for `configName`; returns whether this one opened the breaker. */
export async function recordSpotInterruption(
  configName: string,
  at: Date,
  policy: BreakerPolicy,
  table = settings().jobsTable,
): Promise<{ state: BreakerState; opened: boolean }> {
  const key = RESERVED_KEYS.breaker(configName);
  for (let attempt = 0; ; attempt++) {
    const current = await getReserved<BreakerState>(key, table);
    const { version, ...state } = current ?? { version: undefined };
    const next = recordInterruption(current ? (state as BreakerState) : undefined, configName, at, policy);
    const keepSeconds = policy.windowSeconds + policy.cooldownSeconds + 86_400;
    if (await putReserved(key, next.state, version, Math.floor(at.getTime() / 1000) + keepSeconds, table)) {
      return next;
    }
    if (attempt >= 5) throw new Error(`spot breaker of ${configName}: too many concurrent updates`);
  }
}

/** The run's re-run marker, unless there is none or it was given back. */
export async function getRetryMarker(
  repo: string,
  runId: number,
  table = settings().jobsTable,
): Promise<RetryMarker | undefined> {
  const marker = await getReserved<RetryMarker & { releasedAt?: string }>(
    RESERVED_KEYS.retry(repo, runId),
    table,
  );
  return marker && !marker.releasedAt ? marker : undefined;
}

/**
 * Creates the run's re-run marker unless a live one exists (a run is re-run on-demand once); a marker
 * given back (releaseRetryMarker) may be taken again.
 */
export function createRetryMarker(
  marker: RetryMarker,
  now: Date,
  table = settings().jobsTable,
): Promise<boolean> {
  return putReserved(
    RESERVED_KEYS.retry(marker.repo, marker.runId),
    marker,
    undefined,
    expiryFor(now),
    table,
    "attribute_exists(releasedAt)",
  );
}

/**
 * Gives a run's re-run marker back (the re-run request failed), so the next reconciler run tries again.
 * An update, not a delete: the reconciler's role may write reserved items but not delete job items.
 */
export async function releaseRetryMarker(
  repo: string,
  runId: number,
  now: Date,
  table = settings().jobsTable,
): Promise<void> {
  await dynamodb("UpdateItem", {
    TableName: table,
    Key: marshall({ jobId: RESERVED_KEYS.retry(repo, runId) }),
    UpdateExpression: "SET releasedAt = :now",
    ConditionExpression: "attribute_exists(jobId)",
    ExpressionAttributeValues: marshall({ ":now": now.toISOString() }),
  });
}

/** The redelivery bookmark of the App's webhook, or of a token-mode webhook. */
export async function readRedeliveryState(
  webhook?: GitHubWebhook,
  table = settings().jobsTable,
): Promise<(RedeliveryState & { version?: number }) | undefined> {
  return getReserved<RedeliveryState>(RESERVED_KEYS.redelivery(webhook), table);
}

/** Saves the bookmark unless another reconciler saved one since it was read (then this run's is dropped). */
export function writeRedeliveryState(
  webhook: GitHubWebhook | undefined,
  state: RedeliveryState,
  version: number | undefined,
  now: Date,
  table = settings().jobsTable,
): Promise<boolean> {
  return putReserved(RESERVED_KEYS.redelivery(webhook), state, version, expiryFor(now, 7), table);
}

/** What the reconciler leaves after each run, so `npm run doctor` can tell it is running. */
export interface ReconcilerHeartbeat {
  ranAt: string;
  /** Actions that failed in that run. */
  failed: number;
  /** Parts it could not read (their rules were skipped). */
  unreadable: string[];
}

/** Records a finished run, unless a later run already did (two runs may overlap). */
export async function recordReconcilerHeartbeat(
  heartbeat: ReconcilerHeartbeat,
  table = settings().jobsTable,
): Promise<void> {
  await unlessConditionFailed(
    dynamodb("PutItem", {
      TableName: table,
      Item: marshall(
        {
          ...heartbeat,
          jobId: RESERVED_KEYS.reconcilerHeartbeat,
          expiresAt: expiryFor(new Date(heartbeat.ranAt), 7),
        },
        marshallOptions,
      ),
      ConditionExpression: "attribute_not_exists(jobId) OR ranAt < :ranAt",
      ExpressionAttributeValues: marshall({ ":ranAt": heartbeat.ranAt }),
    }),
  );
}

export function getReconcilerHeartbeat(
  table = settings().jobsTable,
): Promise<ReconcilerHeartbeat | undefined> {
  return getReserved<ReconcilerHeartbeat>(RESERVED_KEYS.reconcilerHeartbeat, table);
}
