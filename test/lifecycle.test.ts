import { describe, expect, it } from "vitest";
import {
  type BreakerPolicy,
  breakerOpen,
  decideInProgress,
  decideInstanceStopped,
  decideInterruption,
  decideRetryOnInterruption,
  marketOverride,
  recordInterruption,
} from "../lambda/core/lifecycle";
import {
  type HookDelivery,
  planRedeliveries,
  type RedeliveryPolicy,
  readSince,
  webhooksToScan,
} from "../lambda/core/redelivery";
import type { JobRecord } from "../lambda/shared/job";

const NOW = new Date("2026-11-23T12:00:00Z");
const at = (s: number) => new Date(NOW.getTime() + s * 1000);

function job(id: string, over: Partial<JobRecord> = {}): JobRecord {
  return {
    jobId: id,
    state: "launched",
    configName: "linux-x64",
    labels: ["self-hosted"],
    repo: "o/r",
    owner: "o",
    runId: 7,
    runAttempt: 1,
    githubHost: "github.com",
    deliveryId: "d",
    lastAction: "queued",
    createdAt: NOW.toISOString(),
    updatedAt: NOW.toISOString(),
    expiresAt: 0,
    ...over,
  };
}

describe("in_progress: stolen runners", () => {
  it("releases the job the runner was launched for when it took another job", () => {
    const a = job("A", { instanceId: "i-00000001" });
    const d = decideInProgress({
      stackName: "dev",
      jobId: "B",
      runnerName: "dev-i-00000001",
      onInstance: [a],
    });
    expect(d.instanceId).toBe("i-00000001");
    expect(d.release).toEqual([
      { jobId: "A", configName: "linux-x64", from: "launched", reason: expect.stringMatching(/took job B/) },
    ]);
    // The launcher records `launched` only after the hand-off: the runner can be quicker.
    const launching = job("A", { state: "launching", instanceId: "i-00000001" });
    const early = decideInProgress({
      stackName: "dev",
      jobId: "B",
      runnerName: "dev-i-00000001",
      onInstance: [launching],
    });
    expect(early.release).toEqual([expect.objectContaining({ jobId: "A", from: "launching" })]);
  });

  it("releases nothing when the runner took its own job, or its launched-for job already runs elsewhere", () => {
    const own = job("A", { instanceId: "i-00000001" });
    expect(
      decideInProgress({ stackName: "dev", jobId: "A", runnerName: "dev-i-00000001", onInstance: [own] })
        .release,
    ).toEqual([]);
    const running = job("A", { state: "running", instanceId: "i-00000001" });
    expect(
      decideInProgress({ stackName: "dev", jobId: "B", runnerName: "dev-i-00000001", onInstance: [running] })
        .release,
    ).toEqual([]);
    // A duplicate in_progress after A was already released (no longer on the instance).
    const released = job("A", { state: "queued" });
    expect(
      decideInProgress({ stackName: "dev", jobId: "B", runnerName: "dev-i-00000001", onInstance: [released] })
        .release,
    ).toEqual([]);
  });

  it("ignores runners that are not this stack's", () => {
    const a = job("A", { instanceId: "i-00000001" });
    const d = decideInProgress({ stackName: "dev", jobId: "B", runnerName: "laptop", onInstance: [a] });
    expect(d).toEqual({ release: [] });
  });
});

