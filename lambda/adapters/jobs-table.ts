/**
 * The job ledger (DynamoDB): every read and write of a job item. Each state change is one
 * conditional UpdateItem guarded by the state machine in shared/job.ts, so two writers racing on a
 * job (webhook, launcher, reconciler, events) cannot both win, and a late event cannot move a job
 * backwards.
 */
import type { QueryInput } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { ACTIVE_STATES, ALLOWED_FROM, type JobRecord, type JobState } from "../shared/job";
import { settings } from "../shared/settings";
import { dynamodb, unlessConditionFailed } from "./dynamodb";

export const marshallOptions = { removeUndefinedValues: true, convertClassInstanceToMap: false };

/** Epoch seconds at which an item last changed at `now` expires. */
export function expiryFor(now: Date, ttlDays = settings().jobTtlDays): number {
  return Math.floor(now.getTime() / 1000) + ttlDays * 86_400;
}

/** Creates the job item unless one with this id exists. Returns false for a duplicate. */
export async function createJob(job: JobRecord, table = settings().jobsTable): Promise<boolean> {
  const created = await unlessConditionFailed(
    dynamodb("PutItem", {
      TableName: table,
      Item: marshall(job, marshallOptions),
      ConditionExpression: "attribute_not_exists(jobId)",
    }),
  );
  return created !== undefined;
}

export async function getJob(jobId: string, table = settings().jobsTable): Promise<JobRecord | undefined> {
  const { Item } = await dynamodb("GetItem", {
    TableName: table,
    Key: marshall({ jobId }),
    ConsistentRead: true,
  });
  return Item ? (unmarshall(Item) as JobRecord) : undefined;
}

export interface UpdateOptions {
  /** Attributes to set besides state/updatedAt/expiresAt. */
  set?: Partial<JobRecord>;
  /** Attributes to remove. */
  remove?: (keyof JobRecord)[];
  /** Numeric attributes to add to (e.g. attempts: 1). */
  add?: Partial<Record<"attempts" | "spotFailures", number>>;
  now?: Date;
  table?: string;
}

/**
 * Moves a job to `to` if its current state allows it (ALLOWED_FROM), setting the given fields in the
 * same write. Returns the updated item, or undefined when the job does not exist or is in a state
 * from which the transition is not allowed (someone else got there first).
 */
export async function transitionJob(
  jobId: string,
  to: JobState,
  options: UpdateOptions = {},
): Promise<JobRecord | undefined> {
  return conditionalJobUpdate(jobId, { ...options, state: to, fromStates: ALLOWED_FROM[to] });
}

/**
 * Updates fields of a job without changing its state, only while it is in one of `inStates`
 * (all states when omitted). Returns the updated item or undefined when the condition failed.
 */
export async function updateJobFields(
  jobId: string,
  options: UpdateOptions & { inStates?: readonly JobState[] },
): Promise<JobRecord | undefined> {
  return conditionalJobUpdate(jobId, { ...options, fromStates: options.inStates });
}

/** The conditions of one job write: allowed current states and, optionally, what must be unchanged. */
export interface JobWriteConditions {
  state?: JobState;
  fromStates?: readonly JobState[];
  /** The job must still name this instance. */
  expectInstanceId?: string;
  /** The job must not have changed since it was read (its `updatedAt` then). */
  expectUpdatedAt?: string;
}

/**
 * The one conditional UpdateItem every job write goes through: sets fields (and the state), keeps
 * `updatedAt`/`expiresAt` current, and applies only under the given conditions. Returns the updated
 * item, or undefined when the job is missing or a condition failed.
 */
export async function conditionalJobUpdate(
  jobId: string,
  options: UpdateOptions & JobWriteConditions,
): Promise<JobRecord | undefined> {
  const now = options.now ?? new Date();
  const names: Record<string, string> = { "#jobId": "jobId" };
  const values: Record<string, unknown> = {};
  const sets: string[] = [];
  const fields: Record<string, unknown> = {
    ...options.set,
    ...(options.state ? { state: options.state } : {}),
    updatedAt: now.toISOString(),
    expiresAt: expiryFor(now),
  };
  let i = 0;
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    names[`#f${i}`] = key;
    values[`:f${i}`] = value;
    sets.push(`#f${i} = :f${i}`);
    i++;
  }
  const adds: string[] = [];
  for (const [key, value] of Object.entries(options.add ?? {})) {
    names[`#a${i}`] = key;
    values[`:a${i}`] = value;
    adds.push(`#a${i} :a${i}`);
    i++;
  }
  const removes = (options.remove ?? []).map((key) => {
    names[`#r${i}`] = key;
    return `#r${i++}`;
  });
  let condition = "attribute_exists(#jobId)";
  if (options.fromStates) {
    names["#state"] = "state";
    const placeholders = options.fromStates.map((state, n) => {
      values[`:s${n}`] = state;
      return `:s${n}`;
    });
    condition += ` AND #state IN (${placeholders.join(", ")})`;
  }
  if (options.expectInstanceId) {
    names["#instanceId"] = "instanceId";
    values[":instanceId"] = options.expectInstanceId;
    condition += " AND #instanceId = :instanceId";
  }
  if (options.expectUpdatedAt) {
    names["#seenUpdatedAt"] = "updatedAt";
    values[":seenUpdatedAt"] = options.expectUpdatedAt;
    condition += " AND #seenUpdatedAt = :seenUpdatedAt";
  }
  const expression = [
    `SET ${sets.join(", ")}`,
    adds.length ? `ADD ${adds.join(", ")}` : "",
    removes.length ? `REMOVE ${removes.join(", ")}` : "",
  ]
    .filter(Boolean)
    .join(" ");
  const updated = await unlessConditionFailed(
    dynamodb("UpdateItem", {
      TableName: options.table ?? settings().jobsTable,
      Key: marshall({ jobId }),
      UpdateExpression: expression,
      ConditionExpression: condition,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: marshall(values, marshallOptions),
      ReturnValues: "ALL_NEW",
    }),
  );
  return updated?.Attributes ? (unmarshall(updated.Attributes) as JobRecord) : undefined;
}

