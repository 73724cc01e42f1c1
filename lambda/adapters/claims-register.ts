/**
 * The launchers' register of recent claims: one reserved item of the jobs table
 * (RESERVED_KEYS.claims) in which every launcher records the jobs it just claimed, so racing
 * launchers see each other's claims before the byState index shows them.
 */
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import type { ActiveJob } from "../shared/job";
import { RESERVED_KEYS } from "../shared/reserved-keys";
import { settings } from "../shared/settings";
import { dynamodb, unlessConditionFailed } from "./dynamodb";

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
 * first's claims even while the byState index does not show them yet (docs/architecture.md "Launching": limits).
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
