import { describe, expect, it } from "vitest";
import type {
  ReconcileAction,
  ReconcileInput,
  ReconcilePolicy,
  StackInstance,
} from "../lambda/core/reconcile-model";
import { planReconcile } from "../lambda/core/reconcile-plan";
import { instanceIdFromRunnerName, runnerNameFor } from "../lambda/core/stack-identity";
import type { HandoffReport } from "../lambda/shared/handoff-report";
import type { JobRecord } from "../lambda/shared/job";

const NOW = new Date("2026-11-23T12:00:00Z");
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString();

const policy: ReconcilePolicy = {
  stackName: "dev",
  enqueueClaimSeconds: 60,
  requeueAfterSeconds: 600,
  launchingTimeoutSeconds: 300,
  queueTimeoutSeconds: 3600,
  maxRuntimeSeconds: 6 * 3600,
  idleTimeoutSeconds: 600,
  orphanGraceSeconds: 300,
  completedGraceSeconds: 120,
  maxActions: 100,
  maxGithubChecks: 10,
};

function job(id: string, over: Partial<JobRecord> = {}): JobRecord {
  return {
    jobId: id,
    state: "queued",
    configName: "linux-x64",
    labels: ["self-hosted"],
    repo: "o/r",
    owner: "o",
    runId: 1,
    githubHost: "github.com",
    deliveryId: "d",
    lastAction: "queued",
    createdAt: ago(30),
    updatedAt: ago(30),
    queuedAt: ago(30),
    enqueuedAt: ago(30),
    expiresAt: 0,
    ...over,
  };
}

const instance = (id: string, launchedSecondsAgo: number, state = "running"): StackInstance => ({
  instanceId: id,
  state,
  launchTime: ago(launchedSecondsAgo),
});

function plan(over: Partial<ReconcileInput>) {
  return planReconcile({ jobs: [], instances: [], runners: [], handoffs: [], policy, now: NOW, ...over });
}
const kinds = (actions: ReconcileAction[]) =>
  actions.map(
    (a) =>
      `${a.kind}:${"jobId" in a && a.jobId ? a.jobId : ""}${"instanceId" in a && a.instanceId ? `@${a.instanceId}` : ""}`,
  );

describe("runner names", () => {
  it("reads the instance id back from the name the launcher gives", () => {
    expect(instanceIdFromRunnerName("dev", runnerNameFor("dev", "i-0123456789abcdef0"))).toBe(
      "i-0123456789abcdef0",
    );
    expect(instanceIdFromRunnerName("dev", "prod-i-0123456789abcdef0")).toBeUndefined();
    expect(instanceIdFromRunnerName("dev", "dev-laptop")).toBeUndefined();
    // A stack whose name is a prefix of another's does not claim its runners.
    expect(instanceIdFromRunnerName("dev", "dev-2-i-0123456789abcdef0")).toBeUndefined();
  });
});

describe("queued jobs", () => {
  it("enqueues a job recorded but never enqueued once the webhook's claim is stale, not before", () => {
    const fresh = job("1", { enqueuedAt: undefined, enqueueClaimedAt: ago(20), updatedAt: ago(20) });
    const stale = job("2", { enqueuedAt: undefined, enqueueClaimedAt: ago(90), updatedAt: ago(90) });
    const { actions } = plan({ jobs: [fresh, stale] });
    expect(actions).toEqual([expect.objectContaining({ kind: "enqueue", jobId: "2", check: false })]);
  });

  it("re-enqueues a job whose message was lost, asking GitHub first", () => {
    const lost = job("1", { enqueuedAt: ago(700), updatedAt: ago(700), queuedAt: ago(700) });
    const waiting = job("2", { enqueuedAt: ago(100), updatedAt: ago(100) });
    const { actions } = plan({ jobs: [lost, waiting] });
    expect(actions).toEqual([expect.objectContaining({ kind: "enqueue", jobId: "1", check: true })]);
  });

  it("times out a job queued past the queue timeout, with the reason", () => {
    const old = job("1", { queuedAt: ago(3700), updatedAt: ago(700), attempts: 3 });
    const { actions } = plan({ jobs: [old] });
    expect(actions).toHaveLength(1);
    expect(actions[0]).toMatchObject({ kind: "expire", jobId: "1", from: "queued" });
    expect((actions[0] as { reason: string }).reason).toMatch(
      /queue timeout of 60 min \(3 launch attempts\)/,
    );
  });

  it("bounds GitHub look-ups: beyond the cap, jobs are enqueued unchecked", () => {
    const jobs = Array.from({ length: 15 }, (_, i) =>
      job(String(i), { enqueuedAt: ago(700), updatedAt: ago(700) }),
    );
    const { actions } = plan({ jobs });
    expect(actions.filter((a) => a.kind === "enqueue" && a.check)).toHaveLength(10);
    expect(actions.filter((a) => a.kind === "enqueue" && !a.check)).toHaveLength(5);
  });
});

