/**
 * The reconciler Lambda against the sandbox (dynalite, SQS, EC2, SSM) and the GitHub fake: each rule
 * on real items, instances, runners and deliveries, and the races (two reconcilers at once, the
 * reconciler and the launcher on the same job).
 */
import type { SQSRecord } from "aws-lambda";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { TAGS } from "../lambda/core/stack-identity";
import type { JobRecord } from "../lambda/shared/job";
import {
  linuxConfig,
  putLabelConfigs,
  reportProgress,
  STACK,
  startWorld,
  type World,
} from "./lifecycle-support";

let world: World;
let reconciler: typeof import("../lambda/reconciler");
let jobsTable: typeof import("../lambda/adapters/jobs-table");
let handoff: typeof import("../lambda/adapters/handoff");
let launchMarket: typeof import("../lambda/launcher/launch-market");
let githubClient: typeof import("../lambda/adapters/github-client");
let githubRunners: typeof import("../lambda/adapters/github-runners");

beforeAll(async () => {
  world = await startWorld("reconciler");
  reconciler = await import("../lambda/reconciler");
  jobsTable = await import("../lambda/adapters/jobs-table");
  handoff = await import("../lambda/adapters/handoff");
  launchMarket = await import("../lambda/launcher/launch-market");
  githubClient = await import("../lambda/adapters/github-client");
  githubRunners = await import("../lambda/adapters/github-runners");
});

afterAll(async () => {
  await world?.close();
});

beforeEach(async () => {
  await world.reset();
});

afterEach(() => {
  expect(world.github.violations()).toEqual([]);
});

const MIN = 60_000;
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();

/** A job known to GitHub (the fake) and to the ledger, in `state`. */
async function seed(
  over: Partial<JobRecord> = {},
  gh: {
    status?: "queued" | "in_progress" | "completed";
    conclusion?: "success" | "failure" | "cancelled";
  } = {},
) {
  const remote = world.github.state.seedJob({
    owner: world.github.repo.owner,
    repo: world.github.repo.name,
    status: gh.status ?? "queued",
    conclusion: gh.conclusion ?? null,
    labels: linuxConfig.labels,
  });
  const job = world.jobRecord(String(remote.id), { runId: remote.run_id, ...over });
  expect(await jobsTable.createJob(job)).toBe(true);
  return job;
}

const stackTags: Record<string, string> = { [TAGS.stack]: STACK, [TAGS.config]: linuxConfig.name };
function instance(
  launchedMsAgo: number,
  state: "running" | "pending" | "terminated" | "stopped" = "running",
  tags = stackTags,
) {
  return world.sandbox.ec2.addInstance({
    tags,
    state,
    market: "spot",
    launchTime: world.sandbox.clock.now() - launchedMsAgo,
  });
}
const stateOf = (instanceId: string) => world.sandbox.ec2.instance(instanceId)?.state;

