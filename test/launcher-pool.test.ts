/**
 * The launcher's stopped-pool path (lambda/launcher/start-pool-members.ts) against the sandbox: a job
 * of a config with a pool starts one of its ready members (a stopped instance tagged with the stack,
 * the config and the pool, and its pool-table item) instead of launching an instance, and takes the
 * cold path (CreateFleet) in the same invocation when no member is ready or its start fails.
 */
import type { SQSBatchResponse, SQSRecord } from "aws-lambda";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { PoolMember } from "../lambda/adapters/pool-members";
import { afterStartFailure } from "../lambda/core/pool-start";
import { TAGS } from "../lambda/core/stack-identity";
import type { JobRecord } from "../lambda/shared/job";
import type { LabelConfig } from "../lambda/shared/label-config";
import { linuxConfig, putLabelConfigs, ROLE_ID, STACK, startWorld, type World } from "./lifecycle-support";
import { quietLambdaLogs } from "./webhook-support";

quietLambdaLogs();

const poolConfig: LabelConfig = {
  ...linuxConfig,
  name: "linux-pool",
  labels: ["self-hosted", "linux-pool"],
  pool: { size: 2 },
};

let world: World;
let launcher: (event: { Records: SQSRecord[] }) => Promise<SQSBatchResponse>;
let pool: typeof import("../lambda/adapters/pool-members");
let jobsTable: typeof import("../lambda/adapters/jobs-table");
let handoff: typeof import("../lambda/adapters/handoff");

beforeAll(async () => {
  world = await startWorld("pool", {}, [poolConfig, linuxConfig]);
  ({ handler: launcher } = await import("../lambda/launcher"));
  pool = await import("../lambda/adapters/pool-members");
  jobsTable = await import("../lambda/adapters/jobs-table");
  handoff = await import("../lambda/adapters/handoff");
});

afterAll(async () => {
  await world?.close();
});

beforeEach(async () => {
  await world.reset();
});

afterEach(() => {
  vi.restoreAllMocks();
  expect(world.github.violations()).toEqual([]);
});

let nextJobId = 5_000_000;

/** Jobs of `config` in the ledger, queued, and their launch messages on the queue. */
async function queueJobs(
  n: number,
  config = poolConfig,
  over: Partial<JobRecord> = {},
): Promise<JobRecord[]> {
  const jobs: JobRecord[] = [];
  for (let i = 0; i < n; i++) {
    const job = world.jobRecord(String(nextJobId++), {
      configName: config.name,
      labels: config.labels,
      ...over,
    });
    expect(await jobsTable.createJob(job)).toBe(true);
    if (job.state === "queued") {
      world.sandbox.sqs.send(world.queue.url, JSON.stringify({ jobId: job.jobId, configName: config.name }));
    }
    jobs.push(job);
  }
  return jobs;
}

/** A ready member of `config`: a stopped on-demand instance tagged as its pool's, and its item. */
async function readyMember(config = poolConfig, readyAt = new Date()): Promise<string> {
  const instanceId = world.sandbox.ec2.addInstance({
    state: "stopped",
    subnetId: "subnet-0bbb",
    tags: { [TAGS.stack]: STACK, [TAGS.config]: config.name, [TAGS.poolMember]: config.name },
  });
  await memberItem(instanceId, config, readyAt);
  return instanceId;
}

/** A ready member's item (its instance is the caller's: absent, or in any state). */
async function memberItem(instanceId: string, config = poolConfig, readyAt = new Date()): Promise<void> {
  await pool.putWarmingMember({ config: config.name, instanceId, amiId: "ami-0sandbox00000000" });
  const ready = await pool.moveMember({ config: config.name, instanceId }, ["warming"], "ready", {
    readyAt: readyAt.toISOString(),
  });
  expect(ready).toBe(true);
}

/** One launcher invocation on up to `max` messages, settled as the event source would. */
async function runLauncher(max = 10): Promise<SQSBatchResponse> {
  const records = world.sandbox.sqs.receive(world.queue.url, max);
  const response = await launcher({ Records: records });
  world.sandbox.sqs.settle(world.queue.url, records, response);
  return response;
}

const memberOf = async (instanceId: string, config = poolConfig): Promise<PoolMember | undefined> =>
  (await pool.listMembers(config.name)).find((m) => m.instanceId === instanceId);
const fleetCalls = () => world.sandbox.callsTo("ec2", "CreateFleet").filter((c) => c.status === 200);
const startCalls = (instanceId: string) =>
  world.sandbox
    .callsTo("ec2", "StartInstances")
    .filter((c) => c.status === 200 && JSON.stringify(c.params).includes(instanceId));
