/**
 * The ec2-events Lambda against the sandbox: spot interruption warnings and state changes in
 * EventBridge's shape, the job items, launch messages and breaker state they produce, and the races
 * (interruption after completion, duplicate events).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { JobRecord } from "../lambda/shared/job";
import { allJobs, interruptionWarning, jobRecord, launchMessages, stateChange } from "./lifecycle-support";
import { type Sandbox, startSandbox } from "./sandbox";

let sandbox: Sandbox;
let restoreEnv: () => void;
let tables: { jobs: string; handoff: string; pool: string };
let queueUrl: string;
let ec2Events: typeof import("../lambda/ec2-events");
let jobsTable: typeof import("../lambda/adapters/jobs-table");
let reservedItems: typeof import("../lambda/adapters/reserved-items");
let launchMarket: typeof import("../lambda/launcher/launch-market");
let handoff: typeof import("../lambda/adapters/handoff");

beforeAll(async () => {
  sandbox = await startSandbox();
  tables = await sandbox.createTables("ec2-events");
  queueUrl = sandbox.createQueue("ec2-events-launch").url;
  restoreEnv = sandbox.useEnv({
    STACK_NAME: "test",
    JOBS_TABLE: tables.jobs,
    HANDOFF_TABLE: tables.handoff,
    POOL_TABLE: tables.pool,
    LAUNCH_QUEUE_URL: queueUrl,
    RUNNER_ROLE_ID: "AROATESTRUNNERROLE",
    SPOT_BREAKER_INTERRUPTIONS: "2",
    SPOT_BREAKER_WINDOW_MINUTES: "10",
    SPOT_BREAKER_COOLDOWN_MINUTES: "30",
    POWERTOOLS_METRICS_DISABLED: "true",
    POWERTOOLS_LOG_LEVEL: "ERROR",
  });
  ec2Events = await import("../lambda/ec2-events");
  jobsTable = await import("../lambda/adapters/jobs-table");
  reservedItems = await import("../lambda/adapters/reserved-items");
  launchMarket = await import("../lambda/launcher/launch-market");
  handoff = await import("../lambda/adapters/handoff");
});

afterAll(async () => {
  restoreEnv?.();
  await sandbox?.close();
});

beforeEach(async () => {
  await sandbox.reset();
});

async function seed(jobId: string, over: Partial<JobRecord>) {
  await jobsTable.createJob(jobRecord(jobId, over));
}

describe("spot interruption warning", () => {
  it("marks a running job interrupted, with the time and the reason", async () => {
    await seed("101", { state: "running", instanceId: "i-0aaaaaaaaaaaaaaa1", market: "spot" });
    const result = await ec2Events.handler(interruptionWarning("i-0aaaaaaaaaaaaaaa1"));
    expect(result).toMatchObject({ decision: "mark-interrupted", applied: true, jobId: "101" });
    const job = await jobsTable.getJob("101");
    expect(job?.state).toBe("interrupted");
    expect(job?.interruptedAt).toBeDefined();
    expect(job?.reason).toMatch(/spot interruption of i-0aaaaaaaaaaaaaaa1/);
    expect(launchMessages(sandbox, queueUrl)).toEqual([]);
  });

  it("relaunches at once a job whose runner had not started, and terminates the doomed instance", async () => {
    const id = sandbox.ec2.addInstance({ market: "spot", tags: { "runner-fleet:stack": "test" } });
    await seed("111", { state: "launched", instanceId: id, launchedAt: new Date().toISOString() });
    const result = await ec2Events.handler(interruptionWarning(id));
    expect(result).toMatchObject({ decision: "relaunch", applied: true });
    expect(await jobsTable.getJob("111")).toMatchObject({
      state: "queued",
      reason: expect.stringMatching(/before the job started/),
    });
    expect(launchMessages(sandbox, queueUrl)).toEqual([{ jobId: "111", configName: "linux-x64" }]);
    // Its runner must not take a job in the two minutes left.
    expect(sandbox.ec2.instance(id)?.state).toBe("terminated");
  });

  it("changes nothing on a job that completed first (interruption after completion), but still counts", async () => {
    await seed("102", { state: "completed", instanceId: "i-0aaaaaaaaaaaaaaa2", conclusion: "success" });
    const result = await ec2Events.handler(interruptionWarning("i-0aaaaaaaaaaaaaaa2"));
    expect(result).toMatchObject({ decision: "none", applied: false });
    expect((await jobsTable.getJob("102"))?.state).toBe("completed");
    const breaker = await reservedItems.getBreaker("linux-x64");
    expect(breaker?.interruptions).toHaveLength(1);
  });

  it("opens the config's breaker after K interruptions in the window, and the launcher then gets on-demand", async () => {
    const config = { name: "linux-x64", spotPolicy: "spotPreferred" as const };
    const pending = [
      { jobId: "200", repo: "acme/widgets", runId: 1, runAttempt: 1, configName: "linux-x64" },
    ];
    await seed("201", { state: "running", instanceId: "i-0bbbbbbbbbbbbbbb1" });
    await seed("202", { state: "running", instanceId: "i-0bbbbbbbbbbbbbbb2" });
    const first = await ec2Events.handler(interruptionWarning("i-0bbbbbbbbbbbbbbb1"));
    expect(first.breakerOpened).toBe(false);
    expect((await launchMarket.launchMarketOverrides(pending, config)).size).toBe(0);
    const second = await ec2Events.handler(interruptionWarning("i-0bbbbbbbbbbbbbbb2"));
    expect(second.breakerOpened).toBe(true);
    const overrides = await launchMarket.launchMarketOverrides(pending, config);
    expect(overrides.get("200")).toMatchObject({
      market: "on-demand",
      reason: expect.stringMatching(/breaker open/),
    });
    // spotOnly configs stay on spot; the cool-down ends it.
    expect(
      (await launchMarket.launchMarketOverrides(pending, { ...config, spotPolicy: "spotOnly" })).size,
    ).toBe(0);
    expect(
      (await launchMarket.launchMarketOverrides(pending, config, new Date(Date.now() + 31 * 60_000))).size,
    ).toBe(0);
  });

  it("counts concurrent interruptions of one config without losing any", async () => {
    const ids = Array.from({ length: 6 }, (_, i) => `i-0ccccccccccccccc${i}`);
    await Promise.all(
      ids.map((id, i) => seed(`30${i}`, { state: "running", instanceId: id, configName: "arm" })),
    );
    const policy = { threshold: 100, windowSeconds: 600, cooldownSeconds: 60 };
    await Promise.all(ids.map(() => reservedItems.recordSpotInterruption("arm", new Date(), policy)));
    expect((await reservedItems.getBreaker("arm"))?.interruptions).toHaveLength(6);
  });
});

describe("instance state change", () => {
  it("relaunches a launched job whose instance terminated before the job started, once", async () => {
    await seed("401", {
      state: "launched",
      instanceId: "i-0ddddddddddddddd1",
      launchedAt: new Date().toISOString(),
    });
    await handoff.writeHandoff({ instanceId: "i-0ddddddddddddddd1", jobId: "401", jitConfig: "secret-jit" });
    const result = await ec2Events.handler(stateChange("i-0ddddddddddddddd1", "terminated"));
    expect(result).toMatchObject({ decision: "relaunch", applied: true });
    const job = await jobsTable.getJob("401");
    expect(job).toMatchObject({ state: "queued" });
    expect(job?.instanceId).toBeUndefined();
    expect(job?.enqueuedAt).toBeDefined();
    expect(job?.enqueueClaimedAt).toBeUndefined();
    expect(job?.reason).toMatch(/terminated before the job started/);
    expect(launchMessages(sandbox, queueUrl)).toEqual([{ jobId: "401", configName: "linux-x64" }]);
    // The JIT config of a dead instance is gone.
    expect(await handoff.readHandoff("i-0ddddddddddddddd1")).toBeUndefined();
    // EventBridge delivers at least once: the duplicate finds nothing to do.
    const again = await ec2Events.handler(stateChange("i-0ddddddddddddddd1", "terminated"));
    expect(again.applied).toBe(false);
    expect(launchMessages(sandbox, queueUrl)).toHaveLength(1);
  });

  it("terminates a stopped instance whose job had not started, and relaunches the job", async () => {
    const id = sandbox.ec2.addInstance({
      market: "on-demand",
      tags: { "runner-fleet:stack": "test" },
      state: "stopped",
    });
    await seed("404", { state: "launched", instanceId: id });
    const result = await ec2Events.handler(stateChange(id, "stopped"));
    expect(result).toMatchObject({ decision: "relaunch", applied: true });
    expect(sandbox.ec2.instance(id)?.state).toBe("terminated");
    expect(launchMessages(sandbox, queueUrl)).toEqual([{ jobId: "404", configName: "linux-x64" }]);
  });

  it("leaves a pooled job alone when its member's warm-up stop arrives after the launcher started it", async () => {
    const id = sandbox.ec2.addInstance({ market: "on-demand", tags: { "runner-fleet:stack": "test" } });
    const startedAt = new Date();
    await seed("405", { state: "launched", instanceId: id, launchedAt: startedAt.toISOString() });
    const warmupStop = new Date(startedAt.getTime() - 90_000);
    const result = await ec2Events.handler(stateChange(id, "stopped", warmupStop));
    expect(result).toMatchObject({ decision: "none", applied: false });
    expect(sandbox.ec2.instance(id)?.state).toBe("running");
    expect(await jobsTable.getJob("405")).toMatchObject({ state: "launched", instanceId: id });
    expect(launchMessages(sandbox, queueUrl)).toEqual([]);
  });

  it("does not touch a running job (its completion comes from GitHub) nor a job relaunched elsewhere since", async () => {
    await seed("402", { state: "running", instanceId: "i-0ddddddddddddddd2" });
    await seed("403", { state: "launched", instanceId: "i-0ddddddddddddddd4" });
    expect((await ec2Events.handler(stateChange("i-0ddddddddddddddd2", "terminated"))).applied).toBe(false);
    // A late event for an instance the job no longer names.
    expect((await ec2Events.handler(stateChange("i-0ddddddddddddddd3", "terminated"))).decision).toBe("none");
    expect((await ec2Events.handler(stateChange("i-0ddddddddddddddd4", "pending"))).decision).toBe("none");
    const jobs = await allJobs(sandbox, tables.jobs);
    expect(jobs.map((j) => [j.jobId, j.state]).sort()).toEqual([
      ["402", "running"],
      ["403", "launched"],
    ]);
    expect(launchMessages(sandbox, queueUrl)).toEqual([]);
  });
});