/** Every item of a Query, page by page, up to `limit` items. */
export async function queryAll<T>(input: QueryInput, limit = Number.POSITIVE_INFINITY): Promise<T[]> {
  const items: T[] = [];
  let startKey: QueryInput["ExclusiveStartKey"];
  do {
    const page = await dynamodb("Query", {
      ...input,
      ExclusiveStartKey: startKey,
      Limit: Number.isFinite(limit) ? Math.min(limit - items.length, 1000) : input.Limit,
    });
    for (const item of page.Items ?? []) items.push(unmarshall(item) as T);
    startKey = page.LastEvaluatedKey;
  } while (startKey && items.length < limit);
  return items;
}

/**
 * Jobs in `state`, oldest change first (`newestFirst`: newest first), optionally only those last
 * changed before `updatedBefore`.
 */
export function listJobsByState(
  state: JobState,
  options: { updatedBefore?: Date; limit?: number; table?: string; newestFirst?: boolean } = {},
): Promise<JobRecord[]> {
  const before = options.updatedBefore;
  return queryAll<JobRecord>(
    {
      TableName: options.table ?? settings().jobsTable,
      IndexName: "byState",
      KeyConditionExpression: before ? "#state = :state AND #u < :before" : "#state = :state",
      ExpressionAttributeNames: { "#state": "state", ...(before ? { "#u": "updatedAt" } : {}) },
      ExpressionAttributeValues: marshall({
        ":state": state,
        ...(before ? { ":before": before.toISOString() } : {}),
      }),
      ScanIndexForward: !options.newestFirst,
    },
    options.limit ?? 1000,
  );
}

/** The job whose instance is `instanceId`, if any (byInstance index, eventually consistent). */
export async function findJobByInstance(
  instanceId: string,
  table = settings().jobsTable,
): Promise<JobRecord | undefined> {
  const result = await dynamodb("Query", {
    TableName: table,
    IndexName: "byInstance",
    KeyConditionExpression: "instanceId = :id",
    ExpressionAttributeValues: marshall({ ":id": instanceId }),
    Limit: 1,
  });
  const item = result.Items?.[0];
  return item ? (unmarshall(item) as JobRecord) : undefined;
}

/**
 * Takes the right to send a queued job's launch message (the webhook's duplicate deliveries): only
 * while the job is still `queued`, has not been enqueued (no `enqueuedAt`), and nobody holds a claim
 * taken after `staleBefore`. Exactly one of many concurrent callers wins. Returns whether it did.
 */
export async function claimJobEnqueue(
  jobId: string,
  options: { now: Date; staleBefore: Date; table?: string },
): Promise<boolean> {
  const claimed = await unlessConditionFailed(
    dynamodb("UpdateItem", {
      TableName: options.table ?? settings().jobsTable,
      Key: marshall({ jobId }),
      UpdateExpression: "SET #claim = :now",
      ConditionExpression:
        "#state = :queued AND attribute_not_exists(#enqueued) AND " +
        "(attribute_not_exists(#claim) OR #claim < :stale)",
      ExpressionAttributeNames: {
        "#state": "state",
        "#enqueued": "enqueuedAt",
        "#claim": "enqueueClaimedAt",
      },
      ExpressionAttributeValues: marshall({
        ":queued": "queued",
        ":now": options.now.toISOString(),
        ":stale": options.staleBefore.toISOString(),
      }),
    }),
  );
  return claimed !== undefined;
}

/** Records that the job's launch message was sent (ends the claim), whatever state the job is in by now. */
export async function markJobEnqueued(jobId: string, options: { now?: Date; table?: string } = {}) {
  const now = options.now ?? new Date();
  await updateJobFields(jobId, {
    set: { enqueuedAt: now.toISOString() },
    remove: ["enqueueClaimedAt"],
    ...options,
  });
}

/** Gives up a claim after the launch message could not be sent, so the next delivery may try at once. */
export async function releaseJobEnqueue(jobId: string, table?: string) {
  await updateJobFields(jobId, { remove: ["enqueueClaimedAt"], inStates: ["queued"], table });
}

/** What the launcher's limits need to know about a job holding (or about to hold) an instance. */
export type ActiveJob = Pick<JobRecord, "jobId" | "configName" | "state" | "launchingAt">;

/**
 * Every job in an active state (launching, launched, running) with its config and claim time: the
 * launcher ranks concurrent claims by it so racing launchers agree on who stays within a limit.
 */
export async function listActiveJobs(table = settings().jobsTable): Promise<ActiveJob[]> {
  const perState = await Promise.all(
    ACTIVE_STATES.map((state) =>
      queryAll<ActiveJob>({
        TableName: table,
        IndexName: "byState",
        KeyConditionExpression: "#state = :state",
        ProjectionExpression: "jobId, configName, #state, launchingAt",
        ExpressionAttributeNames: { "#state": "state" },
        ExpressionAttributeValues: marshall({ ":state": state }),
      }),
    ),
  );
  return perState.flat();
}
