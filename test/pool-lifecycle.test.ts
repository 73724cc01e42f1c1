/**
 * A stopped pool end to end on the sandbox, with every Lambda as it runs in the stack: the reconciler
 * fills the pool (launch, warm-up reported as the bootstrap reports it, stop, ready); a job's
 * `queued` delivery reaches the launcher, which starts the member instead of launching; the member's
 * bootstrap after the start takes the hand-off and runs exactly that job; the member's warm-up stop,
 * delivered late by EventBridge, changes nothing; the job completes, the member terminates, and the
 * reconciler forgets it and fills the pool again. Then the launcher dies at the pool's own crash
 * points (after the claim, after the start): the job still ends on exactly one instance and the
 * member it held is terminated and forgotten. The pieces have their own tests (launcher-pool,
 * reconciler-pool, bootstrap); this one proves they fit.
 */
import { randomUUID } from "node:crypto";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { PoolMember } from "../lambda/adapters/pool-members";
import { TAGS } from "../lambda/core/stack-identity";
import type { LabelConfig } from "../lambda/shared/label-config";
import { signedApiGatewayEvent } from "./fixtures/webhooks";
import {
  drainLauncher,
  launcherDiesAt,
  linuxConfig,
  payloadOf,
  reportProgress,
  STACK,
  startWorld,
  stateChange,
  WEBHOOK_SECRET,
  type World,
} from "./lifecycle-support";
import type { FaultRequest } from "./sandbox/faults";
import type { Job } from "./sandbox/github-state";
import { quietLambdaLogs } from "./webhook-support";

const MIN = 60_000;
const AMI = "ami-0c0ffee0c0ffee001";
const poolConfig: LabelConfig = {
  ...linuxConfig,
  launchTemplateId: "lt-0pool0lifecycle001",
  launchTemplateVersion: 3,
  image: { amiId: AMI },
  pool: { size: 1 },
};

let world: World;
let webhook: typeof import("../lambda/webhook").handler;
let launcher: (event: SQSEvent) => Promise<SQSBatchResponse>;
let ec2Events: typeof import("../lambda/ec2-events").handler;
let reconcile: typeof import("../lambda/reconciler").reconcile;
let listMembers: typeof import("../lambda/adapters/pool-members").listMembers;
let readHandoff: typeof import("../lambda/adapters/handoff").readHandoff;
let now: number;

quietLambdaLogs();

beforeAll(async () => {
  vi.useFakeTimers({ toFake: ["Date"] });
  now = Math.ceil(Date.now() / MIN + 1) * MIN;
  vi.setSystemTime(now);
  world = await startWorld("poollife", {}, [poolConfig]);
  world.sandbox.ec2.configureLaunchTemplate(poolConfig.launchTemplateId, { imageId: AMI });
  ({ handler: webhook } = await import("../lambda/webhook"));
  ({ handler: launcher } = await import("../lambda/launcher"));
  ({ handler: ec2Events } = await import("../lambda/ec2-events"));
  ({ reconcile } = await import("../lambda/reconciler"));
  ({ listMembers } = await import("../lambda/adapters/pool-members"));
  ({ readHandoff } = await import("../lambda/adapters/handoff"));
});

afterAll(async () => {
  await world?.close();
  vi.useRealTimers();
});

function advance(ms: number) {
  now += ms;
  vi.setSystemTime(now);
}

async function deliver(action: "queued" | "in_progress" | "completed", job: Job) {
  const event = await signedApiGatewayEvent(payloadOf(world, action, job), WEBHOOK_SECRET, {
    deliveryId: randomUUID(),
  });
  expect((await webhook(event)).statusCode).toBeLessThan(300);
}

const members = () => listMembers(poolConfig.name);
const fleets = () => world.sandbox.callsTo("ec2", "CreateFleet").length;

