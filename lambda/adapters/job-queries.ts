/**
 * The job ledger's reads by index: jobs by state (byState), jobs by instance (byInstance). The other
 * half of the jobs table, its writes and its read by id, is jobs-table.ts. Both indexes are
 * eventually consistent: a decision taken from what they show is applied by a conditional write.
 */
import type { QueryInput } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { ACTIVE_STATES, type ActiveJob, type JobRecord, type JobState, TERMINAL_STATES } from "../shared/job";
import { settings } from "../shared/settings";
import { dynamodb } from "./dynamodb";

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

/** The items of one Query per state (the byState index is keyed by state), all at once. */
async function queryEachState<T>(
  states: readonly JobState[],
  queryOf: (state: JobState) => QueryInput,
): Promise<T[]> {
  return (await Promise.all(states.map((state) => queryAll<T>(queryOf(state))))).flat();
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

/** Every job the ledger maps to `instanceId` (a stolen runner maps two), in the index's order. */
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
 * Every job in an active state (launching, launched, running) with its config and claim time: the
 * launcher ranks concurrent claims by it so racing launchers agree on who stays within a limit.
 */
export function listActiveJobs(table = settings().jobsTable): Promise<ActiveJob[]> {
  return queryEachState<ActiveJob>(ACTIVE_STATES, (state) => ({
    TableName: table,
    IndexName: "byState",
    KeyConditionExpression: "#state = :state",
    ProjectionExpression: "jobId, configName, #state, launchingAt",
    ExpressionAttributeNames: { "#state": "state" },
    ExpressionAttributeValues: marshall({ ":state": state }),
  }));
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
  const closed = await queryEachState<Scope>(TERMINAL_STATES, (state) => ({
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
  }));
  const seen = new Map<string, Scope>();
  for (const job of closed) seen.set(`${job.owner}|${job.repo}|${job.installationId ?? ""}`, job);
  return [...seen.values()];
}