describe("instance events", () => {
  it("relaunches a job not yet started on an interrupted instance and terminates it; marks a running one", () => {
    expect(decideInterruption(job("A"), "i-1")).toMatchObject({
      kind: "relaunch",
      from: "launched",
      terminate: true,
    });
    expect(decideInterruption(job("A", { state: "running" }), "i-1")).toMatchObject({
      kind: "mark-interrupted",
    });
    expect(decideInterruption(job("A", { state: "completed" }), "i-1").kind).toBe("none");
    expect(decideInterruption(undefined, "i-1").kind).toBe("none");
  });

  it("relaunches on terminated/stopped only a launched job of that very instance", () => {
    const a = job("A", { instanceId: "i-1" });
    expect(decideInstanceStopped(a, "i-1", "terminated")).toMatchObject({
      kind: "relaunch",
      terminate: false,
    });
    expect(decideInstanceStopped(a, "i-1", "stopped")).toMatchObject({ kind: "relaunch", terminate: true });
    expect(decideInstanceStopped(a, "i-1", "running").kind).toBe("none");
    expect(decideInstanceStopped({ ...a, instanceId: "i-2" }, "i-1", "terminated").kind).toBe("none");
    expect(decideInstanceStopped({ ...a, state: "running" }, "i-1", "terminated").kind).toBe("none");
  });

  it("ignores a stop from before the job was launched on the instance (a pool member's warm-up stop)", () => {
    const a = job("A", { instanceId: "i-1", launchedAt: "2026-12-02T10:00:05.250Z" });
    // Stopped after its warm-up at 09:58, the event delivered after a launcher started it for A.
    expect(decideInstanceStopped(a, "i-1", "stopped", new Date("2026-12-02T09:58:00Z"))).toMatchObject({
      kind: "none",
      reason: expect.stringMatching(/before job A was launched/),
    });
    // In the launch's own second (EventBridge times to the second) or after: it is this life's stop.
    expect(decideInstanceStopped(a, "i-1", "stopped", new Date("2026-12-02T10:00:05Z")).kind).toBe(
      "relaunch",
    );
    expect(decideInstanceStopped(a, "i-1", "terminated", new Date("2026-12-02T10:00:09Z")).kind).toBe(
      "relaunch",
    );
  });
});

describe("spot circuit breaker", () => {
  const policy: BreakerPolicy = { threshold: 3, windowSeconds: 600, cooldownSeconds: 1800 };

  it("opens after K interruptions inside the window, for the cool-down", () => {
    let r = recordInterruption(undefined, "c", at(0), policy);
    r = recordInterruption(r.state, "c", at(100), policy);
    expect(r.opened).toBe(false);
    expect(breakerOpen(r.state, at(100))).toBe(false);
    r = recordInterruption(r.state, "c", at(200), policy);
    expect(r.opened).toBe(true);
    expect(breakerOpen(r.state, at(201))).toBe(true);
    expect(breakerOpen(r.state, at(200 + 1801))).toBe(false);
  });

  it("forgets interruptions that fell out of the window", () => {
    let r = recordInterruption(undefined, "c", at(0), policy);
    r = recordInterruption(r.state, "c", at(100), policy);
    r = recordInterruption(r.state, "c", at(800), policy); // the first two are older than 600 s
    expect(r.opened).toBe(false);
    expect(r.state.interruptions).toHaveLength(1);
  });

  it("does not re-open (or extend) while open", () => {
    let r = recordInterruption(undefined, "c", at(0), { ...policy, threshold: 1 });
    const until = r.state.openUntil;
    r = recordInterruption(r.state, "c", at(10), { ...policy, threshold: 1 });
    expect(r.opened).toBe(false);
    expect(r.state.openUntil).toBe(until);
  });
});

