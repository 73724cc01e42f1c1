/**
 * `in_progress` follow-ups against the sandbox: a runner launched for job A that takes job B ("stolen"
 * runner) gets A a new launch at once; duplicates and out-of-order deliveries (completed before
 * in_progress) stay safe. The webhook handler records the events and runs
 * webhook/after-in-progress.ts afterInProgress after each in_progress; calling it again (as a
 * duplicate would) changes nothing.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { JobRecord } from "../lambda/shared/job";
import { signedApiGatewayEvent, workflowJobEvent } from "./fixtures/webhooks";
import { linuxConfig, STACK, startWorld, WEBHOOK_SECRET, type World } from "./lifecycle-support";

let world: World;
let lifecycle: typeof import("../lambda/webhook/after-in-progress");
let jobsTable: typeof import("../lambda/adapters/jobs-table");
let reconciler: typeof import("../lambda/reconciler");
let webhook: typeof import("../lambda/webhook").handler;

beforeAll(async () => {
  world = await startWorld("stolen");
  lifecycle = await import("../lambda/webhook/after-in-progress");
  jobsTable = await import("../lambda/adapters/jobs-table");
  reconciler = await import("../lambda/reconciler");
  ({ handler: webhook } = await import("../lambda/webhook"));
});

afterAll(async () => {
  await world?.close();
});

beforeEach(async () => {
  await world.reset();
});

const X = "i-0aaaaaaaaaaaaaaa1";
const Y = "i-0bbbbbbbbbbbbbbb2";
const runnerOf = (instanceId: string) => `${STACK}-${instanceId}`;

async function seed(jobId: string, over: Partial<JobRecord>) {
  expect(await jobsTable.createJob(world.jobRecord(jobId, over))).toBe(true);
}

/** Delivers a workflow_job event through the real webhook handler. */
async function deliver(
  action: "in_progress" | "completed",
  jobId: string,
  runnerName: string,
  conclusion?: string,
) {
  const payload = workflowJobEvent(action, {
    id: Number(jobId),
    runId: 4242,
    labels: linuxConfig.labels,
    repo: world.repoFullName,
    installationId: world.github.installationId,
    runnerName,
    runnerId: 77,
    conclusion,
  });
  const response = await webhook(await signedApiGatewayEvent(payload, WEBHOOK_SECRET));
  expect(response.statusCode).toBeLessThan(300);
}

describe("a runner that takes another job", () => {
  it("relaunches the job it was launched for at once, and maps the job it took to it", async () => {
    await seed("101", { state: "launched", instanceId: X, runnerName: runnerOf(X) });
    await seed("102", { state: "launched", instanceId: Y, runnerName: runnerOf(Y) });
    await deliver("in_progress", "102", runnerOf(X));

    const a = await world.getJob("101");
    expect(a).toMatchObject({ state: "queued", reason: expect.stringMatching(/took job 102/) });
    expect(a.instanceId).toBeUndefined();
    expect(a.enqueuedAt).toBeDefined();
    expect(await world.getJob("102")).toMatchObject({
      state: "running",
      instanceId: X,
      runnerName: runnerOf(X),
    });
    expect(world.launchMessages()).toEqual([{ jobId: "101", configName: "linux-x64" }]);

    // GitHub may deliver the same event again.
    await deliver("in_progress", "102", runnerOf(X));
    expect(await lifecycle.afterInProgress({ jobId: "102", runnerName: runnerOf(X) })).toEqual([]);
    expect(world.launchMessages()).toHaveLength(1);
  });

  it("also when the launcher had not recorded `launched` yet (runner quicker than the launcher)", async () => {
    await seed("201", { state: "launching", instanceId: X });
    await seed("202", { state: "queued" });
    await deliver("in_progress", "202", runnerOf(X));
    expect((await world.getJob("201")).state).toBe("queued");
    // The launcher, finishing late, cannot move the released job on.
    expect(await jobsTable.transitionJob("201", "launched")).toBeUndefined();
  });

  it("releases nothing for its own job, or for a runner that is not this stack's", async () => {
    await seed("301", { state: "launched", instanceId: X });
    await deliver("in_progress", "301", runnerOf(X));
    expect(await lifecycle.afterInProgress({ jobId: "301", runnerName: runnerOf(X) })).toEqual([]);
    await seed("302", { state: "launched", instanceId: Y });
    await deliver("in_progress", "303", "someones-laptop");
    expect(await lifecycle.afterInProgress({ jobId: "303", runnerName: "someones-laptop" })).toEqual([]);
    expect((await world.getJob("302")).state).toBe("launched");
    expect(world.launchMessages()).toEqual([]);
  });
});

describe("completed before in_progress", () => {
  it("closes the job, still relaunches the job whose runner it took, and the reconciler reaps the instance", async () => {
    await seed("401", { state: "launched", instanceId: X, runnerName: runnerOf(X) });
    await seed("402", { state: "queued" });
    const id = world.sandbox.ec2.addInstance({
      tags: { "runner-fleet:stack": STACK, "runner-fleet:config": "linux-x64" },
      market: "spot",
      launchTime: world.sandbox.clock.now() - 20 * 60_000,
    });
    // The runner of instance `id` took 402; `completed` overtakes `in_progress`.
    await deliver("completed", "402", runnerOf(id), "success");
    expect(await world.getJob("402")).toMatchObject({ state: "completed", conclusion: "success" });
    await seed("403", { state: "launched", instanceId: id, runnerName: runnerOf(id) });
    await deliver("in_progress", "402", runnerOf(id));
    expect((await world.getJob("403")).state).toBe("queued");
    expect(world.launchMessages()).toEqual([{ jobId: "403", configName: "linux-x64" }]);
    // The late in_progress did not reopen the job.
    expect(await world.getJob("402")).toMatchObject({ state: "completed", instanceId: id });
    // The instance is still up after the grace period: the reconciler terminates it.
    await reconciler.reconcile({ now: new Date(Date.now() + 3 * 60_000) });
    expect(world.sandbox.ec2.instance(id)?.state).toBe("terminated");
    // 401 never had its runner taken: untouched.
    expect((await world.getJob("401")).state).toBe("launched");
  });
});
