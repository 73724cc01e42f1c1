/**
 * GitHub's JIT registration budget, shared by every launcher process: one token bucket in ONE item
 * of the jobs table under a reserved key (shared/reserved-keys.ts: keys starting with `#` never
 * collide with GitHub job ids, and the item has no `state` or `instanceId`, so it is in neither
 * index). GitHub counts JIT registrations per App (`settings().githubWritesPerMinute`,
 * about 180 a minute, in a bucket of as many), so launchers pacing themselves apart either
 * overdraw it together or leave it idle while one of them holds the last jobs.
 *
 * The bucket refills at GitHub's rate but holds a few seconds' worth less than GitHub's (githubBurst):
 * a registration reaches GitHub a variable while after its token was taken (claims, CreateFleet, EC2
 * throttling), and registrations delayed apart by up to that much still fit in GitHub's bucket
 * (measured: with the same burst as GitHub's, a 1,000-job burst met 250 secondary rate limits).
 *
 * The item holds the bucket as one time, `emptyAt` (epoch ms; the generic cell rate algorithm): the
 * bucket holds (now − emptyAt) ÷ (one token's time) tokens, at most the burst. Taking g tokens moves
 * `emptyAt` g tokens' time later, in a conditional UpdateItem that adds to it ("only if at least g
 * tokens are there"), so launchers taking at once do not conflict: each write is checked against
 * the item as it is when written. (A first version rewrote the level under a version check: its
 * conflicts and retries spread racing launchers' claims apart enough to break the launcher tests'
 * limit race.) Only a full bucket is set outright (its level is capped). Plus
 * `holdUntil` (epoch ms: GitHub asked to wait). Nothing of it lives in this module: every call reads
 * the item, so any number of processes share one bucket. A take never overdraws: when its condition
 * fails it reads again (a few times), and when it cannot write (a DynamoDB error) it grants none, so
 * the jobs wait in the queue rather than risk GitHub's secondary rate limits.
 */
import { marshall } from "@aws-sdk/util-dynamodb";
import { RESERVED_KEYS } from "../shared/reserved-keys";
import { settings } from "../shared/settings";
import { logger } from "../shared/telemetry";
import { dynamodb, getItem, unlessConditionFailed } from "./dynamodb";

/** Reads and writes of one take before it gives up (a failed condition: others took the tokens read). */
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
  emptyAt?: number;
  holdUntil?: number;
}

export interface BudgetOptions {
  table?: string;
  /** Per-App rate per minute (the bucket holds githubBurst of it). */
  perMinute?: number;
}

function rateOf(options: BudgetOptions): number {
  return Math.max(1, options.perMinute ?? settings().githubWritesPerMinute);
}

/** Tokens in the bucket at `now` (fractional; a new bucket is full). */
function tokensAt(item: BucketItem | undefined, now: number, perMinute: number): number {
  const burst = githubBurst(perMinute);
  if (item?.emptyAt === undefined) return burst;
  return Math.min(burst, Math.max(0, ((now - item.emptyAt) * perMinute) / 60_000));
}

function readBucket(table: string): Promise<BucketItem | undefined> {
  return getItem<BucketItem>(table, { jobId: RESERVED_KEYS.githubBudget });
}

/**
 * Takes `count` tokens (negative: gives back) at `now`, or returns false when the bucket no longer
 * allows it. From a full bucket: sets `emptyAt` outright, only while the bucket is still full. Else
 * moves `emptyAt` by their time, only while that leaves it within [empty, full] at `now`.
 */
async function moveBucket(table: string, count: number, now: number, perMinute: number, full: boolean) {
  const tokenMs = 60_000 / perMinute;
  const fullAt = now - githubBurst(perMinute) * tokenMs;
  const values: Record<string, number> = { ":expires": Math.floor(now / 1000) + KEEP_SECONDS };
  let update: string;
  let condition: string;
  if (full) {
    values[":emptyAt"] = fullAt + count * tokenMs;
    values[":fullAt"] = fullAt + SLACK_TOKENS * tokenMs + 0.01;
    update = "SET emptyAt = :emptyAt, expiresAt = :expires";
    condition = "attribute_not_exists(emptyAt) OR emptyAt <= :fullAt";
  } else {
    values[":move"] = count * tokenMs;
    // After the move: emptyAt ≤ now (that many tokens were there) and emptyAt ≥ fullAt (not above full).
    values[":latest"] = now - count * tokenMs + SLACK_TOKENS * tokenMs + 0.01;
    values[":earliest"] = fullAt - count * tokenMs - SLACK_TOKENS * tokenMs - 0.01;
    update = "SET emptyAt = emptyAt + :move, expiresAt = :expires";
    condition = "emptyAt <= :latest AND emptyAt >= :earliest";
  }
  const moved = await unlessConditionFailed(
    dynamodb("UpdateItem", {
      TableName: table,
      Key: marshall({ jobId: RESERVED_KEYS.githubBudget }),
      UpdateExpression: update,
      ConditionExpression: condition,
      ExpressionAttributeValues: marshall(values),
    }),
  );
  return moved !== undefined;
}

/**
 * Whole tokens in a level: a level computed from epoch milliseconds (a double's step there is
 * ~0.0002 ms) as 2.99999 is 3, and the conditions allow as much.
 */
const SLACK_TOKENS = 1e-4;
const whole = (level: number) => Math.floor(level + SLACK_TOKENS);

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
      const granted = Math.min(want, whole(available));
      // Nothing to take: no write (the level is a function of the item and the time).
      if (granted === 0) return none(now + Math.ceil((1 - available) * tokenMs));
      const full = available >= githubBurst(perMinute) - SLACK_TOKENS;
      if (await moveBucket(table, granted, now, perMinute, full)) {
        const left = available - granted;
        const nextAt = granted < want ? now + Math.ceil((1 - (left % 1)) * tokenMs) : now;
        return { granted, perMinute, nextAt };
      }
      // Others took meanwhile (fewer tokens than read): read again.
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
    const room = githubBurst(perMinute) - tokensAt(item, now, perMinute);
    // A bucket with no room for them is (nearly) full anyway.
    const back = Math.min(count, room);
    return back > 0 ? await moveBucket(table, -back, now, perMinute, false) : true;
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
    // A later hold already recorded: nothing to do.
    await unlessConditionFailed(
      dynamodb("UpdateItem", {
        TableName: options.table ?? settings().jobsTable,
        Key: marshall({ jobId: RESERVED_KEYS.githubBudget }),
        UpdateExpression: "SET holdUntil = :until, expiresAt = :expires",
        ConditionExpression: "attribute_not_exists(holdUntil) OR holdUntil < :until",
        ExpressionAttributeValues: marshall({
          ":until": until,
          ":expires": Math.floor(until / 1000) + KEEP_SECONDS,
        }),
      }),
    );
  } catch (error) {
    logger.warn("could not record GitHub's hold for the other launchers", { error: String(error) });
  }
}
