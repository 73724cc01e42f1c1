/**
 * `npm run status`: `explainJob` for every state (pure, table-driven), the fleet summary, the stopped
 * pools and their idle cost, and the whole tool against a seeded ledger and pool in the sandbox
 * (dynalite, the EC2 fake) with the Lambdas' own adapters.
 */
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunnerInstance } from "../lambda/adapters/ec2";
import { createJob } from "../lambda/adapters/jobs-table";
import type { PoolMember } from "../lambda/adapters/pool-members";
import { poolSizeAt } from "../lambda/core/pool-size";
import type { ReconcilePolicy } from "../lambda/core/reconcile-model";
import { planReconcile, reconcilePolicy } from "../lambda/core/reconcile-plan";
import type { JobRecord } from "../lambda/shared/job";
import type { LabelConfig } from "../lambda/shared/label-config";
import { loadSettings } from "../lambda/shared/settings";
import { describePrice, gp3PriceOf, monthlyGp3Cost } from "../scripts/lib/ebs-price";
import { explainJob, type FleetLimits, formatDuration } from "../scripts/lib/explain";
import { limitsFromConfig, runStatus, type StatusSources } from "../scripts/lib/fleet-status";
import { fleetReport, renderReport } from "../scripts/lib/fleet-summary";
import { poolsReport, renderPools } from "../scripts/lib/pool-report";
import { AMI_PARAMS, LABEL_PATH, STACK, seedPool } from "./deployed-stack-support";
import { linuxConfig } from "./lifecycle-support";
import { type Sandbox, startSandbox } from "./sandbox";

const NOW = new Date("2026-03-02T10:00:00.000Z");
const at = (secondsAgo: number) => new Date(NOW.getTime() - secondsAgo * 1000).toISOString();

function job(overrides: Partial<JobRecord>): JobRecord {
  return {
    jobId: "4242",
    state: "queued",
    configName: "linux-x64-large",
    labels: ["self-hosted", "linux", "x64", "large"],
    repo: "acme/widgets",
    owner: "acme",
    runId: 77,
    runAttempt: 1,
    githubHost: "github.com",
    deliveryId: "d-1",
    lastAction: "queued",
    createdAt: at(420),
    queuedAt: at(420),
    enqueuedAt: at(419),
    updatedAt: at(60),
    expiresAt: 0,
    ...overrides,
  };
}

const LIMITS: FleetLimits = {
  maxRunnersTotal: 30,
  queueTimeoutMinutes: 60,
  maxRuntimeMinutes: 360,
  configs: {
    "linux-x64-large": { maxRunners: 10, spotPolicy: "spotPreferred", spotFailuresBeforeOnDemand: 2 },
    "linux-arm64": { maxRunners: 2, spotPolicy: "spotOnly", spotFailuresBeforeOnDemand: 2 },
  },
  active: { total: 5, byConfig: { "linux-x64-large": 3, "linux-arm64": 2 } },
};

