/**
 * GitHub's JIT registration budget, shared by every launcher process: one token bucket in ONE item
 * of the jobs table under a reserved key (the convention of lifecycle-store.ts: keys starting with
 * `#` never collide with GitHub job ids, and the item has no `state` or `instanceId`, so it is in
 * neither index). GitHub counts JIT registrations per App (`settings().githubWritesPerMinute`,
 * about 180 a minute, in a bucket of as many), so launchers pacing themselves apart either
 * overdraw it together or leave it idle while one of them holds the last jobs.
 *
 * The bucket refills at GitHub's rate but holds a few seconds' worth less than GitHub's (githubBurst):
 * a registration reaches GitHub a variable while after its token was taken (claims, CreateFleet, EC2
 * throttling), and registrations delayed apart by up to that much still fit in GitHub's bucket
 * (measured: with the same burst as GitHub's, a 1,000-job burst met 250 secondary rate limits).
 *
 * The item: `tokens` (fractional) as of `refilledAt` (epoch ms), `holdUntil` (epoch ms: GitHub asked
 * to wait), and `version` for optimistic updates. Nothing of it lives in this module: every call reads
 * the item, so any number of processes share one bucket. A take never overdraws: on a conflict it
 * reads again (a few times), and when it cannot write (conflicts, a DynamoDB error) it grants none,
 * so the jobs wait in the queue rather than risk GitHub's secondary rate limits.
 */