describe("launching and launched jobs", () => {
  it("releases a job launching longer than the launcher may run", () => {
    const stuck = job("1", { state: "launching", launchingAt: ago(400), updatedAt: ago(400) });
    const live = job("2", { state: "launching", launchingAt: ago(30), updatedAt: ago(30) });
    const { actions } = plan({ jobs: [stuck, live] });
    expect(actions).toEqual([expect.objectContaining({ kind: "release", jobId: "1", from: "launching" })]);
  });

  it("relaunches a launched job whose instance terminated before the job started", () => {
    const j = job("1", { state: "launched", instanceId: "i-00000001", launchedAt: ago(100) });
    const { actions } = plan({ jobs: [j], instances: [instance("i-00000001", 100, "terminated")] });
    expect(actions).toEqual([
      expect.objectContaining({ kind: "release", jobId: "1", from: "launched", instanceId: "i-00000001" }),
    ]);
  });

  it("waits for a started pool member still listed as stopped, then relaunches if it stays stopped", () => {
    // The member stopped after its warm-up two days ago; a launcher claimed and started it for job 1.
    const started = job("1", { state: "launched", instanceId: "i-00000001", launchedAt: ago(20) });
    const member = { ...instance("i-00000001", 2 * 86_400, "stopped"), poolConfig: "linux-x64" };
    const claimed = (at: number) => [
      { instanceId: "i-00000001", state: "claimed" as const, claimedAt: ago(at) },
    ];
    const listed = { instances: [member], poolMembers: claimed(21) };
    expect(plan({ jobs: [started], ...listed }).actions).toEqual([]);
    // Still stopped past the grace: the start did not happen.
    const late = { ...started, launchedAt: ago(400) };
    expect(kinds(plan({ jobs: [late], instances: [member], poolMembers: claimed(401) }).actions)).toContain(
      "release:1@i-00000001",
    );
    // Stopped again after the start (its launch time is the start's): this life's stop, at once.
    const stoppedSince = { ...member, launchTime: ago(10) };
    expect(
      kinds(plan({ jobs: [started], instances: [stoppedSince], poolMembers: claimed(21) }).actions),
    ).toEqual(["release:1@i-00000001"]);
  });

  it("waits for an instance not listed yet, then relaunches when it never appears", () => {
    const fresh = job("1", { state: "launched", instanceId: "i-00000001", launchedAt: ago(10) });
    expect(plan({ jobs: [fresh] }).actions).toEqual([]);
    const lost = job("1", { state: "launched", instanceId: "i-00000001", launchedAt: ago(400) });
    expect(kinds(plan({ jobs: [lost] }).actions)).toEqual(["release:1@i-00000001"]);
    // EC2 unreadable this run: no instance-based decision at all.
    expect(plan({ jobs: [lost], instances: undefined }).actions).toEqual([]);
  });

  it("relaunches a launched job whose runner another job took (in_progress handling missed)", () => {
    const a = job("A", { state: "launched", instanceId: "i-00000001", launchedAt: ago(60) });
    const b = job("B", { state: "running", instanceId: "i-00000001" });
    const report: HandoffReport = {
      instanceId: "i-00000001",
      runnerStartedAt: ago(30),
      jobStartedAt: ago(20),
    };
    const { actions } = plan({ jobs: [a, b], instances: [instance("i-00000001", 60)], handoffs: [report] });
    expect(kinds(actions)).toEqual(["release:A@i-00000001"]);
  });
});

