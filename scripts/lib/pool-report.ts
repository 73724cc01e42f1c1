/**
 * The stopped pools as `npm run status` shows them and `npm run doctor` judges them, pure: per config
 * with a pool, the size it wants now (core/pool-size.ts), its members by state with their instances'
 * EC2 state, age and AMI, what the reconciler does next to each (asked of its own plan,
 * core/pool-plan.ts: rotation, retirement, forgetting), instances tagged as members that have no
 * member item, and what the ready members' volumes cost a month (./ebs-price.ts).
 */
import type { RunnerInstance } from "../../lambda/adapters/ec2";
import type { MemberState, PoolMember } from "../../lambda/adapters/pool-members";
import { type PoolActionKind, planPools } from "../../lambda/core/pool-plan";
import { poolSizeAt, scheduleOpen } from "../../lambda/core/pool-size";
import { LIVE_INSTANCE_STATES } from "../../lambda/core/stack-identity";
import type { LabelConfig, PoolSchedule } from "../../lambda/shared/label-config";
import { describePrice, formatUsd, type Gp3Price, monthlyGp3Cost } from "./ebs-price";
import { formatDuration, secondsSince } from "./explain";

export interface PoolInputs {
  /** The published label configs, as the reconciler reads them. */
  configs: LabelConfig[];
  /** Each config's current AMI (its amiId, or the image pipeline's parameter); absent: unknown. */
  currentAmis: ReadonlyMap<string, string>;
  members: PoolMember[];
  /** The stack's instances (members and others). */
  instances: RunnerInstance[];
  price: Gp3Price;
  now: Date;
}

export interface PoolMemberLine {
  instanceId: string;
  state: MemberState;
  /** The instance's EC2 state; `gone` when EC2 no longer lists it. */
  ec2State: string;
  /** Since its launch. */
  ageSeconds: number;
  amiId?: string;
  /** Built from the config's current AMI; undefined when either is unknown. */
  currentAmi?: boolean;
  /** What the reconciler's next run does to it (its plan's action and reason), if anything. */
  next?: { kind: PoolActionKind; reason: string };
}

/** An instance tagged as a member of the pool that has no member item. */
export interface UntrackedInstance {
  instanceId: string;
  ec2State: string;
  ageSeconds: number;
}

export interface PoolReport {
  configName: string;
  /** The size the reconciler fills the pool to now. */
  wanted: number;
  size: number;
  schedule?: PoolSchedule & { open: boolean };
  /** The AMI the config launches now; undefined: unknown. */
  currentAmi?: string;
  counts: Record<MemberState, number>;
  members: PoolMemberLine[];
  untracked: UntrackedInstance[];
  /** Ready members' volumes (of instances that exist) a month; undefined when the disk size is unknown. */
  idleCost?: { readyMembers: number; diskSizeGb: number; usdPerMonth: number };
}

export interface PoolsReport {
  price: Gp3Price;
  pools: PoolReport[];
}

export const MEMBER_STATES: MemberState[] = ["warming", "ready", "claimed", "retiring"];
/** A tagged instance without an item that is still there (not already terminating). */
const HOLDING_STATES = new Set(LIVE_INSTANCE_STATES.filter((s) => s !== "shutting-down"));

const ageOf = (iso: string | Date | undefined, now: Date) =>
  Math.round(secondsSince(iso instanceof Date ? iso.toISOString() : iso, now) ?? 0);

/** What the reconciler's next run does to each member (no launches: they need the active jobs). */
function nextActions(inputs: PoolInputs): Map<string, PoolMemberLine["next"]> {
  const plan = planPools({
    now: inputs.now,
    configs: inputs.configs,
    members: inputs.members,
    instances: inputs.instances.map((i) => ({
      instanceId: i.instanceId,
      state: i.state ?? "unknown",
      imageId: i.imageId,
    })),
    maxRunnersTotal: 0,
    currentAmis: inputs.currentAmis,
    // Warm-up reports are not read: a member about to be stopped shows no next step.
    warmedAt: new Map(),
  });
  return new Map(
    plan.flatMap((a) =>
      a.kind === "launch" ? [] : [[a.member.instanceId, { kind: a.kind, reason: a.reason }]],
    ),
  );
}

/** Every config with a pool, and any other that still has members or tagged instances. */
export function poolsReport(inputs: PoolInputs): PoolsReport {
  const configs = new Map(inputs.configs.map((c) => [c.name, c]));
  const next = nextActions(inputs);
  const names = new Set([
    ...inputs.configs.filter((c) => c.pool).map((c) => c.name),
    ...inputs.members.map((m) => m.config),
    ...inputs.instances.flatMap((i) => (i.poolConfig ? [i.poolConfig] : [])),
  ]);
  const pools = [...names]
    .sort()
    .map((name) => poolReport(name, configs.get(name), inputs, next))
    .filter((p) => p.wanted > 0 || p.size > 0 || p.schedule || p.members.length || p.untracked.length);
  return { price: inputs.price, pools };
}