describe("jobs without a launch", () => {
  it("enqueues a job the webhook recorded but never enqueued, once", async () => {
    const job = await seed({
      enqueuedAt: undefined,
      enqueueClaimedAt: ago(2 * MIN),
      updatedAt: ago(2 * MIN),
    });
    const report = await reconciler.reconcile();
    expect(report.applied.enqueue).toBe(1);
    expect(world.launchMessages()).toEqual([{ jobId: job.jobId, configName: "linux-x64" }]);
    const after = await world.getJob(job.jobId);
    expect(after.enqueuedAt).toBeDefined();
    expect(after.enqueueClaimedAt).toBeUndefined();
    expect(after.reason).toMatch(/never enqueued/);
    await reconciler.reconcile();
    expect(world.launchMessages()).toHaveLength(1);
  });

  it("re-enqueues a job whose message was lost, after asking GitHub; closes one GitHub cancelled", async () => {
    const lost = await seed({ enqueuedAt: ago(11 * MIN), updatedAt: ago(11 * MIN), queuedAt: ago(11 * MIN) });
    const cancelled = await seed(
      { enqueuedAt: ago(11 * MIN), updatedAt: ago(11 * MIN), queuedAt: ago(11 * MIN) },
      { status: "completed", conclusion: "cancelled" },
    );
    await reconciler.reconcile();
    expect(world.launchMessages()).toEqual([{ jobId: lost.jobId, configName: "linux-x64" }]);
    expect(await world.getJob(cancelled.jobId)).toMatchObject({
      state: "completed",
      conclusion: "cancelled",
    });
    expect((await world.getJob(cancelled.jobId)).reason).toMatch(/completed webhook was not seen/);
    expect(world.sandbox.callsTo("github", "actions/get-job-for-workflow-run")).toHaveLength(2);
  });

  it("records as running a job GitHub has in progress whose webhooks were lost, instead of launching it again", async () => {
    const job = await seed({ enqueuedAt: ago(11 * MIN), updatedAt: ago(11 * MIN), queuedAt: ago(11 * MIN) });
    Object.assign(world.github.state.jobs.get(Number(job.jobId))!, {
      status: "in_progress",
      runner_name: `${STACK}-i-0123456789abcdef0`,
      runner_id: 5,
    });
    await reconciler.reconcile();
    expect(await world.getJob(job.jobId)).toMatchObject({
      state: "running",
      runnerName: `${STACK}-i-0123456789abcdef0`,
      reason: expect.stringMatching(/in_progress webhook was not seen/),
    });
    expect(world.launchMessages()).toEqual([]);
  });

  it("releases a job whose launcher died mid-launch and enqueues it again", async () => {
    const job = await seed({ state: "launching", launchingAt: ago(6 * MIN), updatedAt: ago(6 * MIN) });
    const live = await seed({ state: "launching", launchingAt: ago(30_000), updatedAt: ago(30_000) });
    await reconciler.reconcile();
    expect(await world.getJob(job.jobId)).toMatchObject({
      state: "queued",
      reason: expect.stringMatching(/launcher lost/),
    });
    expect((await world.getJob(live.jobId)).state).toBe("launching");
    expect(world.launchMessages()).toEqual([{ jobId: job.jobId, configName: "linux-x64" }]);
  });

  it("times out a job queued past the queue timeout, with the reason", async () => {
    const job = await seed({ queuedAt: ago(61 * MIN), updatedAt: ago(3 * MIN), attempts: 2 });
    await reconciler.reconcile();
    const after = await world.getJob(job.jobId);
    expect(after.state).toBe("timed-out");
    expect(after.reason).toMatch(/queue timeout of 60 min \(2 launch attempts\)/);
    expect(world.launchMessages()).toEqual([]);
  });
});