/** Reconciler runs a minute apart, each member's bootstrap reporting its warm-up once it runs. */
async function fillPool(): Promise<PoolMember> {
  for (let run = 0; run < 4; run++) {
    await reconcile();
    for (const member of await members()) {
      const instance = world.sandbox.ec2.instance(member.instanceId);
      if (member.state === "warming" && instance?.state === "running" && instance.boots.length === 1)
        await reportProgress(world, member.instanceId, { warmedAt: new Date(now).toISOString() });
    }
    advance(MIN);
  }
  const ready = (await members()).filter((m) => m.state === "ready");
  expect(ready).toHaveLength(1);
  return ready[0]!;
}

beforeEach(async () => {
  await world.reset();
  world.sandbox.ec2.configureLaunchTemplate(poolConfig.launchTemplateId, { imageId: AMI });
});

it("a job starts the stopped member, runs on it once, and the pool fills again", async () => {
  const gh = world.github.state;
  const member = await fillPool();
  const memberInstance = world.sandbox.ec2.instance(member.instanceId)!;
  expect(memberInstance).toMatchObject({ state: "stopped", imageId: AMI, market: "on-demand" });
  expect(memberInstance.tags).toMatchObject({ [TAGS.stack]: STACK, [TAGS.poolMember]: poolConfig.name });
  expect(member).toMatchObject({
    amiId: AMI,
    templateVersion: 3,
    instanceType: memberInstance.instanceType,
    availabilityZone: memberInstance.availabilityZone,
  });
  const warmupStoppedAt = new Date(now - MIN);
  expect(fleets()).toBe(1);

  // The job: webhook → launcher, which starts the member rather than launching.
  const { owner, name } = world.github.repo;
  const job = gh.seedJob({ owner, repo: name, labels: poolConfig.labels });
  await deliver("queued", job);
  const describes = world.sandbox.callsTo("ec2", "DescribeInstances").length;
  await drainLauncher(world, launcher);
  expect(fleets()).toBe(1);
  // The member's zone came with its item: nothing to look up on the job's path.
  expect(world.sandbox.callsTo("ec2", "DescribeInstances")).toHaveLength(describes);
  expect(world.sandbox.callsTo("ec2", "StartInstances")).toHaveLength(1);
  const record = await world.getJob(String(job.id));
  expect(record).toMatchObject({
    state: "launched",
    instanceId: member.instanceId,
    instanceType: memberInstance.instanceType,
    availabilityZone: memberInstance.availabilityZone,
    market: "on-demand",
  });
  expect((await members())[0]).toMatchObject({ state: "claimed", jobId: String(job.id) });
  expect(world.sandbox.ec2.instance(member.instanceId)!.boots.map((b) => b.kind)).toEqual([
    "launch",
    "start",
  ]);

  // EventBridge delivers the warm-up stop only now: the job keeps its member.
  await ec2Events(stateChange(member.instanceId, "stopped", warmupStoppedAt));
  expect((await world.getJob(String(job.id))).state).toBe("launched");
  advance(MIN);
  await reconcile();
  expect((await world.getJob(String(job.id))).state).toBe("launched");

  // The member's bootstrap after the start: takes the hand-off, its runner takes the job.
  const handoff = await readHandoff(member.instanceId);
  expect(handoff).toMatchObject({ jobId: String(job.id), jitConfig: expect.any(String) });
  expect(handoff).not.toHaveProperty("warmup");
  await reportProgress(world, member.instanceId, { runnerStartedAt: new Date(now).toISOString() });
  const runner = gh.connectRunner(handoff!.jitConfig!);
  gh.assignJob(runner.id, job.id);
  await deliver("in_progress", gh.jobs.get(job.id)!);
  expect((await world.getJob(String(job.id))).state).toBe("running");
  advance(3 * MIN);
  gh.completeJob(job.id, "success");
  await deliver("completed", gh.jobs.get(job.id)!);
  world.sandbox.ec2.setState(member.instanceId, "terminated");
  await ec2Events(stateChange(member.instanceId, "terminated", new Date(now)));
  expect(await world.getJob(String(job.id))).toMatchObject({ state: "completed", conclusion: "success" });

  // The reconciler forgets the used member and fills the pool again: a new member, not the old one.
  const refilled = await fillPool();
  expect(refilled.instanceId).not.toBe(member.instanceId);
  expect((await members()).map((m) => m.instanceId)).toEqual([refilled.instanceId]);
  expect(fleets()).toBe(2);
  // One job, one machine: nothing else ever ran for it.
  const forJob = world.sandbox.ec2
    .instances({ tag: { [TAGS.stack]: STACK } })
    .filter((i) => i.instanceId !== refilled.instanceId);
  expect(forJob.map((i) => [i.instanceId, i.state])).toEqual([[member.instanceId, "terminated"]]);
});