describe("re-run on interruption and the launch market", () => {
  const config = { retryOnInterruption: true };
  const interrupted = job("A", {
    state: "completed",
    interruptedAt: NOW.toISOString(),
    market: "spot",
    instanceId: "i-1",
  });

  it("re-runs a failed, interrupted spot job only when the config asks", () => {
    expect(decideRetryOnInterruption(interrupted, "failure", config).rerun).toBe(true);
    expect(decideRetryOnInterruption(interrupted, "failure", { retryOnInterruption: false }).rerun).toBe(
      false,
    );
    expect(decideRetryOnInterruption(interrupted, "success", config).rerun).toBe(false);
    expect(decideRetryOnInterruption(interrupted, "cancelled", config).rerun).toBe(false);
    expect(
      decideRetryOnInterruption({ ...interrupted, interruptedAt: undefined }, "failure", config).rerun,
    ).toBe(false);
    expect(decideRetryOnInterruption({ ...interrupted, market: "on-demand" }, "failure", config).rerun).toBe(
      false,
    );
  });

  const retry = {
    repo: "o/r",
    runId: 7,
    fromAttempt: 1,
    jobId: "A",
    configName: "linux-x64",
    reason: "",
    createdAt: "",
  };

  it("sends the later attempt of a re-run run to on-demand, in the same config only", () => {
    const spotPreferred = { spotPolicy: "spotPreferred" as const };
    expect(
      marketOverride({
        job: { runAttempt: 2, configName: "linux-x64" },
        config: spotPreferred,
        retry,
        now: NOW,
      }),
    ).toMatchObject({ market: "on-demand" });
    expect(
      marketOverride({
        job: { runAttempt: 1, configName: "linux-x64" },
        config: spotPreferred,
        retry,
        now: NOW,
      }),
    ).toBeUndefined();
    expect(
      marketOverride({ job: { runAttempt: 2, configName: "arm" }, config: spotPreferred, retry, now: NOW }),
    ).toBeUndefined();
    // The user asked for the on-demand re-run explicitly, so it applies to spotOnly configs too.
    expect(
      marketOverride({
        job: { runAttempt: 2, configName: "linux-x64" },
        config: { spotPolicy: "spotOnly" },
        retry,
        now: NOW,
      }),
    ).toMatchObject({ market: "on-demand" });
  });

  it("moves spotPreferred (not spotOnly) configs to on-demand while the breaker is open", () => {
    const breaker = { configName: "linux-x64", interruptions: [], openUntil: at(60).toISOString() };
    const j = { runAttempt: 1, configName: "linux-x64" };
    expect(
      marketOverride({ job: j, config: { spotPolicy: "spotPreferred" }, breaker, now: NOW })?.reason,
    ).toMatch(/breaker open/);
    expect(marketOverride({ job: j, config: { spotPolicy: "spotOnly" }, breaker, now: NOW })).toBeUndefined();
    expect(
      marketOverride({ job: j, config: { spotPolicy: "spotPreferred" }, breaker, now: at(61) }),
    ).toBeUndefined();
    expect(
      marketOverride({ job: j, config: { spotPolicy: "onDemandOnly" }, breaker, now: NOW }),
    ).toBeUndefined();
  });
});