describe("instances", () => {
  it("terminates over-age, idle, orphaned and finished-job instances, and nothing else", async () => {
    const overAge = instance(361 * MIN);
    const overAgeJob = await seed(
      { state: "running", instanceId: overAge, startedAt: ago(300 * MIN) },
      { status: "in_progress" },
    );
    const idle = instance(12 * MIN);
    const idleJob = await seed({ state: "launched", instanceId: idle, launchedAt: ago(12 * MIN) });
    await handoff.writeHandoff({ instanceId: idle, jobId: idleJob.jobId, jitConfig: "secret" });
    await reportProgress(world, idle, { runnerStartedAt: ago(11 * MIN) });
    const orphan = instance(6 * MIN);
    const done = instance(20 * MIN);
    await seed({ state: "completed", instanceId: done, completedAt: ago(3 * MIN), conclusion: "success" });
    const booting = instance(30_000, "pending");
    await seed({ state: "launched", instanceId: booting });
    const busy = instance(30 * MIN);
    await seed({ state: "running", instanceId: busy }, { status: "in_progress" });
    const foreign = instance(500 * MIN, "running", { Name: "not-ours" });

    const report = await reconciler.reconcile();
    expect(report.applied.terminate).toBe(4);
    expect(report.instances).toBe(6); // RunnerInstances: the stack's live instances this run saw
    expect([overAge, idle, orphan, done].map(stateOf)).toEqual([
      "terminated",
      "terminated",
      "terminated",
      "terminated",
    ]);
    expect([booting, busy, foreign].map(stateOf)).not.toContain("terminated");
    expect(await world.getJob(overAgeJob.jobId)).toMatchObject({
      state: "timed-out",
      reason: expect.stringMatching(/max runtime/),
    });
    // The idle runner's job is still queued on GitHub: it gets a new launch.
    expect(await world.getJob(idleJob.jobId)).toMatchObject({
      state: "queued",
      reason: expect.stringMatching(/idle/),
    });
    expect(world.launchMessages()).toEqual([{ jobId: idleJob.jobId, configName: "linux-x64" }]);
  });

  it("marks a running job interrupted when its instance reported the spot notice and the event was lost", async () => {
    const id = instance(10 * MIN);
    const job = await seed({ state: "running", instanceId: id }, { status: "in_progress" });
    await handoff.writeHandoff({ instanceId: id, jobId: job.jobId, jitConfig: "secret" });
    const noticed = ago(30_000);
    await reportProgress(world, id, {
      runnerStartedAt: ago(9 * MIN),
      jobStartedAt: ago(8 * MIN),
      interruptedAt: noticed,
    });
    await reconciler.reconcile();
    expect(await world.getJob(job.jobId)).toMatchObject({ state: "interrupted", interruptedAt: noticed });
    expect(stateOf(id)).toBe("running"); // AWS reclaims it; the job's completion comes from GitHub
  });

  it("relaunches a launched job whose instance died, and closes a running one GitHub says completed", async () => {
    const dead = instance(5 * MIN, "terminated");
    const launched = await seed({ state: "launched", instanceId: dead, launchedAt: ago(4 * MIN) });
    const gone = instance(40 * MIN, "terminated");
    const running = await seed(
      { state: "running", instanceId: gone, updatedAt: ago(10 * MIN) },
      { status: "completed", conclusion: "success" },
    );
    await reconciler.reconcile();
    expect(await world.getJob(launched.jobId)).toMatchObject({ state: "queued" });
    expect((await world.getJob(launched.jobId)).instanceId).toBeUndefined();
    expect(await world.getJob(running.jobId)).toMatchObject({ state: "completed", conclusion: "success" });
    expect(world.launchMessages()).toEqual([{ jobId: launched.jobId, configName: "linux-x64" }]);
  });
});

describe("a launcher that died after the hand-off (issue 12, defect 7)", () => {
  it("leaves the job to the instance taking it: no second CreateFleet, one instance, one runner", async () => {
    const { handler: launcher } = await import("../lambda/launcher");
    const gh = await githubClient.githubForInstallation(world.github.installationId);
    const t0 = world.sandbox.clock.now();
    const at = (ms: number) => new Date(t0 + ms).toISOString();
    // The launcher claimed the job, launched its instance, recorded it, registered its runner and
    // handed the JIT config off, then died before recording `launched` (crash point 4).
    const instanceId = instance(0);
    const runnerName = `${STACK}-${instanceId}`;
    const job = await seed({
      state: "launching",
      launchingAt: at(0),
      updatedAt: at(0),
      instanceId,
      runnerName,
    });
    const scope = { kind: "org" as const, org: world.github.org };
    const jit = await githubRunners.generateJitConfig(gh, scope, {
      name: runnerName,
      runnerGroupId: 1,
      labels: linuxConfig.labels,
    });
    await handoff.writeHandoff({ instanceId, jobId: job.jobId, jitConfig: jit.encodedJitConfig, runnerName });
    // The instance boots, takes its config and starts its runner; GitHub has not given it the job yet.
    world.github.state.connectRunner(jit.encodedJitConfig);
    await reportProgress(world, instanceId, { fetchedAt: at(MIN / 2), runnerStartedAt: at(MIN) });

    // Ticks past the launching timeout (5 min), short of the idle timeout (10 min from the runner's start).
    for (let tick = 1; tick <= 9; tick++) {
      world.sandbox.clock.advance(MIN);
      await reconciler.reconcile({ now: new Date(world.sandbox.clock.now()), sweepRunners: true });
      for (;;) {
        const records = world.sandbox.sqs.receive(world.queue.url, 10);
        if (records.length === 0) break;
        world.sandbox.sqs.settle(world.queue.url, records, await launcher({ Records: records }));
      }
      expect(world.sandbox.callsTo("ec2", "CreateFleet")).toEqual([]);
      expect(world.sandbox.ec2.instances({ state: ["pending", "running"] }).map((i) => i.instanceId)).toEqual(
        [instanceId],
      );
      expect(world.github.state.listRunners().map((r) => r.name)).toEqual([runnerName]);
    }
    expect(await world.getJob(job.jobId)).toMatchObject({
      state: "launched",
      instanceId,
      reason: expect.stringMatching(/after the hand-off to .* \(its runner started\): recorded launched/),
    });
  });
});

