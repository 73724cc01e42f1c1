/**
 * The reconciler's tending of the stopped pools, pure: from the label configs, the members' items,
 * their instances, the active jobs, the configs' current AMIs and the warm-up reports to what one run
 * does. Refill each pool up to its size within the config's room; stop a member whose warm-up is done
 * and mark it ready once stopped; retire (terminate) a member that warmed too long, is built from an
 * older AMI, is older than GitHub's runner-version window or is beyond the size; forget a member whose
 * instance is gone. A claimed member is its job's: never retired here. Nothing here does I/O;
 * lambda/reconciler/tend-pools.ts applies the plan, every member state change as a conditional write.
 */
import type { PoolMember } from "../adapters/pool-members";
import type { LabelConfig } from "../shared/label-config";
import { poolSizeAt } from "./pool-size";

/** A member still warming this long never finished its warm-up (its bootstrap gives up at 15 min). */
export const WARMING_TIMEOUT_MINUTES = 20;
/** A member launched longer ago than this runs a runner GitHub may refuse jobs to: replaced. */
export const MAX_MEMBER_AGE_DAYS = 7;
/** DescribeInstances is eventually consistent: a member this young may not be listed yet. */
export const UNLISTED_GRACE_MINUTES = 5;

/** A member's instance as DescribeInstances reports it. */
export interface PoolInstance {
  instanceId: string;
  state: string;
  imageId?: string;
}

export interface PoolPlanInput {
  now: Date;
  configs: LabelConfig[];
  /** Every member item, of every config (a config no longer deployed has size 0). */
  members: PoolMember[];
  /** The stack's instances (terminated ones included while EC2 lists them). */
  instances: PoolInstance[];
  /** Active jobs (launching, launched, running) per config; undefined when unread: no launch. */
  activeJobs?: ReadonlyMap<string, number>;
  maxRunnersTotal: number;
  /** Each config's current AMI id; absent when unknown (no rotation by AMI for that config). */
  currentAmis: ReadonlyMap<string, string>;
  /** When each instance reported its warm-up done (`warmedAt` on its hand-off item). */
  warmedAt: ReadonlyMap<string, string>;
}

export type PoolAction =
  /** One on-demand CreateFleet of `count` members for `config`; `seen`: the config's member ids now. */
  | { kind: "launch"; config: string; count: number; seen: string[]; reason: string }
  /** StopInstances: its warm-up is done. */
  | { kind: "stop"; member: PoolMember; reason: string }
  /** warming → ready (conditional): its instance is stopped. */
  | { kind: "mark-ready"; member: PoolMember; reason: string }
  /** member.state → retiring (conditional: never one a launcher is claiming), terminate, delete item. */
  | { kind: "retire"; member: PoolMember; reason: string }
  /** Already retiring (a run or a launcher left it so): terminate, delete item. */
  | { kind: "terminate"; member: PoolMember; reason: string }
  /** Its instance is gone: delete the item. */
  | { kind: "forget"; member: PoolMember; reason: string };

export type PoolActionKind = PoolAction["kind"];

const GONE = new Set(["shutting-down", "terminated"]);
const LEAVING: ReadonlySet<PoolActionKind> = new Set(["retire", "terminate", "forget"]);

const minutesSince = (iso: string, now: Date) => (now.getTime() - Date.parse(iso)) / 60_000;

export function planPools(input: PoolPlanInput): PoolAction[] {
  const instances = new Map(input.instances.map((i) => [i.instanceId, i]));
  const actions: PoolAction[] = [];
  /** Per config, the warming and ready members that stay in the pool after this run's member rules. */
  const staying = new Map<string, PoolMember[]>();
  for (const member of input.members) {
    const action = memberAction(member, instances.get(member.instanceId), input);
    if (action) actions.push(action);
    if (action && LEAVING.has(action.kind)) continue;
    if (member.state === "warming" || member.state === "ready") {
      staying.set(member.config, [...(staying.get(member.config) ?? []), member]);
    }
  }
  const sizes = new Map(input.configs.map((c) => [c.name, poolSizeAt(c, input.now)]));
  for (const [config, members] of staying) {
    const size = sizes.get(config) ?? 0;
    const { keep, retire } = splitSurplus(members, size);
    const reason = `beyond the pool's size of ${size}`;
    for (const member of retire) actions.push({ kind: "retire", member, reason });
    staying.set(config, keep);
  }
  actions.push(...launches(input, sizes, staying));
  return actions;
}