describe("webhook redelivery", () => {
  const policy: RedeliveryPolicy = {
    lookbackSeconds: 3600,
    maxAttempts: 3,
    baseBackoffSeconds: 60,
    maxPerRun: 10,
  };
  const d = (
    id: number,
    guid: string,
    s: number,
    code: number,
    over: Partial<HookDelivery> = {},
  ): HookDelivery => ({
    id,
    guid,
    delivered_at: at(s).toISOString(),
    redelivery: false,
    status_code: code,
    event: "workflow_job",
    action: "queued",
    ...over,
  });

  it("redelivers failed workflow_job deliveries that no later attempt delivered", () => {
    const deliveries = [
      d(1, "g1", -50, 502),
      d(2, "g2", -40, 0), // timed out
      d(3, "g2", -30, 200, { redelivery: true }), // ... and redelivered since
      d(4, "g3", -20, 503, { event: "push" }),
      d(5, "g4", -10, 200),
    ];
    const r = planRedeliveries(undefined, deliveries, NOW, policy);
    expect(r.redeliver).toEqual([{ id: 1, guid: "g1", attempt: 1 }]);
    expect(r.state.scannedUntil).toBe(NOW.toISOString());
    expect(Object.keys(r.state.pending)).toEqual(["g1"]);
  });

  it("backs off between redeliveries, follows the latest failed attempt and gives up after the limit", () => {
    let r = planRedeliveries(undefined, [d(1, "g1", -5, 502)], NOW, policy);
    expect(r.redeliver.map((x) => x.id)).toEqual([1]);
    // Our redelivery failed too (a new entry, same guid); each read sees the failures back to it.
    const failed = [d(1, "g1", -5, 502), d(2, "g1", 1, 502, { redelivery: true })];
    r = planRedeliveries(r.state, failed, at(30), policy);
    expect(r.redeliver).toEqual([]); // 60 s backoff not over
    r = planRedeliveries(r.state, failed, at(62), policy);
    expect(r.redeliver).toEqual([{ id: 2, guid: "g1", attempt: 2 }]);
    const failedAgain = [...failed, d(3, "g1", 63, 502, { redelivery: true })];
    r = planRedeliveries(r.state, failedAgain, at(62 + 100), policy);
    expect(r.redeliver).toEqual([]); // 120 s now
    r = planRedeliveries(r.state, failedAgain, at(63 + 121), policy);
    expect(r.redeliver).toEqual([{ id: 3, guid: "g1", attempt: 3 }]);
    r = planRedeliveries(
      r.state,
      [...failedAgain, d(4, "g1", 185, 502, { redelivery: true })],
      at(2000),
      policy,
    );
    expect(r.redeliver).toEqual([]);
    expect(r.gaveUp).toEqual(["g1"]);
    expect(r.state.pending).toEqual({});
  });

  it("reads every webhook each run when few; else each in turn, every one within a full rotation", () => {
    expect(webhooksToScan(["a", "b"], 7, 5)).toEqual(["a", "b"]);
    const hooks = Array.from({ length: 12 }, (_, i) => `repo-${i}`);
    const runs = [100, 101, 102].map((minute) => webhooksToScan(hooks, minute, 5));
    // ceil(12 / 5) = 3 turns: no run reads more than 5, and three consecutive runs read all 12 once.
    for (const run of runs) expect(run.length).toBeLessThanOrEqual(5);
    expect(runs.flat().sort()).toEqual([...hooks].sort());
    expect(webhooksToScan(hooks, 103, 5)).toEqual(runs[0]);
  });

  it("drops a pending event once a later read shows it delivered", () => {
    let r = planRedeliveries(undefined, [d(1, "g1", -5, 502)], NOW, policy);
    r = planRedeliveries(r.state, [d(2, "g1", 1, 200, { redelivery: true })], at(120), policy);
    expect(r.redeliver).toEqual([]);
    expect(r.state.pending).toEqual({});
  });

  it("caps redeliveries per run, oldest first", () => {
    const many = Array.from({ length: 15 }, (_, i) => d(i, `g${i}`, -100 + i, 500));
    const r = planRedeliveries(undefined, many, NOW, policy);
    expect(r.redeliver.map((x) => x.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(Object.keys(r.state.pending)).toHaveLength(15);
  });

  it("takes a pending event that no longer shows a failure for delivered, once its attempt had time to be recorded", () => {
    // What github.ts listFailedDeliveries returns: failures only, events delivered since left out.
    let r = planRedeliveries(undefined, [d(1, "g1", -5, 502), d(2, "g2", -4, 502)], NOW, policy);
    expect(r.redeliver.map((x) => x.guid)).toEqual(["g1", "g2"]);
    // 30 s later: g1's redelivery failed again, g2's is not visible yet (too early to tell).
    r = planRedeliveries(r.state, [d(3, "g1", 1, 502, { redelivery: true })], at(30), policy);
    expect(Object.keys(r.state.pending).sort()).toEqual(["g1", "g2"]);
    // 90 s later g2 still shows no failure: delivered.
    r = planRedeliveries(r.state, [d(3, "g1", 1, 502, { redelivery: true })], at(90), policy);
    expect(Object.keys(r.state.pending)).toEqual(["g1"]);
  });

  it("reads back to the last run and the latest attempt of every pending event, never past the look-back", () => {
    expect(readSince(undefined, NOW, policy).toISOString()).toBe(at(-3600).toISOString());
    const state = { scannedUntil: at(-60).toISOString(), pending: {} };
    expect(readSince(state, NOW, policy).toISOString()).toBe(at(-120).toISOString());
    const pending = { g: { id: 1, attempts: 2, lastAt: at(-600).toISOString() } };
    expect(readSince({ ...state, pending }, NOW, policy).toISOString()).toBe(at(-660).toISOString());
    const ancient = { g: { id: 1, attempts: 2, lastAt: at(-9000).toISOString() } };
    expect(readSince({ ...state, pending: ancient }, NOW, policy).toISOString()).toBe(
      at(-3600).toISOString(),
    );
  });
});