describe("runners and hand-offs", () => {
  it("deletes this stack's offline runners whose instance is gone, and the hand-offs of dead instances", async () => {
    const gh = await githubClient.githubForInstallation(world.github.installationId);
    const scope = { kind: "org" as const, org: world.github.org };
    const dead = instance(20 * MIN, "terminated");
    const alive = instance(60_000, "pending");
    const register = (name: string) =>
      githubRunners.generateJitConfig(gh, scope, { name, runnerGroupId: 1, labels: ["self-hosted"] });
    const stale = await register(`${STACK}-${dead}`);
    await register(`${STACK}-${alive}`);
    await register("laptop-of-someone");
    // A job of this org puts its scope in view (jobs carry the installation to ask through).
    await seed({ state: "launched", instanceId: alive, launchedAt: ago(60_000) });
    await handoff.writeHandoff({
      instanceId: dead,
      jobId: "1",
      jitConfig: "secret",
      now: new Date(Date.now() - 20 * MIN),
    });
    await handoff.writeHandoff({ instanceId: alive, jobId: "2", jitConfig: "secret" });

    // Runners are listed every few runs only.
    expect((await reconciler.reconcile({ sweepRunners: false })).applied["delete-runner"]).toBeUndefined();
    const report = await reconciler.reconcile({ sweepRunners: true });
    expect(report.applied["delete-runner"]).toBe(1);
    expect(
      world.github.state
        .listRunners()
        .map((r) => r.name)
        .sort(),
    ).toEqual([`${STACK}-${alive}`, "laptop-of-someone"].sort());
    expect(world.github.state.runners.get(stale.runnerId)?.deleted).toBe(true);
    expect(await handoff.readHandoff(dead)).toBeUndefined();
    expect(await handoff.readHandoff(alive)).toBeDefined();
  });
});

describe("an idle fleet", () => {
  it("still sweeps the runners of the scopes of recently closed jobs", async () => {
    const gh = await githubClient.githubForInstallation(world.github.installationId);
    const dead = instance(30 * MIN, "terminated");
    await githubRunners.generateJitConfig(
      gh,
      { kind: "org", org: world.github.org },
      {
        name: `${STACK}-${dead}`,
        runnerGroupId: 1,
        labels: ["self-hosted"],
      },
    );
    await seed({
      state: "completed",
      conclusion: "success",
      updatedAt: ago(40 * MIN),
      completedAt: ago(40 * MIN),
    });
    const report = await reconciler.reconcile({ sweepRunners: true });
    expect(report.applied["delete-runner"]).toBe(1);
    expect(world.github.state.listRunners()).toEqual([]);
  });
});

