/**
 * The reconciler's pool tending against the sandbox (dynalite, EC2, SSM): refill from empty and after
 * use, the warm-up (the bootstrap does not run here: the test plays it, reporting `warmedAt` on the
 * member's hand-off item as runner/bootstrap.sh would), rotation on a new AMI, size 0 and a closing
 * schedule, the runner limits, orphans, and a launcher's claim racing a retirement.
 */
import { UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { PoolMember } from "../lambda/adapters/pool-members";
import { TAGS } from "../lambda/core/stack-identity";
import type { LabelConfig } from "../lambda/shared/label-config";
import { handoffKeyFor } from "../lambda/shared/tables";
import { linuxConfig, putLabelConfigs, ROLE_ID, STACK, startWorld, type World } from "./lifecycle-support";
import type { InstanceStateName } from "./sandbox/ec2";
import { quietLambdaLogs } from "./webhook-support";

const AMI_PARAM = "/runner-fleet/test/ami/x64";
const OLD_AMI = "ami-0aaaaaaaaaaaaaaa1";
const NEW_AMI = "ami-0bbbbbbbbbbbbbbb2";
const MIN = 60_000;
const DAY = 24 * 60 * MIN;

const poolConfig: LabelConfig = {
  ...linuxConfig,
  name: "linux-pool",
  labels: ["self-hosted", "linux", "pool"],
  launchTemplateId: "lt-0pool0000000000001",
  launchTemplateVersion: 7,
  image: { parameter: AMI_PARAM },
  pool: { size: 2 },
};
const poolTags = { [TAGS.stack]: STACK, [TAGS.config]: poolConfig.name, [TAGS.poolMember]: poolConfig.name };

let world: World;
let reconciler: typeof import("../lambda/reconciler");
let pool: typeof import("../lambda/adapters/pool-members");
let handoff: typeof import("../lambda/adapters/handoff");
let ec2: typeof import("../lambda/adapters/ec2");
let jobsTable: typeof import("../lambda/adapters/jobs-table");
let tendPools: typeof import("../lambda/reconciler/tend-pools");
let settings: typeof import("../lambda/shared/settings");

beforeAll(async () => {
  world = await startWorld("reconciler-pool", {}, [poolConfig]);
  reconciler = await import("../lambda/reconciler");
  pool = await import("../lambda/adapters/pool-members");
  handoff = await import("../lambda/adapters/handoff");
  ec2 = await import("../lambda/adapters/ec2");
  jobsTable = await import("../lambda/adapters/jobs-table");
  tendPools = await import("../lambda/reconciler/tend-pools");
  settings = await import("../lambda/shared/settings");
});

afterAll(async () => {
  await world?.close();
});

beforeEach(async () => {
  await world.reset();
  world.sandbox.ssm.put(AMI_PARAM, OLD_AMI);
  world.sandbox.ec2.configureLaunchTemplate(poolConfig.launchTemplateId, { imageId: OLD_AMI });
});

quietLambdaLogs();

/** One reconciler run at the sandbox's time (`later`: that much after it). */
const run = (later = 0) => reconciler.reconcile({ now: new Date(world.sandbox.clock.now() + later) });

const members = async () =>
  (await pool.scanMembers()).sort((a, b) => a.launchedAt.localeCompare(b.launchedAt));
const byState = async (state: PoolMember["state"]) => (await members()).filter((m) => m.state === state);
const poolInstances = (state?: InstanceStateName | InstanceStateName[]) =>
  world.sandbox.ec2.instances({ tag: { [TAGS.poolMember]: poolConfig.name }, state });
const stateOf = (instanceId: string) => world.sandbox.ec2.instance(instanceId)?.state;

/** What the bootstrap does at the end of a member's warm-up: takes the marker, reports warmedAt. */
async function playWarmUp(instanceId: string): Promise<void> {
  await world.sandbox.dynamodb.client.send(
    new UpdateItemCommand({
      TableName: world.tables.handoff,
      Key: marshall({ handoffKey: handoffKeyFor(ROLE_ID, instanceId) }),
      UpdateExpression: "REMOVE warmup SET warmedAt = :t",
      ConditionExpression: "attribute_exists(warmup)",
      ExpressionAttributeValues: marshall({ ":t": new Date(world.sandbox.clock.now()).toISOString() }),
    }),
  );
}

/** Fills the pool as the reconciler and the members' bootstraps would: launch, warm-up, stop, ready. */
async function fill(): Promise<PoolMember[]> {
  await run();
  for (const member of await byState("warming")) await playWarmUp(member.instanceId);
  await run(); // stops them
  await run(); // marks them ready
  const ready = await byState("ready");
  expect(ready).toHaveLength(poolConfig.pool!.size);
  return ready;
}

describe("refill", () => {
  it("from empty: launches the size on-demand in one fleet, warms, stops, marks ready", async () => {
    const first = await run();
    expect(first.pools.applied).toEqual({ launch: 2 });
    expect(world.sandbox.callsTo("ec2", "CreateFleet")).toHaveLength(1);
    const launched = poolInstances();
    expect(launched).toHaveLength(2);
    for (const instance of launched) {
      expect(instance.market).toBe("on-demand");
      expect(instance.tags).toMatchObject({ ...poolTags, [TAGS.market]: "on-demand" });
      expect(instance.imageId).toBe(OLD_AMI);
    }
    const warming = await members();
    expect(warming.map((m) => [m.instanceId, m.state, m.amiId, m.templateVersion]).sort()).toEqual(
      launched.map((i) => [i.instanceId, "warming", OLD_AMI, 7]).sort(),
    );
    for (const m of warming) {
      const marker = await handoff.readHandoff(m.instanceId);
      expect(marker).toMatchObject({ instanceId: m.instanceId, warmup: "pool" });
      expect(marker?.jitConfig).toBeUndefined();
    }

    // Not warmed yet: nothing stops, nothing more launches.
    expect((await run()).pools.applied).toEqual({});
    expect(poolInstances("running")).toHaveLength(2);

    for (const m of warming) await playWarmUp(m.instanceId);
    // The fleet rules and the pool tending share the run's reads: one listing of the instances, one
    // scan of the hand-offs and of the pool table.
    const before = {
      describes: world.sandbox.callsTo("ec2", "DescribeInstances").length,
      scans: world.sandbox
        .callsTo("dynamodb", "Scan")
        .map((c) => (c.params as { TableName: string }).TableName),
    };
    expect((await run()).pools.applied).toEqual({ stop: 2 });
    expect(world.sandbox.callsTo("ec2", "DescribeInstances").length - before.describes).toBe(1);
    const scans = world.sandbox
      .callsTo("dynamodb", "Scan")
      .slice(before.scans.length)
      .map((c) => (c.params as { TableName: string }).TableName)
      .sort();
    expect(scans).toEqual([world.tables.handoff, world.tables.pool].sort());
    expect(poolInstances("stopped")).toHaveLength(2);
    expect(await byState("warming")).toHaveLength(2);

    expect((await run()).pools.applied).toEqual({ "mark-ready": 2 });
    expect((await byState("ready")).map((m) => m.readyAt)).toEqual([expect.any(String), expect.any(String)]);
    expect((await run()).pools.applied).toEqual({});
    expect(world.sandbox.callsTo("ec2", "CreateFleet")).toHaveLength(1);
  });

  it("after use: a claimed member is its job's (not the pool's) until its instance terminates, then forgotten", async () => {
    const [used, kept] = await fill();
    expect(await pool.claimMember(used!, "4711")).toBe(true);
    await ec2.startInstance(used!.instanceId);

    // Its job runs: the reconciler neither retires nor reaps it, and refills the pool behind it.
    expect((await run()).pools.applied).toEqual({ launch: 1 });
    expect(stateOf(used!.instanceId)).toBe("running");
    expect((await members()).find((m) => m.instanceId === used!.instanceId)?.state).toBe("claimed");

    world.sandbox.ec2.setState(used!.instanceId, "terminated"); // the job ended, the runner shut down
    expect((await run()).pools.applied).toEqual({ forget: 1 });
    const after = await members();
    expect(after.map((m) => [m.instanceId === kept!.instanceId, m.state])).toEqual([
      [true, "ready"],
      [false, "warming"],
    ]);
    expect(after.map((m) => m.instanceId)).not.toContain(used!.instanceId);
  });
});

describe("rotation", () => {
  it("on a new AMI: retires and terminates the old members, replacements come from the new AMI", async () => {
    const old = await fill();
    world.sandbox.ssm.put(AMI_PARAM, NEW_AMI);
    world.sandbox.ec2.configureLaunchTemplate(poolConfig.launchTemplateId, { imageId: NEW_AMI });

    const report = await run();
    expect(report.pools.applied).toEqual({ retire: 2, launch: 2 });
    for (const m of old) expect(stateOf(m.instanceId)).toBe("terminated");
    const fresh = await members();
    expect(fresh.map((m) => [m.state, m.amiId])).toEqual([
      ["warming", NEW_AMI],
      ["warming", NEW_AMI],
    ]);
    for (const m of fresh) expect(world.sandbox.ec2.instance(m.instanceId)?.imageId).toBe(NEW_AMI);
  });

  it("never retires a member a launcher has claimed (mid-claim: not started yet)", async () => {
    const [claimed, ready] = await fill();
    expect(await pool.claimMember(claimed!, "4712")).toBe(true);
    world.sandbox.ssm.put(AMI_PARAM, NEW_AMI);

    const report = await run();
    expect(report.pools.applied).toMatchObject({ retire: 1 });
    expect(stateOf(ready!.instanceId)).toBe("terminated");
    expect(stateOf(claimed!.instanceId)).toBe("stopped");
    expect((await members()).find((m) => m.instanceId === claimed!.instanceId)?.state).toBe("claimed");
  });

  it("a claim that lands between the plan and its retirement wins: the member is not terminated", async () => {
    const [member] = await fill();
    const stalePlan = [{ kind: "retire" as const, member: member!, reason: "built from an older AMI" }];
    expect(await pool.claimMember(member!, "4713")).toBe(true);
    const report = await tendPools.applyPoolPlan(stalePlan, {
      now: new Date(world.sandbox.clock.now()),
      deadline: Date.now() + MIN,
      settings: settings.settings(),
      configs: new Map([[poolConfig.name, poolConfig]]),
      currentAmis: new Map(),
    });
    expect(report).toMatchObject({ applied: {}, skipped: { retire: 1 }, failed: 0 });
    expect(stateOf(member!.instanceId)).toBe("stopped");
    expect(world.sandbox.callsTo("ec2", "TerminateInstances")).toEqual([]);
  });
});

describe("emptying", () => {
  it("size 0 terminates every ready and warming member and deletes their items", async () => {
    await fill();
    await putLabelConfigs(world.sandbox, { ...poolConfig, pool: { size: 3 } });
    await run();
    expect((await members()).map((m) => m.state)).toEqual(["ready", "ready", "warming"]);

    await putLabelConfigs(world.sandbox, { ...poolConfig, pool: { size: 0 } });
    expect((await run()).pools.applied).toEqual({ retire: 3 });
    expect(await members()).toEqual([]);
    expect(poolInstances(["pending", "running", "stopping", "stopped"])).toEqual([]);
    expect((await run()).pools.applied).toEqual({});
  });

  it("a schedule's window closing empties the pool it filled", async () => {
    const today = new Intl.DateTimeFormat("en-US", { timeZone: "UTC", weekday: "short" })
      .format(new Date(world.sandbox.clock.now()))
      .toLowerCase() as "mon";
    const schedule = { timeZone: "UTC", days: [today], from: "00:00", to: "24:00", size: 2 };
    await putLabelConfigs(world.sandbox, { ...poolConfig, pool: { size: 0, schedule } });
    const filled = await fill();

    const tomorrow = await run(DAY);
    expect(tomorrow.pools.applied).toEqual({ retire: 2 });
    for (const m of filled) expect(stateOf(m.instanceId)).toBe("terminated");
    expect(await members()).toEqual([]);
  });
});

describe("limits", () => {
  it("never lets warming members and active jobs exceed maxRunners; stopped members do not count", async () => {
    const limited = { ...poolConfig, maxRunners: 3, pool: { size: 3 } };
    await putLabelConfigs(world.sandbox, limited);
    for (const jobId of ["801", "802"]) {
      const instanceId = world.sandbox.ec2.addInstance({
        tags: { [TAGS.stack]: STACK, [TAGS.config]: limited.name },
      });
      const job = world.jobRecord(jobId, {
        configName: limited.name,
        state: "running",
        instanceId,
        runnerName: `${STACK}-${instanceId}`,
      });
      expect(await jobsTable.createJob(job)).toBe(true);
    }

    expect((await run()).pools.applied).toEqual({ launch: 1 });
    for (let round = 0; round < 12 && (await byState("ready")).length < 3; round++) {
      for (const m of await byState("warming")) {
        if (stateOf(m.instanceId) === "running") await playWarmUp(m.instanceId).catch(() => undefined);
      }
      await run();
      expect((await byState("warming")).length + 2).toBeLessThanOrEqual(limited.maxRunners);
    }
    expect(await byState("ready")).toHaveLength(3);
  });
});

describe("orphans", () => {
  it("never reaps a member with an item; reaps a pool-tagged instance without one past the grace", async () => {
    await putLabelConfigs(world.sandbox, { ...poolConfig, pool: { size: 1 } });
    const now = world.sandbox.clock.now();
    const launchedLongAgo = now - 3 * DAY;
    const member = world.sandbox.ec2.addInstance({
      tags: poolTags,
      state: "stopped",
      imageId: OLD_AMI,
      launchTime: launchedLongAgo,
    });
    await pool.putWarmingMember(
      { config: poolConfig.name, instanceId: member, amiId: OLD_AMI },
      new Date(launchedLongAgo),
    );
    await pool.moveMember({ config: poolConfig.name, instanceId: member }, ["warming"], "ready");
    const orphan = world.sandbox.ec2.addInstance({
      tags: poolTags,
      state: "stopped",
      launchTime: now - 10 * MIN,
    });
    const young = world.sandbox.ec2.addInstance({ tags: poolTags, launchTime: now - MIN });

    const report = await run();
    expect(stateOf(member)).toBe("stopped");
    expect(stateOf(orphan)).toBe("terminated");
    expect(stateOf(young)).toBe("running");
    expect(report.applied.terminate).toBe(1);
    expect(report.pools.applied).toEqual({});
  });
});