/** What this run does about one member, from its own state and its instance's. */
function memberAction(
  member: PoolMember,
  instance: PoolInstance | undefined,
  input: PoolPlanInput,
): PoolAction | undefined {
  const { now } = input;
  const age = minutesSince(member.launchedAt, now);
  if (!instance && age <= UNLISTED_GRACE_MINUTES) return undefined;
  if (!instance || GONE.has(instance.state)) {
    return { kind: "forget", member, reason: `its instance is ${instance?.state ?? "gone"}` };
  }
  switch (member.state) {
    case "claimed":
      return undefined; // its job owns it, like any runner's instance
    case "retiring":
      return { kind: "terminate", member, reason: "retiring" };
    case "warming": {
      if (age > WARMING_TIMEOUT_MINUTES) {
        const reason = `warming for ${Math.round(age)} min, over the ${WARMING_TIMEOUT_MINUTES} min limit`;
        return { kind: "retire", member, reason };
      }
      if (instance.state === "stopped")
        return { kind: "mark-ready", member, reason: "stopped after its warm-up" };
      const warmedAt = input.warmedAt.get(member.instanceId);
      if (instance.state === "running" && warmedAt) {
        return { kind: "stop", member, reason: `warm-up done at ${warmedAt}` };
      }
      return undefined;
    }
    case "ready":
      return rotation(member, instance, input);
  }
}

/**
 * A ready member built from another AMI than the config's current one, from an older launch template
 * version (its user data and settings predate a `pulumi up`), or past the age limit.
 */
function rotation(member: PoolMember, instance: PoolInstance, input: PoolPlanInput): PoolAction | undefined {
  // The instance's own image is the truth; the item's is what the config said at launch.
  const ami = instance.imageId ?? member.amiId;
  const current = input.currentAmis.get(member.config);
  if (ami && current && ami !== current) {
    return { kind: "retire", member, reason: `built from ${ami}, the config's AMI is now ${current}` };
  }
  const version = input.configs.find((c) => c.name === member.config)?.launchTemplateVersion;
  if (member.templateVersion && version && member.templateVersion !== version) {
    const reason = `launched from launch template version ${member.templateVersion}, the config's is now ${version}`;
    return { kind: "retire", member, reason };
  }
  const days = minutesSince(member.launchedAt, input.now) / (24 * 60);
  if (days > MAX_MEMBER_AGE_DAYS) {
    const reason = `launched ${Math.floor(days)} days ago, past the ${MAX_MEMBER_AGE_DAYS}-day runner window`;
    return { kind: "retire", member, reason };
  }
  return undefined;
}

/**
 * The members beyond `size` are retired: warming ones first (not usable yet, and they cost running
 * hours), then the oldest ready ones (nearest to the age limit and running the oldest runner: the
 * newest stay, so the pool lives longest before its next rotation).
 */
function splitSurplus(members: PoolMember[], size: number): { keep: PoolMember[]; retire: PoolMember[] } {
  if (members.length <= size) return { keep: members, retire: [] };
  const rank = (m: PoolMember) => (m.state === "warming" ? 0 : 1);
  const ordered = [...members].sort(
    (a, b) =>
      rank(a) - rank(b) ||
      a.launchedAt.localeCompare(b.launchedAt) ||
      a.instanceId.localeCompare(b.instanceId),
  );
  const cut = members.length - size;
  return { retire: ordered.slice(0, cut), keep: ordered.slice(cut) };
}

/**
 * One launch per config short of its size, within its room: maxRunners minus its active jobs minus
 * its warming members (stopped members count for nothing), and within what is left of
 * maxRunnersTotal after every config's active jobs and warming members, in config order.
 */
function launches(
  input: PoolPlanInput,
  sizes: Map<string, number>,
  staying: Map<string, PoolMember[]>,
): PoolAction[] {
  const { activeJobs } = input;
  if (!activeJobs) return [];
  const warmingOf = (config: string) =>
    (staying.get(config) ?? []).filter((m) => m.state === "warming").length;
  let totalBusy = 0;
  for (const n of activeJobs.values()) totalBusy += n;
  for (const config of staying.keys()) totalBusy += warmingOf(config);
  let totalRoom = Math.max(0, input.maxRunnersTotal - totalBusy);
  const actions: PoolAction[] = [];
  for (const config of input.configs) {
    const size = sizes.get(config.name) ?? 0;
    const have = staying.get(config.name)?.length ?? 0;
    const room = Math.max(0, config.maxRunners - (activeJobs.get(config.name) ?? 0) - warmingOf(config.name));
    const count = Math.min(size - have, room, totalRoom);
    if (count <= 0) continue;
    totalRoom -= count;
    const reason = `pool holds ${have} of ${size}${count < size - have ? ` (room for ${count})` : ""}`;
    const seen = input.members.filter((m) => m.config === config.name).map((m) => m.instanceId);
    actions.push({ kind: "launch", config: config.name, count, seen: seen.sort(), reason });
  }
  return actions;
}