describe("missed webhooks", () => {
  it("redelivers failed workflow_job deliveries once, not those redelivered since nor other events", async () => {
    const state = world.github.state;
    const lost = state.seedDelivery({
      event: "workflow_job",
      action: "queued",
      status: "Invalid HTTP Response: 502",
      status_code: 502,
    });
    const healed = state.seedDelivery({
      event: "workflow_job",
      action: "completed",
      status: "timed out",
      status_code: 0,
    });
    state.seedDelivery({ ...healed, id: state.id(), redelivery: true, status: "OK", status_code: 200 });
    state.seedDelivery({ event: "push", status: "Invalid HTTP Response: 503", status_code: 503 });
    const seen: number[] = [];
    const stop = state.onRedelivery((d) => seen.push(d.id));
    try {
      const first = await reconciler.reconcile();
      expect(first.redelivered).toBe(1);
      expect(state.redeliveryAttempts.map((a) => a.deliveryId)).toEqual([lost.id]);
      // The redelivery succeeded (the fake's default outcome): the next runs leave it alone.
      await reconciler.reconcile({ now: new Date(Date.now() + 2 * MIN) });
      await reconciler.reconcile({ now: new Date(Date.now() + 10 * MIN) });
      expect(state.redeliveryAttempts).toHaveLength(1);
      expect(seen).toHaveLength(1);
    } finally {
      stop();
    }
  });

  it("keeps trying a delivery whose redeliveries fail, with a backoff", async () => {
    const state = world.github.state;
    state.redeliveryOutcome = { status: "Invalid HTTP Response: 502", status_code: 502 };
    try {
      state.seedDelivery({
        event: "workflow_job",
        action: "queued",
        status: "Invalid HTTP Response: 502",
        status_code: 502,
      });
      const t0 = Date.now();
      await reconciler.reconcile({ now: new Date(t0) });
      await reconciler.reconcile({ now: new Date(t0 + 30_000) }); // inside the backoff
      expect(state.redeliveryAttempts).toHaveLength(1);
      await reconciler.reconcile({ now: new Date(t0 + 2 * MIN) });
      expect(state.redeliveryAttempts).toHaveLength(2);
    } finally {
      state.redeliveryOutcome = { status: "OK", status_code: 200 };
    }
  });
});

describe("re-run on interruption", () => {
  /** A spot job that failed after its instance was interrupted, as GitHub and the ledger both say. */
  const seedSpotJobAnInterruptionFailed = () =>
    seed(
      {
        state: "completed",
        conclusion: "failure",
        interruptedAt: ago(3 * MIN),
        market: "spot",
        completedAt: ago(MIN),
      },
      { status: "completed", conclusion: "failure" },
    );

  it("re-runs a job an interruption failed, once, and sends the next attempt to on-demand", async () => {
    const job = await seedSpotJobAnInterruptionFailed();
    const first = await reconciler.reconcile();
    expect(first.rerun).toBe(1);
    expect(world.github.state.reruns.map((r) => String(r.jobId))).toEqual([job.jobId]);
    expect((await world.getJob(job.jobId)).reason).toMatch(/re-run once on on-demand/);
    await reconciler.reconcile();
    expect(world.github.state.reruns).toHaveLength(1);

    const next = { jobId: "999", repo: job.repo, runId: job.runId, runAttempt: 2, configName: "linux-x64" };
    const overrides = await launchMarket.launchMarketOverrides([next], linuxConfig);
    expect(overrides.get("999")).toMatchObject({ market: "on-demand" });
  });

  it("tries again on the next run when GitHub refused the re-run", async () => {
    const job = await seedSpotJobAnInterruptionFailed();
    world.sandbox.faults.fail(
      "github",
      "actions/re-run-job-for-workflow-run",
      { code: "forbidden", status: 403 },
      { times: 1 },
    );
    expect((await reconciler.reconcile()).rerun).toBe(0);
    // Given back: the launcher must not send the run's next attempt to on-demand for a re-run that never happened.
    const next = { jobId: "999", repo: job.repo, runId: job.runId, runAttempt: 2, configName: "linux-x64" };
    expect((await launchMarket.launchMarketOverrides([next], linuxConfig)).size).toBe(0);
    expect((await reconciler.reconcile()).rerun).toBe(1);
    expect(world.github.state.reruns.map((r) => String(r.jobId))).toEqual([job.jobId]);
    expect((await launchMarket.launchMarketOverrides([next], linuxConfig)).get("999")?.market).toBe(
      "on-demand",
    );
  });

  it("leaves alone a job that succeeded despite the interruption, or whose config does not ask", async () => {
    await seed(
      { state: "completed", conclusion: "success", interruptedAt: ago(MIN) },
      { status: "completed", conclusion: "success" },
    );
    await seed(
      { state: "completed", conclusion: "failure", interruptedAt: ago(MIN), configName: "no-retry" },
      { status: "completed", conclusion: "failure" },
    );
    await putLabelConfigs(world.sandbox, { ...linuxConfig, name: "no-retry", retryOnInterruption: false });
    expect((await reconciler.reconcile()).rerun).toBe(0);
    expect(world.github.state.reruns).toEqual([]);
  });
});

