/**
 * The lifecycle's own DynamoDB reads and writes:
 * - narrow conditional transitions ("move job X from launched to queued only if it still names
 *   instance I"), so a decision made from a stale view (reconciler, events, a late webhook) can never
 *   undo a newer launch;
 * - small items in the jobs table under reserved keys starting with `#` (GitHub job ids are numbers,
 *   so they never collide; the items have no `state` or `instanceId`, so they are in neither index):
 *   the per-config spot circuit breaker, the re-run-on-demand marker of a workflow run, the
 *   reconciler's webhook-redelivery bookmarks, and the launchers' register of recent claims;
 * - the hand-off reports (progress times the instances write), read without the JIT config.
 */
import type { ScanOutput } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import type { BreakerPolicy, BreakerState, RetryMarker } from "../core/lifecycle";
import { marketOverride, recordInterruption } from "../core/lifecycle";
import type { HandoffReport } from "../core/reconcile";
import type { RedeliveryState } from "../core/redelivery";
import { type JobRecord, type JobState, type Market, TERMINAL_STATES } from "../shared/job";
import type { LabelConfig } from "../shared/label-config";
import { type GitHubWebhook, settings, webhookOwner } from "../shared/settings";
import { dynamodb, unlessConditionFailed } from "./dynamodb";
import {
  type ActiveJob,
  conditionalJobUpdate,
  expiryFor,
  markJobEnqueued,
  marshallOptions,
  queryAll,
} from "./jobs-table";
import { enqueueLaunches } from "./launch-queue";

export const RESERVED_KEYS = {
  claims: "#launcher#recent-claims",
  /** The launchers' shared GitHub registration budget (github-budget.ts). */
  githubBudget: "#github#jit-budget",
  breaker: (configName: string) => `#spot-breaker#${configName}`,
  retry: (repo: string, runId: number) => `#rerun-on-demand#${repo}#${runId}`,
  /** The App's webhook: "#reconciler#webhook-redelivery"; a token mode one: "…#<owner>[/<repo>]#<hook id>". */
  redelivery: (webhook?: GitHubWebhook) =>
    webhook
      ? `#reconciler#webhook-redelivery#${webhookOwner(webhook)}#${webhook.hookId}`
      : "#reconciler#webhook-redelivery",
} as const;

export interface ConditionalTransition {
  /** The state the decision saw; the write applies only if the job is still in it. */
  from: JobState;
  to: JobState;
  /** When set, the job must still name this instance (undefined: any). */
  instanceId?: string;
  /** When set, the job must not have changed since it was read (its `updatedAt` then). */
  updatedAt?: string;
  set?: Partial<JobRecord>;
  remove?: (keyof JobRecord)[];
  now: Date;
  table?: string;
}

/**
 * Moves a job `from` → `to` if it is still in `from` (and still on `instanceId`), in one conditional
 * UpdateItem. Returns the new item, or undefined when someone else changed the job first.
 */
export function transitionIf(jobId: string, t: ConditionalTransition): Promise<JobRecord | undefined> {
  return conditionalJobUpdate(jobId, {
    state: t.to,
    fromStates: [t.from],
    expectInstanceId: t.instanceId,
    expectUpdatedAt: t.updatedAt,
    set: t.set,
    remove: t.remove,
    now: t.now,
    table: t.table,
  });
}

/**
 * Releases a job that lost its launch (`launching` without a launcher, `launched` on an instance that
 * died or whose runner took another job) back to `queued`, holding the enqueue claim: the caller sends
 * the launch message and then marks it sent (jobs-table markJobEnqueued). If the caller dies between
 * the two, the reconciler sees a stale claim and enqueues it.
 */
export function releaseToQueue(
  jobId: string,
  args: { from: "launching" | "launched"; instanceId?: string; reason: string; now: Date; table?: string },
): Promise<JobRecord | undefined> {
  return transitionIf(jobId, {
    from: args.from,
    to: "queued",
    instanceId: args.instanceId,
    set: { reason: args.reason, enqueueClaimedAt: args.now.toISOString() },
    remove: ["instanceId", "instanceType", "availabilityZone", "enqueuedAt", "runnerName", "runnerId"],
    now: args.now,
    table: args.table,
  });
}

/** Sends the launch message of a job `releaseToQueue` released, then marks it sent. */
export async function enqueueReleased(job: JobRecord, now: Date): Promise<void> {
  await enqueueLaunches([{ jobId: job.jobId, configName: job.configName }]);
  await markJobEnqueued(job.jobId, { now });
}

