/**
 * `npm run doctor`'s check of each stopped pool (./pool-report.ts reads it as `status` shows it):
 * ✔ when its ready members are the size it wants now; ! while it fills, or while the reconciler's
 * plan retires members (an older AMI, past the runner window, beyond the size; core/pool-plan.ts);
 * ✖ when a member has warmed past the reconciler's limit, or an instance tagged as a member has no
 * item past the orphan grace: the reconciler should have terminated both, so it is not tending pools.
 */
import { WARMING_TIMEOUT_MINUTES } from "../../lambda/core/pool-plan";
import { reconcilePolicy } from "../../lambda/core/reconcile-plan";
import { loadSettings } from "../../lambda/shared/settings";
import { type AwsContext, HEARTBEAT_MAX_AGE_SECONDS, missingOutput } from "./doctor-aws";
import { type Check, fail, pass, warn } from "./doctor-check";
import { formatUsd } from "./ebs-price";
import { formatDuration } from "./explain";
import { readPools, stackConfigHasPool } from "./pool-read";
import { describePool, type PoolReport, type PoolsReport } from "./pool-report";

/**
 * How far past the reconciler's own limits a member or tagged instance must be before it is a
 * failure: it runs every minute, so one just past a limit is about to be handled.
 */
const LIMITS = {
  warmingSeconds: WARMING_TIMEOUT_MINUTES * 60 + HEARTBEAT_MAX_AGE_SECONDS,
  orphanSeconds: reconcilePolicy(loadSettings({}), "").orphanGraceSeconds + HEARTBEAT_MAX_AGE_SECONDS,
};

const ON_CALL = "docs/on-call.md#stopped-pools";
/** The plan's actions that take a member out of the pool (rotation, surplus, warm-up timeout, gone). */
const LEAVING = new Set(["retire", "terminate", "forget"]);

/** What the reconciler should have terminated by now: members stuck warming, tagged instances without an item. */
function overdue(pool: PoolReport): string[] {
  const stuck = pool.members
    .filter((m) => m.state === "warming" && m.ageSeconds > LIMITS.warmingSeconds)
    .map(
      (m) =>
        `${m.instanceId} has been warming for ${formatDuration(m.ageSeconds)} (the reconciler retires a member after ${WARMING_TIMEOUT_MINUTES} min)`,
    );
  const orphans = pool.untracked
    .filter((u) => u.ageSeconds > LIMITS.orphanSeconds)
    .map(
      (u) =>
        `${u.instanceId} (${u.ec2State}, launched ${formatDuration(u.ageSeconds)} ago) is tagged as a member but has no pool item`,
    );
  return [...stuck, ...orphans];
}

/** What the reconciler's next runs change, each with what follows (its plan's own reasons). */
function pending(pool: PoolReport): string[] {
  const { wanted } = pool;
  const { ready, warming } = pool.counts;
  const changes: string[] = [];
  if (ready < wanted)
    changes.push(
      `short by ${wanted - ready} (${warming} warming): the reconciler fills it within the config's limits; jobs start cold meanwhile`,
    );
  for (const m of pool.members)
    if (m.next && LEAVING.has(m.next.kind)) changes.push(`${m.instanceId}: ${m.next.kind}, ${m.next.reason}`);
  return changes;
}

export function poolCheck(pool: PoolReport, prefix: string): Check {
  const name = `pool ${pool.configName}`;
  const cost = pool.idleCost ? `, idle cost ${formatUsd(pool.idleCost.usdPerMonth)}/month` : "";
  const summary = `${describePool(pool)}${cost}`;
  const logs = `aws logs tail /aws/lambda/${prefix}-reconciler --since 30m`;
  const late = overdue(pool);
  if (late.length)
    return fail(
      name,
      `${late.join("; ")}: the reconciler should have terminated it`,
      `the reconciler is not applying its pool rules: see its log (${logs}) and ${ON_CALL}`,
    );
  const changes = pending(pool);
  if (changes.length)
    return warn(
      name,
      `${summary}; ${changes.join("; ")}`,
      `nothing if it settles within a few minutes (the reconciler runs every minute); if not, its log: ${logs}`,
    );
  return pass(name, summary);
}

/** One check per pool. */
export const poolChecks = (report: PoolsReport, prefix: string): Check[] =>
  report.pools.map((pool) => poolCheck(pool, prefix));

/** The stack's pools read as `status` reads them, one check each; none when there is no pool. */
export async function readPoolChecks(context: AwsContext): Promise<Check[]> {
  const { outputs, stack, region, now } = context;
  const table = outputs.poolTableName;
  const labelConfigPath = outputs.labelConfigParameterPath;
  if (!table || !labelConfigPath) {
    if (!stackConfigHasPool(context.config)) return [];
    return [missingOutput("pools", table ? "labelConfigParameterPath" : "poolTableName")];
  }
  const report = await readPools({ table, stackName: stack, region, labelConfigPath }, now);
  return poolChecks(report, context.prefix);
}