describe("instances", () => {
  it("terminates an instance over the max runtime and times its job out", () => {
    const j = job("1", { state: "running", instanceId: "i-00000001" });
    const { actions } = plan({ jobs: [j], instances: [instance("i-00000001", 6 * 3600 + 60)] });
    expect(kinds(actions)).toEqual(["terminate:1@i-00000001", "expire:1"]);
    expect((actions[0] as { reason: string }).reason).toMatch(/max runtime of 360 min/);
  });

  it("terminates an idle runner that got no job and relaunches its job after asking GitHub", () => {
    const j = job("1", { state: "launched", instanceId: "i-00000001", launchedAt: ago(700) });
    const report = { instanceId: "i-00000001", runnerStartedAt: ago(610) };
    const { actions } = plan({ jobs: [j], instances: [instance("i-00000001", 700)], handoffs: [report] });
    expect(kinds(actions)).toEqual(["terminate:1@i-00000001", "release:1@i-00000001"]);
    expect(actions[1]).toMatchObject({ check: true });
    expect((actions[0] as { reason: string }).reason).toMatch(/runner got no job/);
  });

  it("counts idleness from the runner's start, not the launch", () => {
    const j = job("1", { state: "launched", instanceId: "i-00000001" });
    const report = { instanceId: "i-00000001", runnerStartedAt: ago(300) };
    expect(plan({ jobs: [j], instances: [instance("i-00000001", 700)], handoffs: [report] }).actions).toEqual(
      [],
    );
  });

  it("keeps an instance whose runner reported a job start even before in_progress arrived", () => {
    const j = job("1", { state: "launched", instanceId: "i-00000001" });
    const report = { instanceId: "i-00000001", runnerStartedAt: ago(900), jobStartedAt: ago(800) };
    expect(
      plan({ jobs: [j], instances: [instance("i-00000001", 1000)], handoffs: [report] }).actions,
    ).toEqual([]);
  });

  it("terminates an instance whose job completed, after the grace period", () => {
    const done = (s: number) =>
      job("1", { state: "completed", instanceId: "i-00000001", completedAt: ago(s) });
    expect(plan({ jobs: [done(60)], instances: [instance("i-00000001", 900)] }).actions).toEqual([]);
    expect(kinds(plan({ jobs: [done(200)], instances: [instance("i-00000001", 900)] }).actions)).toEqual([
      "terminate:1@i-00000001",
    ]);
  });

  it("terminates an instance that reported its job finished but did not shut down", () => {
    const report = {
      instanceId: "i-00000001",
      runnerStartedAt: ago(900),
      jobStartedAt: ago(800),
      jobFinishedAt: ago(130),
    };
    const j = job("1", { state: "running", instanceId: "i-00000001" });
    // The job is still `running` in the ledger (completed not seen yet): a running job protects its instance.
    expect(
      plan({ jobs: [j], instances: [instance("i-00000001", 1000)], handoffs: [report] }).actions,
    ).toEqual([]);
    expect(
      kinds(plan({ jobs: [], instances: [instance("i-00000001", 1000)], handoffs: [report] }).actions),
    ).toEqual(["terminate:@i-00000001"]);
  });

  it("terminates an orphan (no job, no hand-off) only after the grace period", () => {
    expect(plan({ instances: [instance("i-00000001", 100)] }).actions).toEqual([]);
    const { actions } = plan({ instances: [instance("i-00000001", 400)] });
    expect(kinds(actions)).toEqual(["terminate:@i-00000001"]);
    expect((actions[0] as { reason: string }).reason).toMatch(/^orphan/);
  });

  it("terminates a stopped instance and ignores terminated ones", () => {
    const { actions } = plan({
      instances: [instance("i-00000001", 100, "stopped"), instance("i-00000002", 100, "terminated")],
    });
    expect(kinds(actions)).toEqual(["terminate:@i-00000001"]);
  });
});

describe("running and interrupted jobs", () => {
  it("asks GitHub about a running job whose instance is gone (completed webhook lost)", () => {
    const j = job("1", { state: "running", instanceId: "i-00000001", updatedAt: ago(300) });
    const { actions } = plan({ jobs: [j], instances: [instance("i-00000001", 900, "terminated")] });
    expect(actions).toEqual([expect.objectContaining({ kind: "check", jobId: "1" })]);
    // Not while the instance runs, nor right after the last change.
    expect(plan({ jobs: [j], instances: [instance("i-00000001", 900)] }).actions).toEqual([]);
    const recent = { ...j, updatedAt: ago(30) };
    expect(plan({ jobs: [recent], instances: [instance("i-00000001", 900, "terminated")] }).actions).toEqual(
      [],
    );
  });

  it("gives up on a job that never reports completion, long after max runtime", () => {
    const j = job("1", {
      state: "interrupted",
      instanceId: "i-00000001",
      queuedAt: ago(8 * 3600),
      updatedAt: ago(7 * 3600),
    });
    const { actions } = plan({ jobs: [j], instances: [], policy: { ...policy, maxGithubChecks: 0 } });
    expect(kinds(actions)).toEqual(["expire:1"]);
  });
});