/** One config's pool (`config` undefined: no longer published, its members are retired). */
function poolReport(
  name: string,
  config: LabelConfig | undefined,
  inputs: PoolInputs,
  next: Map<string, PoolMemberLine["next"]>,
): PoolReport {
  const { now } = inputs;
  const currentAmi = inputs.currentAmis.get(name);
  const byId = new Map(inputs.instances.map((i) => [i.instanceId, i]));
  const members = inputs.members
    .filter((m) => m.config === name)
    .map((m) => ({
      ...memberLine(m, byId.get(m.instanceId), currentAmi, now),
      next: next.get(m.instanceId),
    }))
    .sort(
      (a, b) =>
        MEMBER_STATES.indexOf(a.state) - MEMBER_STATES.indexOf(b.state) || b.ageSeconds - a.ageSeconds,
    );
  const counts = Object.fromEntries(
    MEMBER_STATES.map((s) => [s, members.filter((m) => m.state === s).length]),
  ) as Record<MemberState, number>;
  const schedule = config?.pool?.schedule;
  return {
    configName: name,
    wanted: config ? poolSizeAt(config, now) : 0,
    size: config?.pool?.size ?? 0,
    schedule: schedule && { ...schedule, open: scheduleOpen(schedule, now) },
    currentAmi,
    counts,
    members,
    untracked: untrackedOf(name, members, inputs),
    idleCost: idleCostOf(members, config?.diskSizeGb, inputs.price),
  };
}

/** The config's tagged instances that no member item names. */
function untrackedOf(config: string, members: PoolMemberLine[], inputs: PoolInputs): UntrackedInstance[] {
  const itemIds = new Set(members.map((m) => m.instanceId));
  return inputs.instances
    .filter((i) => i.poolConfig === config && !itemIds.has(i.instanceId) && HOLDING_STATES.has(i.state ?? ""))
    .map((i) => ({
      instanceId: i.instanceId,
      ec2State: i.state ?? "unknown",
      ageSeconds: ageOf(i.launchTime, inputs.now),
    }));
}

function idleCostOf(
  members: PoolMemberLine[],
  diskSizeGb: number | undefined,
  price: Gp3Price,
): PoolReport["idleCost"] {
  if (diskSizeGb === undefined) return undefined;
  // A ready member whose instance is gone holds no volume (the reconciler deletes its item).
  const volumes = members.filter((m) => m.state === "ready" && m.ec2State !== "gone").length;
  return { readyMembers: volumes, diskSizeGb, usdPerMonth: monthlyGp3Cost(volumes, diskSizeGb, price) };
}

function memberLine(
  member: PoolMember,
  instance: RunnerInstance | undefined,
  currentAmi: string | undefined,
  now: Date,
): PoolMemberLine {
  // The instance's own image is the truth (as for rotation); the item's is what the config said at launch.
  const amiId = instance?.imageId ?? member.amiId;
  return {
    instanceId: member.instanceId,
    state: member.state,
    ec2State: instance?.state ?? "gone",
    ageSeconds: ageOf(member.launchedAt, now),
    amiId,
    currentAmi: amiId && currentAmi ? amiId === currentAmi : undefined,
  };
}

/** `size 1; 3 on mon–fri 08:00–19:00 Europe/Berlin (open now)`. */
function describeSize(pool: PoolReport): string {
  const { schedule } = pool;
  if (!schedule) return `size ${pool.size}`;
  const window = `${schedule.days.join(",")} ${schedule.from}–${schedule.to} ${schedule.timeZone}`;
  return `size ${pool.size}; ${schedule.size} on ${window} (${schedule.open ? "open" : "closed"} now)`;
}

function describeAmi(member: PoolMemberLine, currentAmi: string | undefined): string {
  const ami = member.amiId ?? "AMI unknown";
  if (member.currentAmi === undefined) return ami;
  return member.currentAmi ? `${ami} (current)` : `${ami} (not the current ${currentAmi})`;
}

/** A member's line: state, instance, EC2 state, age, AMI, and what the reconciler does next. */
function memberRow(m: PoolMemberLine, currentAmi: string | undefined): string {
  const next = m.next ? `; next: ${m.next.kind} (${m.next.reason})` : "";
  const age = formatDuration(m.ageSeconds).padEnd(9);
  return `    ${m.state.padEnd(9)} ${m.instanceId}  ${m.ec2State.padEnd(8)} ${age} ${describeAmi(m, currentAmi)}${next}`;
}

/** The idle cost line: `2 ready × 50 GiB × $0.08 = $8.00/month`. */
export function describeIdleCost(pool: PoolReport, price: Gp3Price): string {
  const cost = pool.idleCost;
  if (!cost) return "unknown (the config's disk size is not published)";
  const per = formatUsd(price.usdPerGbMonth);
  return `${cost.readyMembers} ready × ${cost.diskSizeGb} GiB × ${per} = ${formatUsd(cost.usdPerMonth)}/month`;
}

/** One pool's head line: what it wants and what it holds. */
export function describePool(pool: PoolReport): string {
  const held = MEMBER_STATES.filter((s) => pool.counts[s] > 0).map((s) => `${pool.counts[s]} ${s}`);
  return `wants ${pool.wanted} now (${describeSize(pool)}); ${held.length ? held.join(", ") : "no members"}`;
}

/** The pools as the terminal shows them (nothing when no config has a pool). */
export function renderPools(report: PoolsReport): string[] {
  if (report.pools.length === 0) return [];
  const lines = [`stopped pools (idle cost: ready members' gp3 volumes at ${describePrice(report.price)}):`];
  for (const pool of report.pools) {
    lines.push(`  ${pool.configName}: ${describePool(pool)}`);
    for (const m of pool.members) lines.push(memberRow(m, pool.currentAmi));
    for (const u of pool.untracked)
      lines.push(
        `    ${"no item".padEnd(9)} ${u.instanceId}  ${u.ec2State.padEnd(8)} ${formatDuration(u.ageSeconds).padEnd(9)} tagged as a member, but the pool table has no item for it`,
      );
    lines.push(`    idle cost: ${describeIdleCost(pool, report.price)}`);
  }
  return lines;
}
