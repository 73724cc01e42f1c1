/**
 * The pool tending's pure plan (core/pool-plan.ts): refill within room, warm-up → stop → ready, the
 * warming timeout, rotation by AMI, age and size, forgetting members that are gone; properties over
 * any fleet (never beyond room, never a claimed member retired); and the instance rules' side of the
 * pools (core/reconcile-instances.ts): members with an item are not reaped, members without one are.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { MemberState, PoolMember } from "../lambda/adapters/pool-members";
import { type PoolAction, type PoolPlanInput, planPools } from "../lambda/core/pool-plan";
import type { PoolMemberItem, StackInstance } from "../lambda/core/reconcile-model";
import { planReconcile, reconcilePolicy } from "../lambda/core/reconcile-plan";
import type { JobRecord } from "../lambda/shared/job";
import type { LabelConfig } from "../lambda/shared/label-config";
import { loadSettings } from "../lambda/shared/settings";

const NOW = new Date("2026-12-02T10:00:00Z");
const MIN = 60_000;
const ago = (ms: number) => new Date(NOW.getTime() - ms).toISOString();

const config = (over: Partial<LabelConfig> = {}): LabelConfig => ({
  name: "linux",
  labels: ["self-hosted", "linux"],
  arch: "x64",
  instanceTypes: ["m7i.large"],
  launchTemplateId: "lt-0linux",
  spotPolicy: "spotPreferred",
  spotFailuresBeforeOnDemand: 1,
  allocationStrategy: "capacity-optimized",
  maxRunners: 10,
  retryOnInterruption: true,
  runnerGroupId: 1,
  image: { parameter: "/ami/x64" },
  pool: { size: 2 },
  ...over,
});

let ids = 0;
const member = (state: MemberState, over: Partial<PoolMember> = {}): PoolMember => ({
  config: "linux",
  instanceId: `i-0${String(++ids).padStart(16, "0")}`,
  state,
  amiId: "ami-0current",
  launchedAt: ago(10 * MIN),
  updatedAt: ago(MIN),
  ...over,
});

/** The member's instance in the state its item implies (ready: stopped, warming: running). */
const instanceOf = (m: PoolMember, over: { state?: string; imageId?: string } = {}) => ({
  instanceId: m.instanceId,
  state: over.state ?? (m.state === "ready" ? "stopped" : "running"),
  imageId: over.imageId,
});

function plan(over: Partial<PoolPlanInput> & { members?: PoolMember[] }): PoolAction[] {
  const members = over.members ?? [];
  return planPools({
    now: NOW,
    configs: [config()],
    instances: members.map((m) => instanceOf(m)),
    activeJobs: new Map(),
    maxRunnersTotal: 100,
    currentAmis: new Map([["linux", "ami-0current"]]),
    warmedAt: new Map(),
    ...over,
    members,
  });
}

const summary = (actions: PoolAction[]) =>
  actions.map((a) =>
    a.kind === "launch" ? `launch ${a.config} ×${a.count}` : `${a.kind} ${a.member.instanceId}`,
  );

describe("refill", () => {
  it("launches the pool's size from empty, in one launch", () => {
    expect(summary(plan({}))).toEqual(["launch linux ×2"]);
  });

  it("counts warming and ready members, not claimed or retiring ones", () => {
    const members = [member("warming"), member("claimed"), member("retiring")];
    const actions = plan({ members });
    expect(actions.filter((a) => a.kind === "launch")).toMatchObject([{ count: 1 }]);
  });

  it("stays within maxRunners less the config's active jobs and warming members", () => {
    const limited = config({ maxRunners: 3, pool: { size: 3 } });
    expect(plan({ configs: [limited], activeJobs: new Map([["linux", 2]]) })).toMatchObject([
      { kind: "launch", count: 1, reason: "pool holds 0 of 3 (room for 1)" },
    ]);
    const warming = member("warming");
    const full = plan({ configs: [limited], members: [warming], activeJobs: new Map([["linux", 2]]) });
    expect(full).toEqual([]);
    // A stopped (ready) member counts for nothing against the limit.
    const ready = member("ready");
    expect(plan({ configs: [limited], members: [ready], activeJobs: new Map([["linux", 2]]) })).toMatchObject(
      [{ kind: "launch", count: 1 }],
    );
  });

  it("shares maxRunnersTotal between configs, in config order", () => {
    const configs = [config({ name: "a", pool: { size: 3 } }), config({ name: "b", pool: { size: 3 } })];
    const actions = plan({ configs, maxRunnersTotal: 5, activeJobs: new Map([["b", 1]]) });
    expect(summary(actions)).toEqual(["launch a ×3", "launch b ×1"]);
  });

  it("launches nothing while the active jobs are unread", () => {
    expect(plan({ activeJobs: undefined })).toEqual([]);
  });
});