import { ConditionalCheckFailedException, GetItemCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { logger } from "../shared/observability";
import { settings } from "../shared/settings";
import { dynamoClient } from "./dynamodb";

/** The bucket's key in the jobs table (see lifecycle-store.ts RESERVED_KEYS for the others). */
export const GITHUB_BUDGET_KEY = "#github#jit-budget";

/** Reads and writes of one take before it gives up (each conflict means another launcher took). */
const ATTEMPTS = 4;
/** An idle bucket is full again within a minute; its item may go after a day without a write. */
const KEEP_SECONDS = 86_400;
/** Most time from taking a token to the registration reaching GitHub that the bucket allows for. */
const LEAD_SECONDS = 5;

/** The bucket's size: GitHub's (a minute's worth) less what it refills during LEAD_SECONDS. */
export function githubBurst(perMinute: number): number {
  return Math.max(1, perMinute - Math.floor((perMinute * LEAD_SECONDS) / 60));
}

export interface GitHubGrant {
  /** Registrations the caller may make now (0 to `want`). */
  granted: number;
  /** The per-App rate the bucket refills at (registrations per minute). */
  perMinute: number;
  /** When asking again may be worth it (epoch ms): the end of a hold, or the next whole token. */
  nextAt: number;
}

interface BucketItem {
  tokens?: number;
  refilledAt?: number;
  holdUntil?: number;
  version?: number;
}

export interface BudgetOptions {
  table?: string;
  /** Per-App rate per minute (the bucket holds githubBurst of it). */
  perMinute?: number;
}

function rateOf(options: BudgetOptions): number {
  return Math.max(1, options.perMinute ?? settings().githubWritesPerMinute);
}

/** Tokens in the bucket at `now`: refilled since `refilledAt`, up to the burst (a new bucket is full). */
function tokensAt(item: BucketItem | undefined, now: number, perMinute: number): number {
  const burst = githubBurst(perMinute);
  if (item?.tokens === undefined || item.refilledAt === undefined) return burst;
  // Lambdas' clocks differ a little: time never runs backwards for the bucket.
  const elapsed = Math.max(0, now - item.refilledAt);
  return Math.min(burst, item.tokens + (elapsed * perMinute) / 60_000);
}

async function readBucket(table: string): Promise<BucketItem | undefined> {
  const { Item } = await dynamoClient().send(
    new GetItemCommand({
      TableName: table,
      Key: marshall({ jobId: GITHUB_BUDGET_KEY }),
      ConsistentRead: true,
    }),
  );
  return Item ? (unmarshall(Item) as BucketItem) : undefined;
}

/**
 * Writes the bucket's new level if no one else wrote it since `seen` was read (holdUntil is left
 * alone: a hold recorded meanwhile stays). False on a conflict.
 */
async function writeBucket(
  table: string,
  seen: BucketItem | undefined,
  tokens: number,
  refilledAt: number,
): Promise<boolean> {
  const values: Record<string, number> = {
    ":tokens": tokens,
    ":at": refilledAt,
    ":next": (seen?.version ?? 0) + 1,
    ":expires": Math.floor(refilledAt / 1000) + KEEP_SECONDS,
  };
  if (seen?.version !== undefined) values[":seen"] = seen.version;
  try {
    await dynamoClient().send(
      new UpdateItemCommand({
        TableName: table,
        Key: marshall({ jobId: GITHUB_BUDGET_KEY }),
        UpdateExpression: "SET tokens = :tokens, refilledAt = :at, version = :next, expiresAt = :expires",
        ConditionExpression:
          seen?.version === undefined ? "attribute_not_exists(version)" : "version = :seen",
        ExpressionAttributeValues: marshall(values),
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/**
 * Takes up to `want` registrations from the shared bucket: none while GitHub's hold lasts, else
 * `min(want, whole tokens available)`. Grants 0 when the bucket cannot be updated.
 */
export async function takeGitHubTokens(
  want: number,
  now = Date.now(),
  options: BudgetOptions = {},
): Promise<GitHubGrant> {
  const perMinute = rateOf(options);
  const table = options.table ?? settings().jobsTable;
  const tokenMs = 60_000 / perMinute;
  const none = (nextAt: number): GitHubGrant => ({ granted: 0, perMinute, nextAt });
  if (want <= 0) return none(now);
  try {
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const item = await readBucket(table);
      if (item?.holdUntil !== undefined && now < item.holdUntil) return none(item.holdUntil);
      const available = tokensAt(item, now, perMinute);
      const granted = Math.min(want, Math.floor(available));
      // Nothing to take: no write (the level is a function of the item and the time).
      if (granted === 0) return none(now + Math.ceil((1 - available) * tokenMs));
      const left = available - granted;
      if (await writeBucket(table, item, left, Math.max(now, item?.refilledAt ?? now))) {
        const nextAt = granted < want ? now + Math.ceil((1 - (left % 1)) * tokenMs) : now;
        return { granted, perMinute, nextAt };
      }
      // Another launcher took meanwhile: a short random pause spreads the next reads apart.
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20));
    }
    logger.warn("GitHub registration budget: too many concurrent takes; the jobs wait", { want });
  } catch (error) {
    logger.warn("GitHub registration budget unavailable; the jobs wait", { want, error: String(error) });
  }
  return none(now + tokenMs);
}

/**
 * Gives back registrations taken but not made (the fleet had no instance for their jobs), so the
 * budget is not lost until the refill. One try: a bucket refills anyway, so a conflict or an error
 * only costs those tokens, never more.
 */
export async function returnGitHubTokens(
  count: number,
  now = Date.now(),
  options: BudgetOptions = {},
): Promise<boolean> {
  if (count <= 0) return true;
  const perMinute = rateOf(options);
  const table = options.table ?? settings().jobsTable;
  try {
    const item = await readBucket(table);
    const level = Math.min(githubBurst(perMinute), tokensAt(item, now, perMinute) + count);
    return await writeBucket(table, item, level, Math.max(now, item?.refilledAt ?? now));
  } catch (error) {
    logger.warn("could not give GitHub registrations back", { count, error: String(error) });
    return false;
  }
}

/**
 * Records that GitHub asked to wait until `until` (epoch ms; a secondary rate limit's Retry-After),
 * so every launcher holds back, not only the one that was told. A later hold wins; an earlier one
 * never shortens it.
 */
export async function holdGitHubWrites(until: number, options: BudgetOptions = {}): Promise<void> {
  try {
    await dynamoClient().send(
      new UpdateItemCommand({
        TableName: options.table ?? settings().jobsTable,
        Key: marshall({ jobId: GITHUB_BUDGET_KEY }),
        UpdateExpression: "SET holdUntil = :until, expiresAt = :expires",
        ConditionExpression: "attribute_not_exists(holdUntil) OR holdUntil < :until",
        ExpressionAttributeValues: marshall({
          ":until": until,
          ":expires": Math.floor(until / 1000) + KEEP_SECONDS,
        }),
      }),
    );
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return;
    logger.warn("could not record GitHub's hold for the other launchers", { error: String(error) });
  }
}
