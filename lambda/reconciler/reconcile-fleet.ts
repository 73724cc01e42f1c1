/**
 * The reconcile loop proper, one pass: sees the fleet (gather-fleet-state.ts), plans with the pure
 * rules (core/reconcile-plan.ts) and applies the plan (apply-reconcile-plan.ts).
 */
import { planReconcile, reconcilePolicy } from "../core/reconcile-plan";
import type { Settings } from "../shared/settings";
import { type ApplyReport, applyReconcilePlan } from "./apply-reconcile-plan";
import type { FleetReads } from "./fleet-reads";
import { gatherFleetState } from "./gather-fleet-state";

export interface FleetReconciled extends ApplyReport {
  /** Stack instances pending or running (undefined when EC2 was unreadable). */
  instances?: number;
  /** Parts of the fleet that could not be read (their rules were skipped). */
  unreadable: string[];
}

export async function reconcileFleet(
  s: Settings,
  {
    now,
    deadline,
    sweepRunners,
    reads,
  }: { now: Date; deadline: number; sweepRunners?: boolean; reads?: FleetReads },
): Promise<FleetReconciled> {
  const fleet = await gatherFleetState(s.stackName, now, sweepRunners, reads);
  const { jobs, instances, handoffs, poolMembers, runners } = fleet;
  const policy = reconcilePolicy(s, s.stackName);
  const plan = planReconcile({ jobs, instances, runners: runners?.list, handoffs, poolMembers, now, policy });
  const applied = await applyReconcilePlan(plan, { jobs, runnerScopes: runners?.scopeOf }, { now, deadline });
  return { ...applied, instances: fleet.alive, unreadable: fleet.unreadable };
}
