/**
 * The reconciler's tending of the stopped pools (design: issue 13): reads the label configs, the
 * members' items, their instances, the active jobs, the warm-up reports and each config's current
 * AMI; plans with core/pool-plan.ts; applies the plan. Every member state change is a conditional
 * write (a launcher claiming a member wins over its retirement), every EC2 call is idempotent, so two
 * runs at once, or a run racing a launcher, cannot retire a claimed member or launch twice.
 */
import { createHash } from "node:crypto";
import pMap from "p-map";
import { unlessConditionFailed } from "../adapters/dynamodb";
import { createFleet, instanceZones, stopInstances, terminateInstances } from "../adapters/ec2";
import { writeWarmupMarker } from "../adapters/handoff";
import { listActiveJobs } from "../adapters/job-queries";
import { currentAmisOf, loadLabelConfigs } from "../adapters/label-configs";
import { deleteMember, moveMember, type PoolMember, putWarmingMember } from "../adapters/pool-members";
import { activeCounts } from "../core/admission";
import { buildFleetRequest, type LaunchedInstance } from "../core/fleet-request";
import {
  type PoolAction,
  type PoolActionKind,
  type PoolPlanInput,
  planPools,
  WARMING_TIMEOUT_MINUTES,
} from "../core/pool-plan";
import type { LabelConfig } from "../shared/label-config";
import type { Settings } from "../shared/settings";
import { logger } from "../shared/telemetry";
import { type FleetReads, fleetReads } from "./fleet-reads";

const IO_CONCURRENCY = 8;

export interface PoolsTended {
  /** Actions applied, by kind (`launch`: members launched). */
  applied: Partial<Record<PoolActionKind, number>>;
  /** Actions whose condition no longer held (a launcher claimed the member, another run acted). */
  skipped: Partial<Record<PoolActionKind, number>>;
  failed: number;
  /** Planned, left for the next run (time budget). */
  deferred: number;
}

/** The metric each kind of pool action is counted under. */
export const POOL_METRICS: Record<PoolActionKind, string> = {
  launch: "PoolMembersLaunched",
  stop: "PoolMembersStopped",
  "mark-ready": "PoolMembersReady",
  retire: "PoolMembersRetired",
  terminate: "PoolMembersTerminated",
  forget: "PoolMembersForgotten",
};

export interface ApplyContext {
  now: Date;
  deadline: number;
  settings: Pick<Settings, "stackName" | "subnetIds">;
  configs: Map<string, LabelConfig>;
  currentAmis: ReadonlyMap<string, string>;
}

export async function tendPools(
  s: Settings,
  { now, deadline, reads = fleetReads(s.stackName) }: { now: Date; deadline: number; reads?: FleetReads },
): Promise<PoolsTended> {
  const [configs, members] = await Promise.all([loadLabelConfigs(), reads.poolMembers()]);
  // Stacks without a pool pay for two reads (the configs are cached) and nothing else.
  if (members.length === 0 && ![...configs.values()].some((c) => c.pool)) return emptyReport();
  const input = await gatherPoolState(s, now, configs, members, reads);
  const actions = planPools(input);
  return applyPoolPlan(actions, { now, deadline, settings: s, configs, currentAmis: input.currentAmis });
}

async function gatherPoolState(
  s: Settings,
  now: Date,
  configs: Map<string, LabelConfig>,
  members: PoolMember[],
  reads: FleetReads,
): Promise<PoolPlanInput> {
  const [instances, activeJobs, warmedAt, currentAmis] = await Promise.all([
    reads.instances(),
    listActiveJobs()
      .then(activeCounts)
      .catch((error: unknown) => {
        logger.warn("active jobs unreadable: no pool refill this run", error as Error);
        return undefined;
      }),
    reads
      .handoffs()
      .then((reports) => new Map(reports.flatMap((r) => (r.warmedAt ? [[r.instanceId, r.warmedAt]] : []))))
      .catch((error: unknown) => {
        logger.warn("warm-up reports unreadable: no member stopped this run", error as Error);
        return new Map<string, string>();
      }),
    currentAmisOf(
      [...configs.values()].filter((c) => c.pool || members.some((m) => m.config === c.name)),
      (config, error) =>
        logger.warn("AMI parameter unreadable: no rotation by AMI this run", {
          config: config.name,
          parameter: config.image && "parameter" in config.image ? config.image.parameter : undefined,
          error: String(error),
        }),
    ),
  ]);
  return {
    now,
    configs: [...configs.values()],
    members,
    instances: instances.map((i) => ({
      instanceId: i.instanceId,
      state: i.state ?? "unknown",
      imageId: i.imageId,
    })),
    activeJobs,
    maxRunnersTotal: s.maxRunnersTotal,
    currentAmis,
    warmedAt,
  };
}