const stateOf = (instanceId: string) => world.sandbox.ec2.instance(instanceId)?.state;
const fleetInstances = () =>
  world.sandbox.ec2.instances({ state: ["pending", "running"] }).filter((i) => !i.tags[TAGS.poolMember]);

/** A job launched cold: on a fleet instance, with its JIT config handed off. */
async function expectLaunchedCold(job: JobRecord): Promise<void> {
  const record = await world.getJob(job.jobId);
  expect(record.state).toBe("launched");
  expect(fleetInstances().map((i) => i.instanceId)).toContain(record.instanceId);
  expect((await handoff.readHandoff(record.instanceId!))?.jitConfig).toBeTruthy();
}

describe("a job of a config with a pool", () => {
  it("starts a ready member: claimed by the job, running, the job launched on it, no fleet", async () => {
    const instanceId = await readyMember();
    const [job] = await queueJobs(1);
    expect((await runLauncher()).batchItemFailures).toEqual([]);

    expect(await memberOf(instanceId)).toMatchObject({ state: "claimed", jobId: job!.jobId });
    expect(stateOf(instanceId)).toBe("running");
    expect(startCalls(instanceId)).toHaveLength(1);
    expect(fleetCalls()).toEqual([]);

    const [runner] = world.github.state.listRunners();
    expect(runner?.name).toBe(`${STACK}-${instanceId}`);
    expect(await world.getJob(job!.jobId)).toMatchObject({
      state: "launched",
      instanceId,
      market: "on-demand",
      availabilityZone: "us-east-1b",
      runnerName: `${STACK}-${instanceId}`,
      runnerId: runner!.id,
    });
    expect(await handoff.readHandoff(instanceId)).toMatchObject({
      handoffKey: `${ROLE_ID}:${instanceId}`,
      jobId: job!.jobId,
      jitConfig: runner!.encodedJitConfig,
    });
  });

  it("takes the member ready longest first", async () => {
    const newer = await readyMember(poolConfig, new Date(Date.now() - 60_000));
    const older = await readyMember(poolConfig, new Date(Date.now() - 120_000));
    const [job] = await queueJobs(1);
    expect((await runLauncher()).batchItemFailures).toEqual([]);

    expect((await world.getJob(job!.jobId)).instanceId).toBe(older);
    expect((await memberOf(newer))?.state).toBe("ready");
    expect(stateOf(newer)).toBe("stopped");
  });

  it("launches the jobs beyond its ready members cold, in the same invocation", async () => {
    const instanceId = await readyMember();
    const jobs = await queueJobs(3);
    expect((await runLauncher()).batchItemFailures).toEqual([]);

    const records = await Promise.all(jobs.map((j) => world.getJob(j.jobId)));
    expect(records.map((r) => r.state)).toEqual(["launched", "launched", "launched"]);
    expect(records.filter((r) => r.instanceId === instanceId)).toHaveLength(1);
    expect(fleetCalls()).toHaveLength(1);
    for (const job of jobs.filter((_, i) => records[i]!.instanceId !== instanceId))
      await expectLaunchedCold(job);
  });

  it("from two launchers racing for one member: one job starts it, the other launches cold", async () => {
    const instanceId = await readyMember();
    const jobs = await queueJobs(2);
    const seeded = world.sandbox.callsTo("dynamodb", "UpdateItem").length;
    // Both launchers read the member as ready before either claims it.
    let reads = 0;
    let bothRead!: () => void;
    const barrier = new Promise<void>((resolve) => {
      bothRead = resolve;
    });
    const listMembers = pool.listMembers;
    vi.spyOn(pool, "listMembers").mockImplementation(async (config) => {
      const members = await listMembers(config);
      if (++reads === 2) bothRead();
      await barrier;
      return members;
    });
    const batches = [
      world.sandbox.sqs.receive(world.queue.url, 1),
      world.sandbox.sqs.receive(world.queue.url, 1),
    ];
    const responses = await Promise.all(batches.map((records) => launcher({ Records: records })));
    for (const [i, records] of batches.entries())
      world.sandbox.sqs.settle(world.queue.url, records, responses[i]!);
    expect(reads).toBe(2);

    const records = await Promise.all(jobs.map((j) => world.getJob(j.jobId)));
    expect(records.map((r) => r.state)).toEqual(["launched", "launched"]);
    const winner = records.find((r) => r.instanceId === instanceId);
    const loser = records.find((r) => r.instanceId !== instanceId);
    expect(await memberOf(instanceId)).toMatchObject({ state: "claimed", jobId: winner!.jobId });
    expect(startCalls(instanceId)).toHaveLength(1);
    await expectLaunchedCold(jobs.find((j) => j.jobId === loser!.jobId)!);
    const claims = world.sandbox
      .callsTo("dynamodb", "UpdateItem")
      .slice(seeded)
      .filter((c) => (c.params as { TableName?: string }).TableName === world.tables.pool);
    expect(claims.map((c) => c.errorCode ?? "ok").sort()).toEqual(["ConditionalCheckFailedException", "ok"]);
  });
});