describe("warm-up", () => {
  it("stops a running member that reported its warm-up, marks a stopped one ready", () => {
    const warmed = member("warming");
    const stopped = member("warming");
    const booting = member("warming");
    const actions = plan({
      members: [warmed, stopped, booting],
      instances: [instanceOf(warmed), instanceOf(stopped, { state: "stopped" }), instanceOf(booting)],
      warmedAt: new Map([[warmed.instanceId, ago(MIN)]]),
      configs: [config({ pool: { size: 3 } })],
    });
    expect(summary(actions)).toEqual([`stop ${warmed.instanceId}`, `mark-ready ${stopped.instanceId}`]);
  });

  it("retires a member warming over 20 minutes, and launches its replacement", () => {
    const stuck = member("warming", { launchedAt: ago(21 * MIN) });
    const ok = member("warming", { launchedAt: ago(19 * MIN) });
    const actions = plan({ members: [stuck, ok] });
    expect(summary(actions)).toEqual([`retire ${stuck.instanceId}`, "launch linux ×1"]);
    expect(actions[0]!.reason).toMatch(/warming for 21 min, over the 20 min limit/);
  });
});

describe("rotation", () => {
  it("retires ready members of another AMI (the instance's own image wins over the item's)", () => {
    const old = member("ready", { amiId: "ami-0old" });
    const recorded = member("ready", { amiId: "ami-0old" });
    const actions = plan({
      members: [old, recorded],
      instances: [instanceOf(old), instanceOf(recorded, { imageId: "ami-0current" })],
    });
    expect(summary(actions)).toEqual([`retire ${old.instanceId}`, "launch linux ×1"]);
    expect(actions[0]!.reason).toBe("built from ami-0old, the config's AMI is now ami-0current");
  });

  it("leaves the AMI alone when the current one is unknown", () => {
    const old = member("ready", { amiId: "ami-0old" });
    expect(
      plan({ members: [old], currentAmis: new Map(), configs: [config({ pool: { size: 1 } })] }),
    ).toEqual([]);
  });

  it("retires ready members launched from an older launch template version (a pulumi up changed it)", () => {
    const before = member("ready", { templateVersion: 3 });
    const after = member("ready", { templateVersion: 4 });
    const actions = plan({ members: [before, after], configs: [config({ launchTemplateVersion: 4 })] });
    expect(summary(actions)).toEqual([`retire ${before.instanceId}`, "launch linux ×1"]);
    expect(actions[0]!.reason).toBe("launched from launch template version 3, the config's is now 4");
    // A member or config that does not say (items and configs written before versions were): kept.
    expect(
      plan({ members: [member("ready"), after], configs: [config({ launchTemplateVersion: 4 })] }),
    ).toEqual([]);
  });

  it("retires a ready member launched more than 7 days ago", () => {
    const stale = member("ready", { launchedAt: ago(7 * 24 * 60 * MIN + MIN) });
    const fresh = member("ready", { launchedAt: ago(6 * 24 * 60 * MIN) });
    expect(summary(plan({ members: [stale, fresh] }))).toEqual([
      `retire ${stale.instanceId}`,
      "launch linux ×1",
    ]);
  });

  it("retires the surplus beyond the size: warming first, then the oldest ready", () => {
    const warming = member("warming", { launchedAt: ago(MIN) });
    const oldest = member("ready", { launchedAt: ago(3 * 60 * MIN) });
    const newest = member("ready", { launchedAt: ago(60 * MIN) });
    const actions = plan({ members: [newest, warming, oldest], configs: [config({ pool: { size: 1 } })] });
    expect(summary(actions)).toEqual([`retire ${warming.instanceId}`, `retire ${oldest.instanceId}`]);
    expect(actions[0]!.reason).toBe("beyond the pool's size of 1");
  });

  it("empties the pool at size 0, when the schedule's window closes, or when the config is gone", () => {
    const members = () => [member("ready"), member("warming")];
    const retired = (actions: PoolAction[]) => actions.filter((a) => a.kind === "retire").length;
    expect(retired(plan({ members: members(), configs: [config({ pool: { size: 0 } })] }))).toBe(2);
    const schedule = { timeZone: "UTC", days: ["wed" as const], from: "08:00", to: "09:00", size: 2 };
    expect(retired(plan({ members: members(), configs: [config({ pool: { size: 0, schedule } })] }))).toBe(2);
    expect(retired(plan({ members: members(), configs: [] }))).toBe(2);
  });

  it("terminates a member left retiring", () => {
    const left = member("retiring");
    expect(summary(plan({ members: [left], configs: [config({ pool: { size: 0 } })] }))).toEqual([
      `terminate ${left.instanceId}`,
    ]);
  });
});