/**
 * Applies a pool plan: retirements first (they stop spend; their moves are conditional, so a member a
 * launcher claimed meanwhile stays), then forgetting items, stopping, marking ready, launching.
 */
export async function applyPoolPlan(actions: PoolAction[], ctx: ApplyContext): Promise<PoolsTended> {
  const report = emptyReport();
  const of = <K extends PoolActionKind>(kind: K) =>
    actions.filter((a): a is Extract<PoolAction, { kind: K }> => a.kind === kind);
  const retiring = [...of("retire"), ...of("terminate")];
  const phases: [PoolAction[], () => Promise<void>][] = [
    [retiring, () => retire(retiring, ctx, report)],
    [of("forget"), () => forget(of("forget"), report)],
    [of("stop"), () => stop(of("stop"), report)],
    [of("mark-ready"), () => markReady(of("mark-ready"), ctx, report)],
    [of("launch"), () => launch(of("launch"), ctx, report)],
  ];
  for (const [planned, run] of phases) {
    if (planned.length === 0) continue;
    if (Date.now() > ctx.deadline) {
      report.deferred += planned.length;
      continue;
    }
    await run().catch((error: unknown) => {
      logger.error("pool actions failed", { kind: planned[0]!.kind, error: String(error) });
      report.failed += planned.length;
    });
  }
  return report;
}

/** Moves each to `retiring` (conditional on the state the plan saw), terminates those, deletes their items. */
async function retire(
  actions: Extract<PoolAction, { kind: "retire" | "terminate" }>[],
  ctx: ApplyContext,
  report: PoolsTended,
): Promise<void> {
  const moved = await pMap(
    actions,
    async (action) => {
      if (action.kind === "terminate") return action;
      const { member } = action;
      if (await moveMember(member, [member.state], "retiring", {}, ctx.now)) return action;
      count(report.skipped, action.kind);
      return undefined;
    },
    { concurrency: IO_CONCURRENCY },
  );
  const going = moved.filter((a) => a !== undefined);
  if (going.length === 0) return;
  await terminateInstances(going.map((a) => a.member.instanceId));
  await pMap(
    going,
    async (action) => {
      await deleteMember(action.member);
      applied(report, action);
    },
    { concurrency: IO_CONCURRENCY },
  );
}

async function forget(
  actions: Extract<PoolAction, { kind: "forget" }>[],
  report: PoolsTended,
): Promise<void> {
  await pMap(
    actions,
    async (action) => {
      await deleteMember(action.member);
      applied(report, action);
    },
    { concurrency: IO_CONCURRENCY },
  );
}

/**
 * One StopInstances for all; if it fails (one instance changed state since the plan: EC2 then stops
 * none), each on its own, so one member does not hold the others running.
 */
async function stop(actions: Extract<PoolAction, { kind: "stop" }>[], report: PoolsTended): Promise<void> {
  const stopped = await stopInstances(actions.map((a) => a.member.instanceId)).then(
    () => actions,
    async (error: unknown) => {
      logger.warn("StopInstances failed for the batch: stopping one by one", { error: String(error) });
      const each = await pMap(actions, (a) =>
        stopInstances([a.member.instanceId]).then(
          () => a,
          (e: unknown) => {
            logger.warn("pool member not stopped", { instanceId: a.member.instanceId, error: String(e) });
            report.failed++;
            return undefined;
          },
        ),
      );
      return each.filter((a) => a !== undefined);
    },
  );
  for (const action of stopped) applied(report, action);
}