describe("runners and hand-offs", () => {
  it("deletes offline runners of this stack whose instance is gone, and no others", () => {
    const runners = [
      { id: 1, name: "dev-i-00000001", status: "offline", busy: false }, // instance gone
      { id: 2, name: "dev-i-00000002", status: "offline", busy: false }, // instance booting
      { id: 3, name: "dev-i-00000003", status: "offline", busy: false }, // not listed yet, hand-off exists
      { id: 4, name: "other-i-00000004", status: "offline", busy: false }, // another stack
      { id: 5, name: "dev-i-00000005", status: "online", busy: false },
    ];
    const { actions } = plan({
      runners,
      instances: [instance("i-00000002", 30, "pending")],
      handoffs: [{ instanceId: "i-00000003", createdAt: ago(10) }],
    });
    expect(actions.filter((a) => a.kind === "delete-runner")).toEqual([
      expect.objectContaining({ runnerId: 1, runnerName: "dev-i-00000001" }),
    ]);
  });

  it("deletes hand-offs of dead instances, keeping fresh ones of instances not listed yet", () => {
    const handoffs = [
      { instanceId: "i-00000001", createdAt: ago(60) }, // terminated
      { instanceId: "i-00000002", createdAt: ago(60) }, // unlisted, fresh
      { instanceId: "i-00000003", createdAt: ago(900) }, // unlisted, old
      { instanceId: "i-00000004", createdAt: ago(900) }, // running
    ];
    const { actions } = plan({
      handoffs,
      instances: [instance("i-00000001", 100, "terminated"), instance("i-00000004", 900)],
      jobs: [job("4", { state: "running", instanceId: "i-00000004" })],
    });
    expect(
      actions.filter((a) => a.kind === "delete-handoff").map((a) => (a as { instanceId: string }).instanceId),
    ).toEqual(["i-00000001", "i-00000003"]);
  });

  it("bounds the actions of one run and counts the rest", () => {
    const jobs = Array.from({ length: 30 }, (_, i) => job(String(i), { queuedAt: ago(4000) }));
    const result = plan({ jobs, policy: { ...policy, maxActions: 25 } });
    expect(result.actions).toHaveLength(25);
    expect(result.deferred).toBe(5);
  });
});

describe("launching jobs whose launcher died after recording an instance (issue 12, defect 7)", () => {
  const stuck = job("1", { state: "launching", instanceId: "i-00000001", launchingAt: ago(400) });

  it("records the job launched when its instance has its hand-off, taken or not yet", () => {
    for (const report of [
      { instanceId: "i-00000001", createdAt: ago(390), fetchedAt: ago(350), runnerStartedAt: ago(340) },
      { instanceId: "i-00000001", createdAt: ago(390) },
    ]) {
      const { actions } = plan({
        jobs: [stuck],
        instances: [instance("i-00000001", 395)],
        handoffs: [report],
      });
      expect(actions).toEqual([
        expect.objectContaining({
          kind: "mark-launched",
          jobId: "1",
          instanceId: "i-00000001",
          launchedAt: ago(390),
        }),
      ]);
    }
  });

  it("releases it, asking GitHub first, when the instance died after a runner started", () => {
    const report = { instanceId: "i-00000001", createdAt: ago(390), runnerStartedAt: ago(340) };
    const dead = instance("i-00000001", 395, "terminated");
    const { actions } = plan({ jobs: [stuck], instances: [dead], handoffs: [report] });
    expect(actions).toEqual([
      expect.objectContaining({ kind: "release", jobId: "1", instanceId: "i-00000001", check: true }),
      expect.objectContaining({ kind: "delete-handoff", instanceId: "i-00000001" }),
    ]);
  });

  it("terminates an instance that never got its hand-off, and releases the job", () => {
    const { actions } = plan({ jobs: [stuck], instances: [instance("i-00000001", 395)], handoffs: [] });
    expect(kinds(actions)).toEqual(["terminate:1@i-00000001", "release:1@i-00000001"]);
  });

  it("waits while the hand-offs cannot be read, and before the launching timeout", () => {
    expect(
      plan({ jobs: [stuck], instances: [instance("i-00000001", 395)], handoffs: undefined }).actions,
    ).toEqual([]);
    const young = { ...stuck, launchingAt: ago(100) };
    expect(plan({ jobs: [young], instances: [instance("i-00000001", 95)] }).actions).toEqual([]);
  });
});

