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
import type { ScheduledEvent } from "aws-lambda";
import type { JobTimeline } from "./boot-path";
import { scheduledEvent } from "./deliveries";
import { jobTimelines, sleepUntil, waitFor } from "./scenarios";
import { CONFIGS, LaunchEventSource, type ReconcilerLambda, startWorld, type World } from "./world";

export const POOL = {
  /** Stopped members per config; the burst is three times as many jobs. */
  size: 5,
  /** The label config fields that give a config `size` stopped members. */
  configFields: (size: number): Record<string, unknown> => ({ pool: { size } }),
  /** A member booted for its warm-up is done: as its bootstrap would, it stops (its OS shuts down). */
  async warmed(world: World, instanceId: string): Promise<void> {
    world.sandbox.ec2.osShutdown(instanceId, "stop");
  },
};

/** Reconciler runs (one a minute, as scheduled) a pool may take to fill. */
const FILL_RUNS = 5;
const CONFIG_TAG = "runner-fleet:config";
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
 * Runs the reconciler once a minute until the first config has `POOL.size` stopped members (those
 * not in `used`), warming each member once it booted. Returns how many, or why the pool is not built.
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
      .instances({ tag: { [CONFIG_TAG]: config } })
      .filter((i) => !used.has(i.instanceId));
    if (members.length === 0) return `the reconciler launched no pool member (run ${run + 1})`;
    // Each member warms up from the moment its OS runs the user data; the minute's run waits meanwhile.
    while (Date.now() < nextRun) {
      for (const member of world.sandbox.ec2.instances({ state: "running" })) {
        const ready =
          members.some((m) => m.instanceId === member.instanceId) && member.boots[0]!.readyAt <= Date.now();
        if (ready && !warmed.has(member.instanceId)) {
          warmed.add(member.instanceId);
          await POOL.warmed(world, member.instanceId);
        }
      }
      const stopped = world.sandbox.ec2
        .instances({ state: "stopped", tag: { [CONFIG_TAG]: config } })
        .filter((i) => !used.has(i.instanceId));
      if (stopped.length >= POOL.size) return stopped.length;
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
  return `fewer than ${POOL.size} members stopped after ${FILL_RUNS} reconciler runs`;
}