async function markReady(
  actions: Extract<PoolAction, { kind: "mark-ready" }>[],
  ctx: ApplyContext,
  report: PoolsTended,
): Promise<void> {
  await pMap(
    actions,
    async (action) => {
      const readyAt = ctx.now.toISOString();
      if (await moveMember(action.member, ["warming"], "ready", { readyAt }, ctx.now))
        applied(report, action);
      else count(report.skipped, action.kind);
    },
    { concurrency: IO_CONCURRENCY },
  );
}

/** One on-demand CreateFleet per config; each instance gets its item (warming) and its warm-up marker. */
async function launch(
  actions: Extract<PoolAction, { kind: "launch" }>[],
  ctx: ApplyContext,
  report: PoolsTended,
): Promise<void> {
  await pMap(actions, async (action) => {
    const config = ctx.configs.get(action.config);
    if (!config) return;
    const fleet = await createFleet(
      buildFleetRequest({
        config,
        subnetIds: ctx.settings.subnetIds,
        market: "on-demand",
        count: action.count,
        clientToken: clientToken(action, ctx.now),
        stackName: ctx.settings.stackName,
        poolMembers: true,
      }),
    );
    if (fleet.errors.length) {
      logger.warn("pool launch short of capacity", {
        config: config.name,
        asked: action.count,
        got: fleet.instances.length,
        errors: fleet.errors.map((e) => e.code),
      });
    }
    // Each member's zone now, off the job's path: the launcher that starts it records it on the job.
    const zones = await instanceZones(fleet.instances.map((i) => i.instanceId)).catch((error: unknown) => {
      logger.warn("pool members' zones unread: the launcher will look them up", { error: String(error) });
      return new Map<string, string>();
    });
    await pMap(fleet.instances, (instance) =>
      recordMember(config, { ...instance, availabilityZone: zones.get(instance.instanceId) }, ctx, report),
    );
    count(report.applied, "launch", fleet.instances.length);
    logger.info("pool", {
      kind: "launch",
      config: config.name,
      launched: fleet.instances.length,
      reason: action.reason,
    });
  });
}

/** A launched member's item (warming) and warm-up marker; a failure is counted, and healed by later runs. */
async function recordMember(
  config: LabelConfig,
  { instanceId, instanceType, availabilityZone }: LaunchedInstance,
  ctx: ApplyContext,
  report: PoolsTended,
): Promise<void> {
  try {
    const member = {
      config: config.name,
      instanceId,
      instanceType,
      availabilityZone,
      amiId: ctx.currentAmis.get(config.name),
      templateVersion: config.launchTemplateVersion,
    };
    // Already recorded: an SDK retry (or a run at the same moment) got the same fleet back.
    await unlessConditionFailed(putWarmingMember(member, ctx.now));
    await writeWarmupMarker(instanceId, { now: ctx.now, ttlSeconds: WARMING_TIMEOUT_MINUTES * 60 });
  } catch (error) {
    // Without its item the instance is an orphan the instance rules reap; without its marker it
    // never warms and is retired at the warming timeout.
    logger.error("pool member not recorded", { instanceId, error: String(error) });
    report.failed++;
  }
}

/**
 * The same refill (same config, same members seen, same count) in the same minute gets the same
 * token: a second run planning it at once gets the first run's fleet back instead of launching
 * another (its item writes then fail their condition). Any other refill gets a new one.
 */
function clientToken(action: Extract<PoolAction, { kind: "launch" }>, now: Date): string {
  const minute = Math.floor(now.getTime() / 60_000);
  const key = `pool|${action.config}|${action.count}|${minute}|${action.seen.join(",")}`;
  return createHash("sha256").update(key).digest("hex");
}

function applied(report: PoolsTended, action: Exclude<PoolAction, { kind: "launch" }>): void {
  count(report.applied, action.kind);
  const { member, kind, reason } = action;
  logger.info("pool", {
    kind,
    config: member.config,
    instanceId: member.instanceId,
    state: member.state,
    reason,
  });
}

function count(counts: PoolsTended["applied"], kind: PoolActionKind, n = 1): void {
  counts[kind] = (counts[kind] ?? 0) + n;
}

export function emptyReport(): PoolsTended {
  return { applied: {}, skipped: {}, failed: 0, deferred: 0 };
}
