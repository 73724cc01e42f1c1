/**
 * The job ledger (DynamoDB): every write of a job item, and its read by id. Each state change is one
 * conditional UpdateItem guarded by the state machine in shared/job.ts, so two writers racing on a
 * job (webhook, launcher, reconciler, events) cannot both win, and a late event cannot move a job
 * backwards. The reads by index (by state, by instance) are the other half of the jobs table:
 * job-queries.ts.
 */
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { ALLOWED_FROM, type JobRecord, type JobState } from "../shared/job";
import { settings } from "../shared/settings";
import { dynamodb, expiryFor, getItem, marshallOptions, unlessConditionFailed } from "./dynamodb";

/**
 * Creates the job item unless one with this id exists. Returns false for a duplicate. Without an
 * `expiresAt`, the item expires the jobs table's TTL after it was created.
 */
export async function createJob(
  job: Omit<JobRecord, "expiresAt"> & { expiresAt?: number },
  table = settings().jobsTable,
): Promise<boolean> {
  const item: JobRecord = { ...job, expiresAt: job.expiresAt ?? expiryFor(new Date(job.createdAt)) };
  const created = await unlessConditionFailed(
    dynamodb("PutItem", {
      TableName: table,
      Item: marshall(item, marshallOptions),
      ConditionExpression: "attribute_not_exists(jobId)",
    }),
  );
  return created !== undefined;
}

export function getJob(jobId: string, table = settings().jobsTable): Promise<JobRecord | undefined> {
  return getItem<JobRecord>(table, { jobId });
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
 * UpdateItem: a decision made from a stale view (reconciler, events, a late webhook) can never undo
 * a newer launch. Returns the new item, or undefined when someone else changed the job first.
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
 * the launch message and then marks it sent (markJobEnqueued). If the caller dies between the two,
 * the reconciler sees a stale claim and enqueues it.
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
