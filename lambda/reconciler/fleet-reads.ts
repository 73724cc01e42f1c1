/**
 * The reads both the fleet rules (gather-fleet-state.ts) and the pool tending (tend-pools.ts) need in
 * one reconciler run: the stack's instances, the hand-off reports and the pool's member items. Each is
 * made at most once per run and shared, so a stack with a pool does not list its instances or scan
 * its hand-off table twice a minute. A failed read fails both users, each of which handles it its own way.
 */
import { describeRunnerInstances, type RunnerInstance } from "../adapters/ec2";
import { listHandoffReports } from "../adapters/handoff";
import { type PoolMember, scanMembers } from "../adapters/pool-members";
import { LIVE_INSTANCE_STATES } from "../core/stack-identity";
import type { HandoffReport } from "../shared/handoff-report";

export interface FleetReads {
  /** The stack's instances; terminated ones too (EC2 lists them for about an hour: how a job or a member learns its instance is gone). */
  instances: () => Promise<RunnerInstance[]>;
  handoffs: () => Promise<HandoffReport[]>;
  poolMembers: () => Promise<PoolMember[]>;
}

const once = <T>(read: () => Promise<T>): (() => Promise<T>) => {
  let result: Promise<T> | undefined;
  return () => {
    result ??= read();
    return result;
  };
};

export function fleetReads(stackName: string): FleetReads {
  return {
    instances: once(() => describeRunnerInstances(stackName, [...LIVE_INSTANCE_STATES, "terminated"])),
    handoffs: once(() => listHandoffReports()),
    poolMembers: once(() => scanMembers()),
  };
}
