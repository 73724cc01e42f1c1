/**
 * The JIT config hand-off (HANDOFF_TABLE in shared/tables.ts): the launcher writes one item per
 * instance, keyed by `<runner role unique id>:<instance id>`; the instance reads its own item (IAM
 * pins it to that key with dynamodb:LeadingKeys) and strips the config. TTL removes what nobody
 * read. The JIT config is a credential: it is never logged, tagged or put in user data.
 */
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { settings } from "../shared/settings";
import { handoffKeyFor } from "../shared/tables";
import { dynamodb } from "./dynamodb";

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

export async function readHandoff(
  instanceId: string,
  table = settings().handoffTable,
): Promise<HandoffItem | undefined> {
  const { Item } = await dynamodb("GetItem", {
    TableName: table,
    Key: marshall(keyOf(instanceId)),
    ConsistentRead: true,
  });
  return Item ? (unmarshall(Item) as HandoffItem) : undefined;
}

export async function deleteHandoff(instanceId: string, table = settings().handoffTable): Promise<void> {
  await dynamodb("DeleteItem", { TableName: table, Key: marshall(keyOf(instanceId)) });
}