/** Every job the ledger maps to `instanceId` (byInstance index; a stolen runner maps two). */
export async function jobsOnInstance(instanceId: string, table = settings().jobsTable): Promise<JobRecord[]> {
  const result = await dynamodb("Query", {
    TableName: table,
    IndexName: "byInstance",
    KeyConditionExpression: "instanceId = :id",
    ExpressionAttributeValues: marshall({ ":id": instanceId }),
  });
  return (result.Items ?? []).map((item) => unmarshall(item) as JobRecord);
}

/**
 * Jobs closed as `completed` since `since` that a spot interruption hit (candidates for the re-run on
 * interruption). Reads the byState index for the window, returning only items with `interruptedAt`.
 */
export function listInterruptedCompletions(since: Date, table = settings().jobsTable): Promise<JobRecord[]> {
  return queryAll<JobRecord>({
    TableName: table,
    IndexName: "byState",
    KeyConditionExpression: "#state = :completed AND #updatedAt > :since",
    FilterExpression: "attribute_exists(#interruptedAt)",
    ExpressionAttributeNames: {
      "#state": "state",
      "#updatedAt": "updatedAt",
      "#interruptedAt": "interruptedAt",
    },
    ExpressionAttributeValues: marshall({ ":completed": "completed", ":since": since.toISOString() }),
  });
}

/**
 * Where recently closed jobs ran (owner, repo, installation), since `since`: the runner scopes to sweep
 * for leftovers when no live job names them any more (an idle fleet still has runners to clean up).
 */
export async function recentlyClosedJobScopes(
  since: Date,
  table = settings().jobsTable,
): Promise<Pick<JobRecord, "owner" | "repo" | "installationId">[]> {
  type Scope = Pick<JobRecord, "owner" | "repo" | "installationId">;
  const perState = await Promise.all(
    TERMINAL_STATES.map((state) =>
      queryAll<Scope>({
        TableName: table,
        IndexName: "byState",
        KeyConditionExpression: "#state = :state AND #updatedAt > :since",
        ProjectionExpression: "#owner, #repo, #installationId",
        ExpressionAttributeNames: {
          "#state": "state",
          "#updatedAt": "updatedAt",
          "#owner": "owner",
          "#repo": "repo",
          "#installationId": "installationId",
        },
        ExpressionAttributeValues: marshall({ ":state": state, ":since": since.toISOString() }),
      }),
    ),
  );
  const seen = new Map<string, Scope>();
  for (const job of perState.flat()) seen.set(`${job.owner}|${job.repo}|${job.installationId ?? ""}`, job);
  return [...seen.values()];
}

// ---- Reserved items --------------------------------------------------------------------------------