/** The launcher takes the one launch message and dies at `at`. */
async function launchAndDie(at: (r: FaultRequest) => boolean): Promise<void> {
  const records = world.sandbox.sqs.receive(world.queue.url, 10);
  expect(records).toHaveLength(1);
  expect(await launcherDiesAt(world, launcher, records, at), "the launch reached the crash point").toBe(true);
}

/** After a crash: the job launched once, on one instance other than `member`, which is gone for good. */
async function expectLaunchedOnceWithout(job: Job, member: PoolMember): Promise<void> {
  const record = await world.getJob(String(job.id));
  expect(record.state).toBe("launched");
  expect(record.instanceId).not.toBe(member.instanceId);
  expect(world.sandbox.ec2.instance(member.instanceId)!.state).toBe("terminated");
  expect((await members()).map((m) => m.instanceId)).not.toContain(member.instanceId);
  expect(await liveForJobs()).toEqual([record.instanceId]);
}

/** Runs the fleet on for `minutes`: the reconciler every minute, the launcher on what comes back. */
async function runOn(minutes: number, each: () => Promise<void> = async () => {}): Promise<void> {
  for (let minute = 0; minute < minutes; minute++) {
    advance(MIN);
    await each();
    await reconcile();
    await drainLauncher(world, launcher);
  }
}

/** The stack's instances that are not terminated, other than the pool's warming or ready members. */
async function liveForJobs(): Promise<string[]> {
  const poolIds = new Set(
    (await members()).filter((m) => m.state === "warming" || m.state === "ready").map((m) => m.instanceId),
  );
  return world.sandbox.ec2
    .instances({ state: ["pending", "running", "stopping", "stopped"], tag: { [TAGS.stack]: STACK } })
    .map((i) => i.instanceId)
    .filter((id) => !poolIds.has(id));
}

describe("the launcher dies at the pool's crash points", () => {
  it("after claiming a member, before starting it: the member is reaped, the job launches once", async () => {
    const member = await fillPool();
    const job = world.github.state.seedJob({ ...repoOf(), labels: poolConfig.labels });
    await deliver("queued", job);
    await launchAndDie((r) => r.service === "ec2" && r.operation === "StartInstances");
    expect((await members()).find((m) => m.instanceId === member.instanceId)).toMatchObject({
      state: "claimed",
      jobId: String(job.id),
    });
    expect(world.sandbox.ec2.instance(member.instanceId)!.state).toBe("stopped");

    await runOn(12);
    await expectLaunchedOnceWithout(job, member);
  });

  it("after starting a member, before its hand-off: the member shuts down, the job launches once", async () => {
    const member = await fillPool();
    const job = world.github.state.seedJob({ ...repoOf(), labels: poolConfig.labels });
    await deliver("queued", job);
    await launchAndDie((r) => r.service === "github");
    expect(world.sandbox.ec2.instance(member.instanceId)!.state).toBe("running");
    expect(await readHandoff(member.instanceId)).not.toHaveProperty("jitConfig");

    // Its bootstrap finds no JIT config within its wait and shuts the instance down (terminate).
    let waited = 0;
    await runOn(12, async () => {
      if (++waited === 2 && world.sandbox.ec2.instance(member.instanceId)!.state === "running")
        world.sandbox.ec2.osShutdown(member.instanceId, "terminate");
    });
    await expectLaunchedOnceWithout(job, member);
  });
});

function repoOf() {
  const { owner, name } = world.github.repo;
  return { owner, repo: name };
}
