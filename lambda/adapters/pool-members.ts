/**
 * The stopped pools' members (POOL_TABLE in shared/tables.ts): one item per member, keyed by config
 * and instance id. A member is `warming` from its launch until it is stopped after its warm-up,
 * `ready` while stopped, `claimed` once a launcher took it for a job (the job's ledger item then
 * tracks the instance like any runner's), `retiring` while the reconciler terminates it. Every state
 * change is a conditional write, so two launchers can never take one member, and the reconciler
 * never retires a member a launcher is taking.
 */
import type { QueryInput } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { settings } from "../shared/settings";
import { dynamodb, marshallOptions, unlessConditionFailed } from "./dynamodb";

export type MemberState = "warming" | "ready" | "claimed" | "retiring";

export interface PoolMember {
  config: string;
  instanceId: string;
  state: MemberState;
  /** The AMI it was launched from (the config's current one at launch). */
  amiId?: string;
  /** The config's launch template version at its launch (its user data and settings). */
  templateVersion?: number;
  /** What EC2 launched it as, and where (recorded on the job that takes it). */
  instanceType?: string;
  availabilityZone?: string;
  launchedAt: string;
  /** When it reached `stopped` after its warm-up. */
  readyAt?: string;
  claimedAt?: string;
  jobId?: string;
  updatedAt: string;
}

const keyOf = (config: string, instanceId: string) => marshall({ config, instanceId });

/** Records a member just launched (state `warming`). */
export async function putWarmingMember(
  member: Pick<
    PoolMember,
    "config" | "instanceId" | "amiId" | "templateVersion" | "instanceType" | "availabilityZone"
  >,
  now = new Date(),
): Promise<void> {
  const item: PoolMember = {
    ...member,
    state: "warming",
    launchedAt: now.toISOString(),
    updatedAt: now.toISOString(),
  };
  await dynamodb("PutItem", {
    TableName: settings().poolTable,
    Item: marshall(item, marshallOptions),
    ConditionExpression: "attribute_not_exists(instanceId)",
  });
}

/** Every member of a config (strongly consistent: a claim just made is seen). */
export function listMembers(config: string): Promise<PoolMember[]> {
  return readAll((startKey) =>
    dynamodb("Query", {
      TableName: settings().poolTable,
      KeyConditionExpression: "#c = :c",
      ExpressionAttributeNames: { "#c": "config" },
      ExpressionAttributeValues: marshall({ ":c": config }),
      ConsistentRead: true,
      ExclusiveStartKey: startKey,
    }),
  );
}

/**
 * Every member of every config (strongly consistent), for the reconciler: a config no longer deployed
 * still has members to retire, which no Query by config name would find.
 */
export function scanMembers(table = settings().poolTable): Promise<PoolMember[]> {
  return readAll((startKey) =>
    dynamodb("Scan", { TableName: table, ConsistentRead: true, ExclusiveStartKey: startKey }),
  );
}

/** A key or an item, as DynamoDB's JSON holds them. */
type Attributes = NonNullable<QueryInput["ExclusiveStartKey"]>;

/** Every member the pages of a Query or Scan hold (`page`: one call from a start key). */
async function readAll(
  page: (startKey?: Attributes) => Promise<{ Items?: Attributes[]; LastEvaluatedKey?: Attributes }>,
): Promise<PoolMember[]> {
  const members: PoolMember[] = [];
  let startKey: Attributes | undefined;
  do {
    const { Items, LastEvaluatedKey } = await page(startKey);
    for (const item of Items ?? []) members.push(unmarshall(item) as PoolMember);
    startKey = LastEvaluatedKey;
  } while (startKey);
  return members;
}

/**
 * Moves a member from one of `from` to `to`, setting `fields`; false if it was in no state of `from`
 * (another launcher claimed it, the reconciler retired it) or is gone.
 */
export async function moveMember(
  member: Pick<PoolMember, "config" | "instanceId">,
  from: MemberState[],
  to: MemberState,
  fields: Partial<Pick<PoolMember, "readyAt" | "claimedAt" | "jobId">> = {},
  now = new Date(),
): Promise<boolean> {
  const set: Record<string, unknown> = { state: to, updatedAt: now.toISOString(), ...fields };
  const names = Object.keys(set);
  const values: Record<string, unknown> = Object.fromEntries(names.map((n, i) => [`:v${i}`, set[n]]));
  from.forEach((state, i) => {
    values[`:f${i}`] = state;
  });
  const done = await unlessConditionFailed(
    dynamodb("UpdateItem", {
      TableName: settings().poolTable,
      Key: keyOf(member.config, member.instanceId),
      UpdateExpression: `SET ${names.map((_, i) => `#n${i} = :v${i}`).join(", ")}`,
      ConditionExpression: `#n0 IN (${from.map((_, i) => `:f${i}`).join(", ")})`,
      ExpressionAttributeNames: Object.fromEntries(names.map((n, i) => [`#n${i}`, n])),
      ExpressionAttributeValues: marshall(values, marshallOptions),
    }).then(() => true),
  );
  return done ?? false;
}

/** A launcher's claim on a ready member for a job: true if this launcher got it. */
export function claimMember(member: PoolMember, jobId: string, now = new Date()): Promise<boolean> {
  return moveMember(member, ["ready"], "claimed", { jobId, claimedAt: now.toISOString() }, now);
}

/** Gives a claimed member back (its start failed for capacity or throttling): ready for a later job. */
export function unclaimMember(member: PoolMember, now = new Date()): Promise<boolean> {
  return moveMember(member, ["claimed"], "ready", {}, now);
}

/** Forgets a member (its instance is gone or terminating). */
export async function deleteMember(member: Pick<PoolMember, "config" | "instanceId">): Promise<void> {
  await dynamodb("DeleteItem", {
    TableName: settings().poolTable,
    Key: keyOf(member.config, member.instanceId),
  });
}