export async function getReserved<T>(
  key: string,
  table: string,
): Promise<(T & { version?: number }) | undefined> {
  const { Item } = await dynamodb("GetItem", {
    TableName: table,
    Key: marshall({ jobId: key }),
    ConsistentRead: true,
  });
  if (!Item) return undefined;
  const { jobId: _key, expiresAt: _ttl, ...rest } = unmarshall(Item);
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

// ---- Hand-off reports ------------------------------------------------------------------------------

/**
 * Every hand-off item's progress report (one per live instance, so the table is small), without the
 * JIT config: the projection leaves the secret out.
 */
export async function listHandoffReports(table = settings().handoffTable): Promise<HandoffReport[]> {
  const reports: HandoffReport[] = [];
  let startKey: ScanOutput["LastEvaluatedKey"];
  const fields = [
    "instanceId",
    "createdAt",
    "fetchedAt",
    "runnerStartedAt",
    "jobStartedAt",
    "jobFinishedAt",
    "interruptedAt",
  ];
  do {
    const page = await dynamodb("Scan", {
      TableName: table,
      ProjectionExpression: fields.map((_, i) => `#p${i}`).join(", "),
      ExpressionAttributeNames: Object.fromEntries(fields.map((f, i) => [`#p${i}`, f])),
      ExclusiveStartKey: startKey,
    });
    for (const item of page.Items ?? []) {
      const report = unmarshall(item) as HandoffReport;
      if (report.instanceId) reports.push(report);
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return reports;
}

// ---- The launchers' register of recent claims ------------------------------------------------------

/**
 * How long a claim stays in the register: far longer than the byState index takes to show it (DynamoDB
 * replicates global secondary indexes asynchronously, usually within a second).
 */
export const CLAIM_REGISTER_SECONDS = 60;
/** Most expired entries one write removes (an update expression is at most 4 KB). */
const REGISTER_TRIM_PER_WRITE = 100;
const CLAIM_PREFIX = "claim:";

/** Entries this process saw expire at its last register write: the next write removes them. */
let expiredClaims: string[] = [];

/**
 * Adds `claims` to the launchers' register of recent claims and returns every claim the register
 * holds from the last CLAIM_REGISTER_SECONDS, the others' and these, read in the same write. The
 * write is atomic, so of two launchers that claim at once, the one registering second sees the
 * first's claims even while the byState index does not show them yet (README "Launching": limits).
 */
export async function registerClaims(
  claims: ActiveJob[],
  now: Date,
  table = settings().jobsTable,
): Promise<ActiveJob[]> {
  const names: Record<string, string> = { "#expires": "expiresAt" };
  const values: Record<string, unknown> = {
    ":expires": Math.floor(now.getTime() / 1000) + 2 * CLAIM_REGISTER_SECONDS,
  };
  const sets = ["#expires = :expires"];
  claims.forEach((claim, i) => {
    names[`#c${i}`] = `${CLAIM_PREFIX}${claim.jobId}`;
    values[`:c${i}`] = { configName: claim.configName, launchingAt: claim.launchingAt ?? now.toISOString() };
    sets.push(`#c${i} = :c${i}`);
  });
  const setting = new Set(Object.values(names));
  const removes = expiredClaims
    .filter((name) => !setting.has(name))
    .slice(0, REGISTER_TRIM_PER_WRITE)
    .map((name, i) => {
      names[`#r${i}`] = name;
      return `#r${i}`;
    });
  const { Attributes } = await dynamodb("UpdateItem", {
    TableName: table,
    Key: marshall({ jobId: RESERVED_KEYS.claims }),
    UpdateExpression: `SET ${sets.join(", ")}${removes.length ? ` REMOVE ${removes.join(", ")}` : ""}`,
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: marshall(values),
    ReturnValues: "ALL_NEW",
  });
  const since = now.getTime() - CLAIM_REGISTER_SECONDS * 1000;
  const recent: ActiveJob[] = [];
  expiredClaims = [];
  for (const [name, value] of Object.entries(Attributes ? unmarshall(Attributes) : {})) {
    if (!name.startsWith(CLAIM_PREFIX)) continue;
    const { configName, launchingAt } = value as { configName: string; launchingAt: string };
    if (Date.parse(launchingAt) < since) expiredClaims.push(name);
    else recent.push({ jobId: name.slice(CLAIM_PREFIX.length), configName, state: "launching", launchingAt });
  }
  return recent;
}

/** Takes claims given back (the jobs are `queued` again) out of the register, so they stop counting. */
export async function unregisterClaims(jobIds: string[], table = settings().jobsTable): Promise<void> {
  if (jobIds.length === 0) return;
  const names = Object.fromEntries(jobIds.map((jobId, i) => [`#c${i}`, `${CLAIM_PREFIX}${jobId}`]));
  await unlessConditionFailed(
    dynamodb("UpdateItem", {
      TableName: table,
      Key: marshall({ jobId: RESERVED_KEYS.claims }),
      UpdateExpression: `REMOVE ${Object.keys(names).join(", ")}`,
      // Only an existing register: an update would otherwise create an item without an expiry.
      ConditionExpression: "attribute_exists(jobId)",
      ExpressionAttributeNames: names,
    }),
  );
}

// ---- What the launcher asks ------------------------------------------------------------------------

/**
 * For the launcher, before it builds a fleet request for `jobs` of `config`: the jobs that must launch
 * on-demand whatever the config's spot policy says (a re-run of an interrupted job; every job of a
 * spotPreferred config while its spot breaker is open), with the reason to record. One read of the
 * config's breaker, and one marker read per re-run workflow run (first attempts are never re-runs).
 */
export async function launchMarketOverrides(
  jobs: Pick<JobRecord, "jobId" | "repo" | "runId" | "runAttempt" | "configName">[],
  config: Pick<LabelConfig, "name" | "spotPolicy">,
  now: Date = new Date(),
  table = settings().jobsTable,
): Promise<Map<string, { market: Market; reason: string }>> {
  const overrides = new Map<string, { market: Market; reason: string }>();
  if (config.spotPolicy === "onDemandOnly" || jobs.length === 0) return overrides;
  const breaker = config.spotPolicy === "spotPreferred" ? await getBreaker(config.name, table) : undefined;
  const markers = new Map<string, Promise<RetryMarker | undefined>>();
  for (const job of jobs) {
    const runKey = `${job.repo}#${job.runId}`;
    if ((job.runAttempt ?? 1) > 1 && !markers.has(runKey))
      markers.set(runKey, getRetryMarker(job.repo, job.runId, table));
  }
  for (const job of jobs) {
    const retry = await markers.get(`${job.repo}#${job.runId}`);
    const override = marketOverride({ job, config, breaker, retry, now });
    if (override) overrides.set(job.jobId, override);
  }
  return overrides;
}