describe("explainJob", () => {
  const cases: {
    name: string;
    job: Partial<JobRecord>;
    limits?: FleetLimits;
    handoff?: unknown;
    expect: RegExp[];
  }[] = [
    {
      name: "queued after spot failures: on-demand next under spotPreferred",
      job: { attempts: 2, spotFailures: 2, reason: "no spot capacity (InsufficientInstanceCapacity)" },
      expect: [
        /^queued for 7 min: last: no spot capacity \(InsufficientInstanceCapacity\); 2 launch attempts; 2 spot failures; next: on-demand \(spotPreferred after 2\)$/,
        /^capacity: config linux-x64-large 3\/10 runners, all configs 5\/30$/,
        /^fails at the queue timeout in 53 min \(queueTimeoutMinutes 60\)$/,
      ],
    },
    {
      name: "queued below the threshold: spot next",
      job: { attempts: 1, spotFailures: 1 },
      expect: [
        /no capacity yet; 1 launch attempt; 1 spot failure; next: spot \(spotPreferred: on-demand after 2 spot failures\)/,
      ],
    },
    {
      name: "queued in a config at its limit",
      job: { configName: "linux-arm64" },
      expect: [
        /waiting for the launcher; next: spot \(spotOnly/,
        /the config is at its limit: it waits for a runner to finish/,
      ],
    },
    {
      name: "queued without a launch message",
      job: { enqueuedAt: undefined },
      expect: [/no launch message sent yet \(the reconciler re-sends a lost one\)/],
    },
    {
      name: "queued with a launch message nothing took",
      job: { enqueuedAt: at(660), queuedAt: at(660) },
      expect: [
        /its launch message was sent 11 min ago and nothing launched: the reconciler asks GitHub and sends it again/,
      ],
    },
    {
      name: "queued past the queue timeout",
      job: { queuedAt: at(3700) },
      expect: [
        /^queued for 1 h 1 min:/,
        /past the queue timeout \(60 min\): the next reconciler run fails it/,
      ],
    },
    {
      name: "queued, nothing known about limits",
      job: {},
      limits: {},
      expect: [
        /next: unknown \(config linux-x64-large is not in the stack config read\)/,
        /^capacity: unknown/,
        /^queue timeout: unknown$/,
      ],
    },
    {
      name: "launching",
      job: { state: "launching", launchingAt: at(40), attempts: 1 },
      expect: [/^launching for 40 s \(attempt 2\): a launcher is creating its instance$/],
    },
    {
      name: "launching too long",
      job: { state: "launching", launchingAt: at(400) },
      expect: [/longer than the 5 min a launch may take: the reconciler releases it/],
    },
    {
      name: "launched, runner not started",
      job: {
        state: "launched",
        instanceId: "i-0abc",
        market: "spot",
        instanceType: "m7i.large",
        availabilityZone: "eu-west-1b",
        launchedAt: at(40),
      },
      handoff: { instanceId: "i-0abc", createdAt: at(40) },
      expect: [
        /^launched on i-0abc \(spot, m7i\.large, eu-west-1b\) 40 s ago, runner not started yet \(the instance has not taken its JIT config/,
      ],
    },
    {
      name: "launched, config taken",
      job: { state: "launched", instanceId: "i-0abc", launchedAt: at(90) },
      handoff: { instanceId: "i-0abc", fetchedAt: at(30) },
      expect: [/^launched on i-0abc 1 min ago, took its JIT config 30 s ago, runner not started yet$/],
    },
    {
      name: "launched, runner up",
      job: { state: "launched", instanceId: "i-0abc", launchedAt: at(90) },
      handoff: { instanceId: "i-0abc", fetchedAt: at(60), runnerStartedAt: at(120) },
      limits: { ...LIMITS, idleTimeoutMinutes: 10 },
      expect: [
        /runner started 2 min ago, waiting for GitHub to assign the job \(terminated as idle in 8 min without one, idleTimeoutMinutes 10\)$/,
      ],
    },
    {
      name: "launched, hand-off not read",
      job: { state: "launched", instanceId: "i-0abc", launchedAt: at(90) },
      expect: [/runner progress unknown \(hand-off reports not read\)/],
    },
    {
      name: "launched, hand-off gone",
      job: { state: "launched", instanceId: "i-0abc", launchedAt: at(90) },
      handoff: null,
      expect: [/no hand-off item/],
    },
    {
      name: "running",
      job: {
        state: "running",
        instanceId: "i-0abc",
        startedAt: at(180),
        launchedAt: at(240),
        runnerName: "rf-i-0abc",
      },
      expect: [/^running on i-0abc for 3 min as runner rf-i-0abc$/, /max runtime \(360 min\) in 5 h 56 min$/],
    },
    {
      name: "completed",
      job: { state: "completed", conclusion: "success", completedAt: at(300), instanceId: "i-0abc" },
      expect: [/^completed \(success\) 5 min ago on i-0abc$/],
    },
    {
      name: "failed",
      job: { state: "failed", reason: "launch configuration error: InvalidLaunchTemplateId" },
      expect: [/^failed 1 min ago: launch configuration error: InvalidLaunchTemplateId$/],
    },
    {
      name: "timed out",
      job: {
        state: "timed-out",
        reason: "no capacity within the queue timeout (60 min)",
        completedAt: at(7200),
      },
      expect: [/^timed out 2 h ago: no capacity within the queue timeout \(60 min\)$/],
    },
    {
      name: "timed out without a reason",
      job: { state: "timed-out" },
      expect: [/^timed out 1 min ago: no reason recorded$/],
    },
    {
      name: "interrupted",
      job: {
        state: "interrupted",
        instanceId: "i-0abc",
        market: "spot",
        interruptedAt: at(30),
        reason: "spot interruption of i-0abc",
      },
      expect: [
        /^interrupted 30 s ago on i-0abc \(spot\): spot interruption of i-0abc; waiting for GitHub's conclusion/,
      ],
    },
  ];

  it.each(cases)("$name", ({ job: overrides, limits, handoff, expect: patterns }) => {
    const lines = explainJob(job(overrides), NOW, limits ?? LIMITS, handoff as never);
    expect(lines[0]).toBe(
      "job 4242 in acme/widgets (run 77, attempt 1), config " +
        `${overrides.configName ?? "linux-x64-large"}, labels self-hosted, linux, x64, large`,
    );
    expect(lines.at(-1)).toMatch(/^last GitHub event: queued \(delivery d-1\); item updated 1 min ago$/);
    for (const pattern of patterns)
      expect(
        lines.some((l) => pattern.test(l)),
        `${pattern} in\n${lines.join("\n")}`,
      ).toBe(true);
  });

  it("formats durations the way people read them", () => {
    expect([0, 59, 60, 3599, 3600, 3660, 172_800, 180_000].map(formatDuration)).toEqual([
      "0 s",
      "59 s",
      "1 min",
      "59 min",
      "1 h",
      "1 h 1 min",
      "2 d",
      "2 d 2 h",
    ]);
  });
});

describe("explain asks the reconciler's rules", () => {
  const policy = (limits: FleetLimits): ReconcilePolicy => ({
    ...reconcilePolicy(loadSettings({}), ""),
    queueTimeoutSeconds: limits.queueTimeoutMinutes! * 60,
    maxRuntimeSeconds: limits.maxRuntimeMinutes! * 60,
    ...limits.reconciler,
  });
  const handoff = { instanceId: "i-0abc", createdAt: at(380), fetchedAt: at(300) };
  const launching = (instanceId?: string) => job({ state: "launching", launchingAt: at(400), instanceId });

  it.each([120, 300, 399, 401, 600])(
    "says what the planner does with a launching timeout of %i s",
    (launchingTimeoutSeconds) => {
      const limits = { ...LIMITS, reconciler: { launchingTimeoutSeconds } };
      const overdue = launchingTimeoutSeconds < 400;
      const released = planReconcile({ jobs: [launching()], handoffs: [], now: NOW, policy: policy(limits) });
      expect(released.actions.some((a) => a.kind === "release")).toBe(overdue);
      expect(explainJob(launching(), NOW, limits).some((l) => /the reconciler releases it/.test(l))).toBe(
        overdue,
      );
      // An instance with its hand-off: the planner records the job launched, and explain says so.
      const handedOff = planReconcile({
        jobs: [launching("i-0abc")],
        handoffs: [handoff],
        now: NOW,
        policy: policy(limits),
      });
      expect(handedOff.actions.map((a) => a.kind)).toEqual(overdue ? ["mark-launched"] : []);
      expect(
        explainJob(launching("i-0abc"), NOW, limits, handoff).some((l) =>
          /i-0abc has its hand-off: the reconciler records it launched \(no second launch\)/.test(l),
        ),
      ).toBe(overdue);
    },
  );

  it("says when a lost launch message is sent again, as the planner counts it", () => {
    // Sent 11 min ago, but the item changed 1 min ago: the planner waits for the requeue delay from then.
    const lost = job({ enqueuedAt: at(660), queuedAt: at(660) });
    expect(planReconcile({ jobs: [lost], now: NOW, policy: policy(LIMITS) }).actions).toEqual([]);
    expect(explainJob(lost, NOW, LIMITS)[1]).toMatch(/sends it again in 9 min;/);
    const limits = { ...LIMITS, reconciler: { requeueAfterSeconds: 30 } };
    expect(planReconcile({ jobs: [lost], now: NOW, policy: policy(limits) }).actions).toEqual([
      expect.objectContaining({ kind: "enqueue", jobId: "4242" }),
    ]);
    expect(explainJob(lost, NOW, limits)[1]).toMatch(
      /nothing launched: the reconciler asks GitHub and sends it again;/,
    );
  });
});

describe("the fleet summary", () => {
  it("counts per state and config, ranks waiting jobs oldest first and failures newest first", () => {
    const jobs = [
      job({ jobId: "1", queuedAt: at(100) }),
      job({ jobId: "2", queuedAt: at(900) }),
      job({
        jobId: "3",
        state: "launching",
        configName: "linux-arm64",
        queuedAt: at(500),
        launchingAt: at(10),
      }),
      job({ jobId: "4", state: "running", configName: "linux-arm64" }),
      job({ jobId: "5", state: "failed", reason: "old", completedAt: at(5000) }),
      job({ jobId: "6", state: "timed-out", reason: "new", completedAt: at(50) }),
    ];
    const { active: _, ...limits } = LIMITS;
    const report = fleetReport(jobs, NOW, limits);
    expect(report.counts).toEqual({
      queued: { "linux-x64-large": 2 },
      launching: { "linux-arm64": 1 },
      running: { "linux-arm64": 1 },
      failed: { "linux-x64-large": 1 },
      "timed-out": { "linux-x64-large": 1 },
    });
    expect(report.active).toEqual({
      total: 2,
      limit: 30,
      byConfig: [
        { configName: "linux-arm64", active: 2, limit: 2 },
        { configName: "linux-x64-large", active: 0, limit: 10 },
      ],
    });
    expect(report.waiting.map((j) => j.jobId)).toEqual(["2", "3", "1"]);
    expect(report.recentFailures.map((j) => [j.jobId, j.summary])).toEqual([
      ["6", "new"],
      ["5", "old"],
    ]);
    const text = renderReport(report).join("\n");
    expect(text).toContain("linux-arm64              2/2  (at its limit)");
    expect(text).toMatch(/2 acme\/widgets \[linux-x64-large\]: queued for 15 min:/);
    expect(text).toMatch(
      /3 acme\/widgets \[linux-arm64\]: queued 8 min ago, launching for 10 s: a launcher is creating/,
    );
  });

  it("reads limits from `pulumi config --json` with the schema's defaults", () => {
    const limits = limitsFromConfig({
      "runner-fleet:labelConfigs": {
        value: "{}",
        objectValue: {
          small: { labels: ["small"], instanceTypes: ["m7i.large"], arch: "x64", spotPolicy: "spotOnly" },
        },
      },
      "runner-fleet:limits": { value: JSON.stringify({ maxRunnersTotal: 7 }) },
    });
    expect(limits).toMatchObject({
      maxRunnersTotal: 7,
      queueTimeoutMinutes: 60,
      configs: { small: { maxRunners: 10, spotPolicy: "spotOnly", spotFailuresBeforeOnDemand: 2 } },
    });
  });
});

describe("the gp3 price of a region", () => {
  it("comes from the table, or is us-east-1's flagged as an estimate", () => {
    expect(gp3PriceOf("us-east-1")).toEqual({ region: "us-east-1", usdPerGbMonth: 0.08, estimate: false });
    expect(gp3PriceOf("eu-central-1").usdPerGbMonth).toBe(0.0952);
    const unknown = gp3PriceOf("xx-moon-1");
    expect(unknown).toEqual({ region: "xx-moon-1", usdPerGbMonth: 0.08, estimate: true });
    expect(describePrice(unknown)).toBe(
      "$0.08/GB-month (estimate: xx-moon-1 is not in the price table, us-east-1's price stands in)",
    );
    expect(describePrice(gp3PriceOf("eu-central-1"))).toBe("$0.0952/GB-month in eu-central-1");
  });

  it("prices volumes a month to the cent", () => {
    expect(monthlyGp3Cost(2, 50, gp3PriceOf("us-east-1"))).toBe(8);
    expect(monthlyGp3Cost(3, 100, gp3PriceOf("eu-central-1"))).toBe(28.56);
    expect(monthlyGp3Cost(0, 100, gp3PriceOf("eu-west-1"))).toBe(0);
  });
});

describe("the stopped pools", () => {
  const CURRENT = "ami-0current000000000";
  const OLD = "ami-0old0000000000000";
  const large: LabelConfig = {
    ...linuxConfig,
    name: "linux-x64-large",
    pool: {
      size: 1,
      schedule: {
        timeZone: "Europe/Berlin",
        days: ["mon", "tue", "wed", "thu", "fri"],
        from: "08:00",
        to: "19:00",
        size: 3,
      },
    },
    diskSizeGb: 50,
  };
  const arm: LabelConfig = { ...linuxConfig, name: "linux-arm64", arch: "arm64", diskSizeGb: 30 };
  const member = (
    instanceId: string,
    state: PoolMember["state"],
    launchedSecondsAgo: number,
    amiId = CURRENT,
    config = large.name,
  ): PoolMember => ({
    config,
    instanceId,
    state,
    amiId,
    launchedAt: at(launchedSecondsAgo),
    updatedAt: at(0),
  });
  const instance = (instanceId: string, state: string, poolConfig?: string): RunnerInstance => ({
    instanceId,
    state,
    poolConfig,
    launchTime: new Date(NOW.getTime() - 7200_000),
  });
  const members = [
    member("i-0ready1", "ready", 7200),
    member("i-0warm", "warming", 180),
    member("i-0claimed", "claimed", 600),
    member("i-0ready2", "ready", 90_000, OLD),
    member("i-0gone", "ready", 3600),
    member("i-0arm", "ready", 3600, "ami-0arm", "linux-arm64"),
  ];
  const instances = [
    instance("i-0warm", "running", large.name),
    instance("i-0ready1", "stopped", large.name),
    instance("i-0ready2", "stopped", large.name),
    instance("i-0claimed", "running", large.name),
    instance("i-0stray", "stopped", large.name),
    instance("i-0arm", "stopped", "linux-arm64"),
    instance("i-0cold", "running"),
  ];
  const report = (now = NOW) =>
    poolsReport({
      configs: [large, arm, { ...linuxConfig, name: "no-pool" }],
      currentAmis: new Map([[large.name, CURRENT]]),
      members,
      instances,
      price: gp3PriceOf("us-east-1"),
      now,
    });

  it("wants the size the reconciler's refill asks (poolSizeAt), the schedule's while it is open", () => {
    const saturday = new Date("2026-03-07T10:00:00.000Z");
    const pool = (now: Date) => report(now).pools.find((p) => p.configName === large.name);
    expect(pool(NOW)!.wanted).toBe(poolSizeAt(large, NOW));
    expect(pool(NOW)).toMatchObject({ wanted: 3, schedule: { size: 3, open: true } });
    expect(pool(saturday)).toMatchObject({ wanted: 1, schedule: { open: false } });
    expect(poolSizeAt(large, saturday)).toBe(1);
  });

  it("lists each member with its instance's state, age, AMI and the reconciler's next step, and tagged instances without an item", () => {
    const { pools } = report();
    expect(pools.map((p) => p.configName)).toEqual(["linux-arm64", "linux-x64-large"]);
    const pool = pools[1]!;
    expect(pool.counts).toEqual({ warming: 1, ready: 3, claimed: 1, retiring: 0 });
    expect(pool.members.map((m) => [m.state, m.instanceId, m.ec2State, m.currentAmi, m.next])).toEqual([
      ["warming", "i-0warm", "running", true, undefined],
      [
        "ready",
        "i-0ready2",
        "stopped",
        false,
        { kind: "retire", reason: `built from ${OLD}, the config's AMI is now ${CURRENT}` },
      ],
      ["ready", "i-0ready1", "stopped", true, undefined],
      ["ready", "i-0gone", "gone", true, { kind: "forget", reason: "its instance is gone" }],
      ["claimed", "i-0claimed", "running", true, undefined],
    ]);
    expect(pool.untracked).toEqual([{ instanceId: "i-0stray", ec2State: "stopped", ageSeconds: 7200 }]);
    // A volume only for the ready members whose instance still exists.
    expect(pool.idleCost).toEqual({ readyMembers: 2, diskSizeGb: 50, usdPerMonth: 8 });
    // A config without a pool that still holds a member: shown until the reconciler empties it.
    expect(pools[0]).toMatchObject({ wanted: 0, counts: { ready: 1 }, idleCost: { usdPerMonth: 2.4 } });
    expect(pools[0]!.members[0]!.next).toEqual({ kind: "retire", reason: "beyond the pool's size of 0" });
  });

  it("says what the reconciler's plan does to a member of an older launch template version", () => {
    const pool = poolsReport({
      configs: [{ ...large, launchTemplateVersion: 2 }],
      currentAmis: new Map([[large.name, CURRENT]]),
      members: [{ ...member("i-0v1", "ready", 3600), templateVersion: 1 }],
      instances: [instance("i-0v1", "stopped", large.name)],
      price: gp3PriceOf("us-east-1"),
      now: NOW,
    }).pools[0]!;
    expect(pool.members[0]!.next).toEqual({
      kind: "retire",
      reason: "launched from launch template version 1, the config's is now 2",
    });
  });

  it("renders each pool with its members and the idle cost line", () => {
    const text = renderPools(report()).join("\n");
    expect(text).toContain(
      "stopped pools (idle cost: ready members' gp3 volumes at $0.08/GB-month in us-east-1):",
    );
    expect(text).toContain(
      "  linux-x64-large: wants 3 now (size 1; 3 on mon,tue,wed,thu,fri 08:00–19:00 Europe/Berlin (open now)); 1 warming, 3 ready, 1 claimed",
    );
    expect(text).toMatch(/^ {4}warming +i-0warm +running +3 min +ami-0current0+ \(current\)$/m);
    expect(text).toMatch(
      /^ {4}ready +i-0ready2 +stopped +25 h +ami-0old0+ \(not the current ami-0current0+\); next: retire \(built from ami-0old0+, the config's AMI is now ami-0current0+\)$/m,
    );
    expect(text).toMatch(
      /^ {4}ready +i-0gone +gone +1 h +ami-0current0+ \(current\); next: forget \(its instance is gone\)$/m,
    );
    expect(text).toMatch(
      /^ {4}no item +i-0stray +stopped +2 h +tagged as a member, but the pool table has no item for it$/m,
    );
    expect(text).toContain("    idle cost: 2 ready × 50 GiB × $0.08 = $8.00/month");
    expect(text).toContain("    idle cost: 1 ready × 30 GiB × $0.08 = $2.40/month");
    expect(
      renderPools(
        poolsReport({
          configs: [],
          currentAmis: new Map(),
          members: [],
          instances: [],
          price: gp3PriceOf("us-east-1"),
          now: NOW,
        }),
      ),
    ).toEqual([]);
  });
});

describe("npm run status against a seeded ledger", () => {
  let sandbox: Sandbox;
  let restoreEnv: () => void;
  let sources: StatusSources;
  const now = new Date();
  const CURRENT_AMI = "ami-0current000000000";
  const ago = (s: number) => new Date(now.getTime() - s * 1000).toISOString();

  beforeAll(async () => {
    sandbox = await startSandbox();
    const tables = await sandbox.createTables("status-test");
    restoreEnv = sandbox.useEnv({ POOL_TABLE: tables.pool });
    const { active: _, ...limits } = LIMITS;
    const pools = {
      table: tables.pool,
      stackName: STACK,
      region: sandbox.region,
      labelConfigPath: LABEL_PATH,
    };
    sources = { jobsTable: tables.jobs, handoffTable: tables.handoff, limits, pools, notes: [] };
    // The label config as the program publishes it, its AMI the image pipeline's parameter.
    const large = { ...linuxConfig, name: "linux-x64-large", pool: { size: 3 }, diskSizeGb: 50 };
    sandbox.ssm.put(
      `${LABEL_PATH}/${large.name}`,
      JSON.stringify({ ...large, image: { parameter: AMI_PARAMS.x64 } }),
    );
    sandbox.ssm.put(AMI_PARAMS.x64, CURRENT_AMI);
    await seedPool(
      sandbox,
      "linux-x64-large",
      [
        { state: "warming", launchedSecondsAgo: 180, amiId: CURRENT_AMI },
        { state: "ready", launchedSecondsAgo: 7200, amiId: CURRENT_AMI },
        { state: "ready", launchedSecondsAgo: 90_000, amiId: "ami-0older00000000000" },
        { state: "claimed", launchedSecondsAgo: 600, amiId: CURRENT_AMI },
      ],
      now,
    );
    const seeded: Partial<JobRecord>[] = [
      { jobId: "101", queuedAt: ago(600), attempts: 2, spotFailures: 2, reason: "no spot capacity" },
      { jobId: "102", state: "launched", instanceId: "i-0launched", market: "spot", launchedAt: ago(40) },
      {
        jobId: "103",
        state: "running",
        configName: "linux-arm64",
        instanceId: "i-0running",
        startedAt: ago(120),
      },
      {
        jobId: "104",
        state: "timed-out",
        reason: "no capacity within the queue timeout",
        completedAt: ago(30),
      },
      { jobId: "105", state: "completed", conclusion: "success", completedAt: ago(3000) },
    ];
    for (const s of seeded) {
      expect(
        await createJob({ ...job(s), createdAt: ago(700), updatedAt: ago(20), expiresAt: 0 }, tables.jobs),
      ).toBe(true);
    }
    // The hand-off item of the launched instance: the instance took its config 10 s ago.
    await sandbox.dynamodb.client.send(
      new PutItemCommand({
        TableName: tables.handoff,
        Item: marshall({
          handoffKey: "AROARUNNER:i-0launched",
          instanceId: "i-0launched",
          jobId: "102",
          jitConfig: "c2VjcmV0LWppdC1jb25maWc=",
          createdAt: ago(40),
          fetchedAt: ago(10),
        }),
      }),
    );
  });
  afterAll(async () => {
    restoreEnv?.();
    await sandbox?.close();
  });

  const run = async (options: Parameters<typeof runStatus>[0]) => {
    const lines: string[] = [];
    await runStatus({ now, ...options }, sources, (l) => lines.push(l));
    return lines;
  };

  it("summarises the ledger", async () => {
    const text = (await run({})).join("\n");
    expect(text).toMatch(/queued {7}1 {2}\(linux-x64-large 1\)/);
    expect(text).toMatch(/timed-out {4}1 {2}\(linux-x64-large 1\)/);
    expect(text).toContain("active runners: 2/30");
    expect(text).toMatch(
      /101 acme\/widgets \[linux-x64-large\]: queued for 10 min: last: no spot capacity; 2 launch attempts; 2 spot failures; next: on-demand/,
    );
    expect(text).toMatch(
      /104 acme\/widgets \[linux-x64-large\] timed-out 30 s ago: no capacity within the queue timeout/,
    );
  });

  it("explains one job with its instance's hand-off report, never the JIT config", async () => {
    const lines = await run({ job: "102" });
    expect(lines[1]).toBe(
      "launched on i-0launched (spot) 40 s ago, took its JIT config 10 s ago, runner not started yet",
    );
    const json = JSON.parse((await run({ job: "102", json: true }))[0]!);
    expect(json).toMatchObject({ found: true, handoff: { instanceId: "i-0launched", fetchedAt: ago(10) } });
    expect(JSON.stringify(json)).not.toContain("c2VjcmV0LWppdC1jb25maWc=");
  });

  it("says so when a job is not in the ledger, and when hand-off reports cannot be read", async () => {
    expect((await run({ job: "999" }))[0]).toMatch(/^job 999 is not in the ledger: GitHub never sent it/);
    const saved = sources.handoffTable;
    sources.handoffTable = "no-such-table";
    try {
      const lines = await run({ job: "102" });
      expect(lines[1]).toMatch(/runner progress unknown \(hand-off reports not read\)$/);
      expect(lines.at(-1)).toMatch(/^note: hand-off reports not readable: ResourceNotFoundException/);
    } finally {
      sources.handoffTable = saved;
    }
  });

  it("shows each pool: what it wants, its members by state with their instances, and the idle cost", async () => {
    const text = (await run({})).join("\n");
    expect(text).toContain(
      "stopped pools (idle cost: ready members' gp3 volumes at $0.08/GB-month in us-east-1):\n" +
        "  linux-x64-large: wants 3 now (size 3); 1 warming, 2 ready, 1 claimed",
    );
    expect(text).toMatch(/^ {4}warming +i-0\w+ +running +3 min +ami-0current0+ \(current\)$/m);
    expect(text).toMatch(/^ {4}ready +i-0\w+ +stopped +2 h +ami-0current0+ \(current\)$/m);
    expect(text).toMatch(
      /^ {4}ready +i-0\w+ +stopped +25 h +ami-0older0+ \(not the current ami-0current0+\); next: retire \(built from ami-0older0+, the config's AMI is now ami-0current0+\)$/m,
    );
    expect(text).toMatch(/^ {4}claimed +i-0\w+ +running +10 min +ami-0current0+ \(current\)$/m);
    expect(text).toContain("    idle cost: 2 ready × 50 GiB × $0.08 = $8.00/month");
  });

  it("prints one JSON object with --json", async () => {
    const lines = await run({ json: true });
    expect(lines).toHaveLength(1);
    const report = JSON.parse(lines[0]!);
    expect(report.counts).toMatchObject({
      queued: { "linux-x64-large": 1 },
      completed: { "linux-x64-large": 1 },
    });
    expect(report.waiting.map((j: { jobId: string }) => j.jobId)).toEqual(["101"]);
    expect(report.pools.price).toEqual({ region: "us-east-1", usdPerGbMonth: 0.08, estimate: false });
    expect(report.pools.pools).toEqual([
      expect.objectContaining({
        configName: "linux-x64-large",
        wanted: 3,
        currentAmi: CURRENT_AMI,
        counts: { warming: 1, ready: 2, claimed: 1, retiring: 0 },
        untracked: [],
        idleCost: { readyMembers: 2, diskSizeGb: 50, usdPerMonth: 8 },
      }),
    ]);
    expect(
      report.pools.pools[0].members.map((m: { state: string; ec2State: string }) => [m.state, m.ec2State]),
    ).toEqual([
      ["warming", "running"],
      ["ready", "stopped"],
      ["ready", "stopped"],
      ["claimed", "running"],
    ]);
  });
});