describe("the Lambda entry", () => {
  it("stops starting actions when the invocation's time budget is spent, and defers them", async () => {
    await Promise.all(
      Array.from({ length: 5 }, () =>
        seed({ state: "launching", launchingAt: ago(6 * MIN), updatedAt: ago(6 * MIN) }),
      ),
    );
    const context = { getRemainingTimeInMillis: () => 10_000 } as import("aws-lambda").Context;
    // Past its deadline a run plans but acts no more: everything is deferred to the next run.
    const spent = await reconciler.reconcile({ deadline: Date.now() - 1 });
    expect(spent.deferred).toBe(5);
    expect(world.launchMessages()).toEqual([]);
    // The handler's budget is the invocation's remaining time less 10 s, at least 5 s.
    const report = await reconciler.handler({} as import("aws-lambda").ScheduledEvent, context);
    expect(report.applied.release).toBe(5);
    expect(world.launchMessages()).toHaveLength(5);
  });
});

describe("races", () => {
  it("two reconcilers at once launch each stuck job once", async () => {
    const stuck = await Promise.all(
      Array.from({ length: 8 }, () =>
        seed({ state: "launching", launchingAt: ago(6 * MIN), updatedAt: ago(6 * MIN) }),
      ),
    );
    const gap = await seed({
      enqueuedAt: undefined,
      enqueueClaimedAt: ago(2 * MIN),
      updatedAt: ago(2 * MIN),
    });
    const [a, b] = await Promise.all([reconciler.reconcile(), reconciler.reconcile()]);
    expect((a.applied.release ?? 0) + (b.applied.release ?? 0)).toBe(8);
    expect((a.applied.enqueue ?? 0) + (b.applied.enqueue ?? 0)).toBe(1);
    const ids = world
      .launchMessages()
      .map((m) => m.jobId)
      .sort();
    expect(ids).toEqual([...stuck.map((j) => j.jobId), gap.jobId].sort());
  });

  it("the reconciler and the launcher on the same job: one instance, the job launched once", async () => {
    const { handler: launcher } = await import("../lambda/launcher");
    // A job whose first message is in flight at the launcher while the reconciler thinks it was lost.
    const job = await seed({ enqueuedAt: ago(11 * MIN), updatedAt: ago(11 * MIN), queuedAt: ago(11 * MIN) });
    world.sandbox.sqs.send(world.queue.url, JSON.stringify({ jobId: job.jobId, configName: "linux-x64" }));
    const records: SQSRecord[] = world.sandbox.sqs.receive(world.queue.url, 10);
    const [response] = await Promise.all([launcher({ Records: records }), reconciler.reconcile()]);
    world.sandbox.sqs.settle(world.queue.url, records, response);
    // Whatever the reconciler sent meanwhile is a duplicate: the launcher drops it.
    for (;;) {
      const more = world.sandbox.sqs.receive(world.queue.url, 10);
      if (more.length === 0) break;
      world.sandbox.sqs.settle(world.queue.url, more, await launcher({ Records: more }));
    }
    const live = world.sandbox.ec2.instances({ state: ["pending", "running"] });
    expect(live).toHaveLength(1);
    expect(await world.getJob(job.jobId)).toMatchObject({
      state: "launched",
      instanceId: live[0]!.instanceId,
      attempts: 1,
    });
  });
});