describe("members that are gone", () => {
  it("forgets any member whose instance is terminated or shutting down, claimed ones included", () => {
    const claimed = member("claimed");
    const ready = member("ready");
    const actions = plan({
      members: [claimed, ready],
      instances: [
        instanceOf(claimed, { state: "terminated" }),
        instanceOf(ready, { state: "shutting-down" }),
      ],
      configs: [config({ pool: { size: 0 } })],
    });
    expect(summary(actions)).toEqual([`forget ${claimed.instanceId}`, `forget ${ready.instanceId}`]);
  });

  it("waits for a just-launched member EC2 does not list yet; forgets an unlisted older one", () => {
    const young = member("warming", { launchedAt: ago(MIN) });
    const lost = member("warming", { launchedAt: ago(6 * MIN) });
    const actions = plan({ members: [young, lost], instances: [] });
    expect(summary(actions)).toEqual([`forget ${lost.instanceId}`, "launch linux ×1"]);
  });
});

describe("properties", () => {
  const STATES: MemberState[] = ["warming", "ready", "claimed", "retiring"];
  const INSTANCE_STATES = [
    "pending",
    "running",
    "stopping",
    "stopped",
    "shutting-down",
    "terminated",
    "unlisted",
  ];
  const arbitraryConfig = fc
    .record({ name: fc.constantFrom("a", "b", "c"), maxRunners: fc.nat(6), size: fc.nat(6) })
    .map(({ name, maxRunners, size }) =>
      config({ name, maxRunners, pool: { size: Math.min(size, maxRunners) } }),
    );
  const arbitraryMember = fc.record({
    config: fc.constantFrom("a", "b", "c", "gone"),
    state: fc.constantFrom(...STATES),
    instanceState: fc.constantFrom(...INSTANCE_STATES),
    // Mostly young (warming members within their timeout), some past the 7-day window.
    ageMinutes: fc.oneof(fc.nat(30), fc.nat(12 * 24 * 60)),
    ami: fc.constantFrom("ami-0current", "ami-0old"),
    warmed: fc.boolean(),
  });
  const arbitraryInput = fc
    .record({
      configs: fc.uniqueArray(arbitraryConfig, { selector: (c) => c.name, maxLength: 3 }),
      members: fc.array(arbitraryMember, { maxLength: 12 }),
      active: fc.record({ a: fc.nat(6), b: fc.nat(6), c: fc.nat(6) }),
      maxRunnersTotal: fc.nat(15),
    })
    .map(({ configs, members, active, maxRunnersTotal }): PoolPlanInput => {
      const items = members.map((m, n) =>
        member(m.state, {
          config: m.config,
          instanceId: `i-0${String(n).padStart(16, "0")}`,
          launchedAt: ago(m.ageMinutes * MIN),
          amiId: m.ami,
        }),
      );
      return {
        now: NOW,
        configs,
        members: items,
        instances: items.flatMap((item, n) =>
          members[n]!.instanceState === "unlisted"
            ? []
            : [{ instanceId: item.instanceId, state: members[n]!.instanceState }],
        ),
        activeJobs: new Map(Object.entries(active)),
        maxRunnersTotal,
        currentAmis: new Map(configs.map((c) => [c.name, "ami-0current"])),
        warmedAt: new Map(
          items.flatMap((item, n) => (members[n]!.warmed ? [[item.instanceId, ago(MIN)]] : [])),
        ),
      };
    });

  /** Warming members each config keeps after the plan (the room rule counts them). */
  function warmingKept(input: PoolPlanInput, actions: PoolAction[], configName?: string) {
    const leaving = new Set(
      actions.flatMap((a) => (a.kind === "retire" || a.kind === "forget" ? [a.member.instanceId] : [])),
    );
    return input.members.filter(
      (m) => m.state === "warming" && !leaving.has(m.instanceId) && (!configName || m.config === configName),
    ).length;
  }

  it("never launches beyond a config's room nor the total's", () => {
    fc.assert(
      fc.property(arbitraryInput, (input) => {
        const actions = planPools(input);
        const launched = (name?: string) =>
          actions
            .filter((a) => a.kind === "launch" && (!name || a.config === name))
            .reduce((n, a) => n + (a.kind === "launch" ? a.count : 0), 0);
        for (const c of input.configs) {
          if (launched(c.name) === 0) continue;
          const busy = (input.activeJobs?.get(c.name) ?? 0) + warmingKept(input, actions, c.name);
          expect(busy + launched(c.name)).toBeLessThanOrEqual(c.maxRunners);
        }
        if (launched() > 0) {
          const active = [...(input.activeJobs?.values() ?? [])].reduce((a, b) => a + b, 0);
          expect(active + warmingKept(input, actions) + launched()).toBeLessThanOrEqual(
            input.maxRunnersTotal,
          );
        }
      }),
    );
  });

  it("never retires, terminates or stops a claimed member, and forgets it only once its instance is gone", () => {
    fc.assert(
      fc.property(arbitraryInput, (input) => {
        const instances = new Map(input.instances.map((i) => [i.instanceId, i.state]));
        for (const action of planPools(input)) {
          if (action.kind === "launch" || action.member.state !== "claimed") continue;
          expect(action.kind).toBe("forget");
          expect([undefined, "terminated", "shutting-down"]).toContain(
            instances.get(action.member.instanceId),
          );
        }
      }),
    );
  });

  it("never plans a pool above its size", () => {
    fc.assert(
      fc.property(arbitraryInput, (input) => {
        const actions = planPools(input);
        const leaving = new Set(
          actions.flatMap((a) =>
            a.kind === "launch" || a.kind === "stop" || a.kind === "mark-ready" ? [] : [a.member.instanceId],
          ),
        );
        for (const c of input.configs) {
          const kept = input.members.filter(
            (m) =>
              m.config === c.name &&
              (m.state === "warming" || m.state === "ready") &&
              !leaving.has(m.instanceId),
          ).length;
          const launched = actions.find((a) => a.kind === "launch" && a.config === c.name);
          expect(kept + (launched?.kind === "launch" ? launched.count : 0)).toBeLessThanOrEqual(c.pool!.size);
        }
      }),
    );
  });
});

