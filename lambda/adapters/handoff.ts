/**
 * The JIT config hand-off (HANDOFF_TABLE in shared/tables.ts): the launcher writes one item per
 * instance, keyed by `<runner role unique id>:<instance id>`; the instance reads its own item (IAM
 * pins it to that key with dynamodb:LeadingKeys) and strips the config. TTL removes what nobody
 * read. The JIT config is a credential: it is never logged, tagged or put in user data. The instance
 * reports its progress on the same item (shared/handoff-report.ts), listed here without the config.
 */
import type { ScanOutput } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import type { HandoffReport } from "../shared/handoff-report";
import { settings } from "../shared/settings";
import { handoffKeyFor } from "../shared/tables";
import { dynamodb, getItem } from "./dynamodb";

export interface HandoffItem {
  handoffKey: string;
  instanceId: string;
  jobId: string;
  /** The runner's encoded JIT config (secret). Absent once the instance has taken it. */
  jitConfig?: string;
  runnerName?: string;
  createdAt: string;
  /** DynamoDB TTL, epoch seconds. */
  expiresAt: number;
}

export interface HandoffWrite {
  instanceId: string;
  jobId: string;
  jitConfig: string;
  runnerName?: string;
  now?: Date;
}

function keyOf(instanceId: string) {
  return { handoffKey: handoffKeyFor(settings().runnerRoleId, instanceId) };
}

/** Writes (or overwrites, on a retried launch of the same instance) an instance's hand-off item. */
export async function writeHandoff(write: HandoffWrite, table = settings().handoffTable): Promise<void> {
  const now = write.now ?? new Date();
  const item: HandoffItem = {
    ...keyOf(write.instanceId),
    instanceId: write.instanceId,
    jobId: write.jobId,
    jitConfig: write.jitConfig,
    runnerName: write.runnerName,
    createdAt: now.toISOString(),
    expiresAt: Math.floor(now.getTime() / 1000) + settings().handoffTtlSeconds,
  };
  await dynamodb("PutItem", { TableName: table, Item: marshall(item, { removeUndefinedValues: true }) });
}

/**
 * A new pool member's hand-off item: no JIT config, the `warmup` marker instead, which tells its
 * bootstrap to warm up, report `warmedAt` here and wait to be stopped (docs: the pool's lifecycle).
 * Lives `ttlSeconds`: as long as a member may warm before the reconciler gives up on it.
 */
export async function writeWarmupMarker(
  instanceId: string,
  { now = new Date(), ttlSeconds = settings().handoffTtlSeconds }: { now?: Date; ttlSeconds?: number } = {},
  table = settings().handoffTable,
): Promise<void> {
  const item = {
    ...keyOf(instanceId),
    instanceId,
    warmup: "pool",
    createdAt: now.toISOString(),
    expiresAt: Math.floor(now.getTime() / 1000) + ttlSeconds,
  };
  await dynamodb("PutItem", { TableName: table, Item: marshall(item) });
}

export function readHandoff(
  instanceId: string,
  table = settings().handoffTable,
): Promise<HandoffItem | undefined> {
  return getItem<HandoffItem>(table, keyOf(instanceId));
}

export async function deleteHandoff(instanceId: string, table = settings().handoffTable): Promise<void> {
  await dynamodb("DeleteItem", { TableName: table, Key: marshall(keyOf(instanceId)) });
}

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
    "warmedAt",
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
