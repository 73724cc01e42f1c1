/**
 * Scenario 6: the stopped pool (issue 13). A label config with a pool; the reconciler fills it
 * (members launched, booted once, warmed, stopped); then jobs one at a time, each taking a stopped
 * member, and a burst larger than the pool. Until the program has the pool this reports why it is
 * "not built" and no figure: the reconciler launches no member, no member reaches `stopped`, or the
 * launcher starts no stopped member for a job.
 *
 * What the pool's author may have to adapt is in POOL: the label config fields, and what a member
 * does at the end of its warm-up (which the sandbox plays, as no bootstrap runs here).
 */
import { QueryCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import type { ScheduledEvent } from "aws-lambda";
import { TAGS } from "../../lambda/core/stack-identity";
import { handoffKeyFor } from "../../lambda/shared/tables";
import type { JobTimeline } from "./boot-path";
import { scheduledEvent } from "./deliveries";
import { jobTimelines, sleepUntil, waitFor } from "./scenarios";
import { CONFIGS, LaunchEventSource, type ReconcilerLambda, ROLE_ID, startWorld, type World } from "./world";

export const POOL = {
  /** Stopped members per config; the burst is three times as many jobs. */
  size: 5,
  /** The label config fields that give a config `size` stopped members. */
  configFields: (size: number): Record<string, unknown> => ({ pool: { size } }),
  /**
   * A member booted for its warm-up is done: as its bootstrap would (runner/bootstrap.sh), it reports
   * `warmedAt` on its hand-off item; the reconciler then stops it and, once stopped, marks it ready.
   */
  async warmed(world: World, instanceId: string): Promise<void> {
    await world.sandbox.dynamodb.client.send(
      new UpdateItemCommand({
        TableName: world.tables.handoff,
        Key: { handoffKey: { S: handoffKeyFor(ROLE_ID, instanceId) } },
        UpdateExpression: "REMOVE warmup SET warmedAt = :t",
        ConditionExpression: "attribute_exists(handoffKey)",
        ExpressionAttributeValues: { ":t": { S: new Date().toISOString() } },
      }),
    );
  },
};

/** Reconciler runs (one a minute, as scheduled) a pool may take to fill. */
const FILL_RUNS = 6;
const POOL_TAG = TAGS.poolMember;
const FIRST_POOLED_JOB = 700_000;

export type PooledResult =
  | { built: false; reason: string }
  | { built: true; size: number; oneJob: JobTimeline[]; burst: JobTimeline[] };

type EventSourceSettings = ConstructorParameters<typeof LaunchEventSource>[1];

export async function pooledPaths(
  bundleDir: string,
  eventSource?: EventSourceSettings,
  env?: Record<string, string>,
): Promise<PooledResult> {
  const world = await startWorld({ bundleDir, env, labelConfig: POOL.configFields(POOL.size) });
  const source = new LaunchEventSource(world, eventSource);
  try {
    const reconciler = await world.environment<ScheduledEvent, unknown>("reconciler");
    const used = new Set<string>();
    const filled = await fillPool(world, reconciler, used);
    if (typeof filled === "string") return { built: false, reason: filled };
    const webhook = await world.webhook();
    await source.start();

    const one = new Map<string, number>();
    for (let i = 0; i < POOL.size; i++) {
      const jobId = String(FIRST_POOLED_JOB + i);
      one.set(jobId, Date.now());
      await webhook.invoke(await world.queuedEvent(Number(jobId)));
      await waitFor(() => world.handedOffJobs((id) => id === jobId) >= 1, 120_000);
    }
    const oneJob = await jobTimelines(world, one);
    if (!oneJob.some((t) => t.boot.kind !== "launch")) {
      return {
        built: false,
        reason: `no job started a stopped member (${POOL.size} jobs, ${filled} members)`,
      };
    }

    for (const instance of world.sandbox.ec2.instances()) used.add(instance.instanceId);
    const refilled = await fillPool(world, reconciler, used);
    if (typeof refilled === "string") return { built: false, reason: `refill: ${refilled}` };
    const many = new Map<string, number>();
    const started = Date.now();
    await Promise.all(
      Array.from({ length: 3 * POOL.size }, async (_, i) => {
        const jobId = String(FIRST_POOLED_JOB + 1_000 + i);
        await sleepUntil(started + i * 100);
        many.set(jobId, Date.now());
        await webhook.invoke(await world.queuedEvent(Number(jobId)));
      }),
    );
    const inBurst = (id: string) => many.has(id);
    await waitFor(() => world.handedOffJobs(inBurst) >= many.size, 300_000).catch(() => undefined);
    return { built: true, size: POOL.size, oneJob, burst: await jobTimelines(world, many) };
  } finally {
    await source.stop();
    await world.close();
  }
}

/**
 * Runs the reconciler once a minute until the first config has `POOL.size` ready members (stopped
 * after their warm-up, not among `used`), warming each member once its OS runs the user data.
 * Returns how many, or why the pool is not built.
 */
async function fillPool(
  world: World,
  reconciler: ReconcilerLambda,
  used: Set<string>,
): Promise<number | string> {
  const config = CONFIGS[0]!.name;
  const warmed = new Set<string>();
  for (let run = 0; run < FILL_RUNS; run++) {
    const nextRun = Date.now() + 60_000;
    await reconciler.invoke(scheduledEvent());
    const members = world.sandbox.ec2
      .instances({ tag: { [POOL_TAG]: config } })
      .filter((i) => !used.has(i.instanceId));
    if (members.length === 0) return `the reconciler launched no pool member (run ${run + 1})`;
    const ready = await readyMembers(world, config, used);
    if (ready >= POOL.size) return ready;
    // Each member warms up from the moment its OS first runs the user data; the minute's run waits meanwhile.
    while (Date.now() < nextRun) {
      for (const member of members) {
        const now = world.sandbox.ec2.instance(member.instanceId);
        const booted =
          now?.state === "running" && now.boots.length === 1 && now.boots[0]!.readyAt <= Date.now();
        if (booted && !warmed.has(member.instanceId)) {
          warmed.add(member.instanceId);
          await POOL.warmed(world, member.instanceId);
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
  return `fewer than ${POOL.size} members ready after ${FILL_RUNS} reconciler runs`;
}

/** The config's members the pool table holds as ready (stopped, claimable), not among `used`. */
async function readyMembers(world: World, config: string, used: Set<string>): Promise<number> {
  const page = await world.sandbox.dynamodb.client.send(
    new QueryCommand({
      TableName: world.tables.pool,
      KeyConditionExpression: "#c = :c",
      ExpressionAttributeNames: { "#c": "config" },
      ExpressionAttributeValues: { ":c": { S: config } },
      ConsistentRead: true,
    }),
  );
  return (page.Items ?? []).filter((i) => i.state?.S === "ready" && !used.has(i.instanceId?.S ?? "")).length;
}