describe("the instance rules and pool members", () => {
  // The settings' defaults: a 5-minute orphan grace.
  const policy = reconcilePolicy(loadSettings({}), "dev");
  const instance = (id: string, state: string, launchedMsAgo: number, pooled = true): StackInstance => ({
    instanceId: id,
    state,
    launchTime: ago(launchedMsAgo),
    configName: "linux",
    poolConfig: pooled ? "linux" : undefined,
  });
  const item = (instanceId: string, state: MemberState, claimedMsAgo?: number): PoolMemberItem => ({
    instanceId,
    state,
    claimedAt: claimedMsAgo === undefined ? undefined : ago(claimedMsAgo),
  });
  const terminated = (
    instances: StackInstance[],
    poolMembers: PoolMemberItem[] | undefined,
    jobs: JobRecord[] = [],
  ) =>
    planReconcile({ jobs, instances, handoffs: [], poolMembers, policy, now: NOW })
      .actions.filter((a) => a.kind === "terminate")
      .map((a) => a.instanceId);

  it("leaves a member with a warming, ready or retiring item alone, stopped or running, however old", () => {
    const instances = [
      instance("i-0000000000000001", "running", 15 * MIN),
      instance("i-0000000000000002", "stopped", 3 * 24 * 60 * MIN),
      instance("i-0000000000000003", "stopped", 60 * MIN),
    ];
    const items = [
      item("i-0000000000000001", "warming"),
      item("i-0000000000000002", "ready"),
      item("i-0000000000000003", "retiring"),
    ];
    expect(terminated(instances, items)).toEqual([]);
  });

  it("reaps a pool-tagged instance with no item after the orphan grace, stopped too; not before", () => {
    const instances = [
      instance("i-0000000000000001", "stopped", 6 * MIN),
      instance("i-0000000000000002", "running", 6 * MIN),
      instance("i-0000000000000003", "running", 4 * MIN),
    ];
    expect(terminated(instances, [])).toEqual(["i-0000000000000001", "i-0000000000000002"]);
  });

  it("gives a claimed member the grace to start and register, then the ordinary rules", () => {
    const stopped = [instance("i-0000000000000001", "stopped", 3 * 24 * 60 * MIN)];
    expect(terminated(stopped, [item("i-0000000000000001", "claimed", MIN)])).toEqual([]);
    expect(terminated(stopped, [item("i-0000000000000001", "claimed", 6 * MIN)])).toEqual([
      "i-0000000000000001",
    ]);
  });

  it("touches no pool-tagged instance without a job while the pool table is unread", () => {
    const instances = [
      instance("i-0000000000000001", "stopped", 60 * MIN),
      instance("i-0000000000000002", "stopped", 60 * MIN, false),
    ];
    expect(terminated(instances, undefined)).toEqual(["i-0000000000000002"]);
  });

  it("keeps a stopped member's hand-off (its launcher writes it before EC2 shows the start)", () => {
    const actions = planReconcile({
      jobs: [],
      instances: [
        instance("i-0000000000000001", "stopped", 60 * MIN),
        instance("i-0000000000000002", "stopped", 60 * MIN, false),
      ],
      handoffs: [
        { instanceId: "i-0000000000000001", createdAt: ago(MIN) },
        { instanceId: "i-0000000000000002", createdAt: ago(MIN) },
      ],
      poolMembers: [item("i-0000000000000001", "claimed", MIN)],
      policy,
      now: NOW,
    }).actions;
    expect(actions.filter((a) => a.kind === "delete-handoff").map((a) => a.instanceId)).toEqual([
      "i-0000000000000002",
    ]);
  });
});