describe("a member that does not start", () => {
  it("for lack of capacity is ready again, still stopped, and its job launches cold at once", async () => {
    const instanceId = await readyMember();
    world.sandbox.faults.fail("ec2", "StartInstances", "InsufficientInstanceCapacity");
    const [job] = await queueJobs(1);
    expect((await runLauncher()).batchItemFailures).toEqual([]);

    await expectLaunchedCold(job!);
    expect(fleetCalls()).toHaveLength(1);
    const member = await memberOf(instanceId);
    expect(member?.state).toBe("ready");
    expect(stateOf(instanceId)).toBe("stopped");
  });

  it.each([
    { case: "gone (InvalidInstanceID.NotFound)", instance: () => "i-0deadbeef00000000" },
    {
      case: "terminating (IncorrectInstanceState)",
      instance: () => {
        const id = world.sandbox.ec2.addInstance({ state: "stopped", tags: { [TAGS.stack]: STACK } });
        world.sandbox.ec2.setState(id, "shutting-down");
        return id;
      },
    },
  ])("that is $case is retiring, and its job launches cold at once", async ({ instance }) => {
    const instanceId = instance();
    await memberItem(instanceId);
    const [job] = await queueJobs(1);
    expect((await runLauncher()).batchItemFailures).toEqual([]);

    await expectLaunchedCold(job!);
    expect((await memberOf(instanceId))?.state).toBe("retiring");
  });
});

describe("limits", () => {
  it("hold with a ready member: a job over maxRunners waits, the member stays stopped", async () => {
    await putLabelConfigs(world.sandbox, { ...poolConfig, maxRunners: 2 });
    const instanceId = await readyMember();
    await queueJobs(2, poolConfig, { state: "running", instanceId: "i-0aaaaaaaaaaaaaaa1" });
    const [waiting] = await queueJobs(1);
    const response = await runLauncher();
    expect(response.batchItemFailures).toHaveLength(1);

    expect((await world.getJob(waiting!.jobId)).state).toBe("queued");
    expect(world.launchMessages().map((m) => m.jobId)).toEqual([waiting!.jobId]);
    expect((await memberOf(instanceId))?.state).toBe("ready");
    expect(stateOf(instanceId)).toBe("stopped");
    expect(world.sandbox.callsTo("ec2", "StartInstances")).toEqual([]);
  });

  it("do not count stopped members: two ready members and maxRunners 2 serve two jobs", async () => {
    await putLabelConfigs(world.sandbox, { ...poolConfig, maxRunners: 2 });
    const members = [await readyMember(), await readyMember()];
    const jobs = await queueJobs(2);
    expect((await runLauncher()).batchItemFailures).toEqual([]);

    const records = await Promise.all(jobs.map((j) => world.getJob(j.jobId)));
    expect(records.map((r) => r.state)).toEqual(["launched", "launched"]);
    expect(records.map((r) => r.instanceId).sort()).toEqual([...members].sort());
    expect(members.map(stateOf)).toEqual(["running", "running"]);
    expect(fleetCalls()).toEqual([]);
  });
});

it("a config without a pool never reads or writes the pool table", async () => {
  const bystander = await readyMember();
  const [job] = await queueJobs(1, linuxConfig);
  const seeded = world.sandbox.callsTo("dynamodb").length;
  expect((await runLauncher()).batchItemFailures).toEqual([]);

  await expectLaunchedCold(job!);
  const launcherCalls = world.sandbox.callsTo("dynamodb").slice(seeded);
  expect(launcherCalls.length).toBeGreaterThan(0);
  expect(launcherCalls.filter((c) => JSON.stringify(c.params).includes(world.tables.pool))).toEqual([]);
  expect(stateOf(bystander)).toBe("stopped");
});

describe("what a failed start means for the member", () => {
  it("gives it back when EC2 said not now (capacity, throttling), else retires it", () => {
    for (const code of [
      "InsufficientInstanceCapacity",
      "InsufficientCapacity",
      "RequestLimitExceeded",
      "Throttling",
    ])
      expect(afterStartFailure(code)).toBe("unclaim");
    for (const code of [
      "InvalidInstanceID.NotFound",
      "IncorrectInstanceState",
      "InternalError",
      "UnauthorizedOperation",
      undefined,
    ])
      expect(afterStartFailure(code)).toBe("retire");
  });
});