describe("launching jobs whose runner was taken", () => {
  it("relaunches a launching job (launched not recorded yet) whose runner took another job", () => {
    const a = job("A", { state: "launching", instanceId: "i-00000001", launchingAt: ago(30) });
    const b = job("B", { state: "running", instanceId: "i-00000001" });
    const { actions } = plan({ jobs: [a, b], instances: [instance("i-00000001", 60)] });
    expect(actions).toEqual([
      expect.objectContaining({ kind: "release", jobId: "A", from: "launching", instanceId: "i-00000001" }),
    ]);
  });
});

describe("jobs known by their runner name only", () => {
  it("treats a running job's runner name as its instance (in_progress follow-up missed)", () => {
    const a = job("A", { state: "launched", instanceId: "i-00000001", launchedAt: ago(60) });
    const b = job("B", { state: "running", runnerName: "dev-i-00000001", updatedAt: ago(600) });
    const { actions } = plan({ jobs: [a, b], instances: [instance("i-00000001", 60)] });
    // A is relaunched; B's instance is up, so GitHub is not asked about B.
    expect(kinds(actions)).toEqual(["release:A@i-00000001"]);
  });
});

describe("a job that ran on another instance than the one launched for it", () => {
  it("holds the instance its runner runs on, not the one it was launched on", () => {
    // B was launched on i-2, but the runner of i-1 took it; A was launched on i-1.
    const a = job("A", {
      state: "launched",
      instanceId: "i-00000001",
      runnerName: "dev-i-00000001",
      launchedAt: ago(700),
    });
    const b = job("B", {
      state: "running",
      instanceId: "i-00000002",
      runnerName: "dev-i-00000001",
      updatedAt: ago(60),
    });
    const reports = [
      { instanceId: "i-00000001", runnerStartedAt: ago(650), jobStartedAt: ago(600) },
      { instanceId: "i-00000002", runnerStartedAt: ago(650) },
    ];
    const { actions } = plan({
      jobs: [a, b],
      instances: [instance("i-00000001", 700), instance("i-00000002", 700)],
      handoffs: reports,
    });
    // A gets a new launch at once; i-2, whose runner got no job, is idle; i-1 runs B.
    expect(kinds(actions).sort()).toEqual(["release:A@i-00000001", "terminate:@i-00000002"]);
  });
});

describe("an instance whose runner's job closed without the runner saying so", () => {
  it("is terminated after the grace period once the job its runner took is closed", () => {
    const report = { instanceId: "i-00000001", runnerStartedAt: ago(900), jobStartedAt: ago(800) };
    const ran = job("B", {
      state: "completed",
      instanceId: "i-00000001",
      runnerName: "dev-i-00000001",
      startedAt: ago(800),
      completedAt: ago(200),
    });
    expect(
      kinds(plan({ jobs: [ran], instances: [instance("i-00000001", 1000)], handoffs: [report] }).actions),
    ).toEqual(["terminate:B@i-00000001"]);
    // A job that was launched for it but closed before any runner took it says nothing about what runs there.
    const cancelled = { ...ran, startedAt: undefined };
    expect(
      plan({ jobs: [cancelled], instances: [instance("i-00000001", 1000)], handoffs: [report] }).actions,
    ).toEqual([]);
  });
});

describe("a spot interruption the instance saw first", () => {
  it("marks the running job interrupted from the hand-off report (EventBridge warning lost)", () => {
    const j = job("1", { state: "running", instanceId: "i-00000001" });
    const report = {
      instanceId: "i-00000001",
      runnerStartedAt: ago(300),
      jobStartedAt: ago(200),
      interruptedAt: ago(30),
    };
    const { actions } = plan({ jobs: [j], instances: [instance("i-00000001", 400)], handoffs: [report] });
    expect(actions).toEqual([
      expect.objectContaining({
        kind: "interrupt",
        jobId: "1",
        instanceId: "i-00000001",
        interruptedAt: ago(30),
      }),
    ]);
    // Already interrupted: nothing more.
    expect(
      plan({
        jobs: [{ ...j, state: "interrupted" }],
        instances: [instance("i-00000001", 400)],
        handoffs: [report],
      }).actions,
    ).toEqual([]);
  });
});
