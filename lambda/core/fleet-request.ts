/**
 * One CreateFleet, pure: how a batch's jobs are grouped (one fleet per label config), what the
 * request for a group looks like, and what its answer means (which instance serves which job).
 */
import { createHash } from "node:crypto";
import type { CreateFleetCommandInput, CreateFleetCommandOutput } from "@aws-sdk/client-ec2";
import type { Market } from "../shared/job";
import type { LabelConfig } from "../shared/label-config";
import { TAGS } from "./stack-identity";

/**
 * Launch template version every fleet uses. `$Latest`: each `pulumi up` that changes a template
 * writes a new version, and it is live for the next launch without also moving `$Default`.
 */
export const LAUNCH_TEMPLATE_VERSION = "$Latest";

/** Items grouped by label config (`configName`, or what `configOf` says), in order within each group. */
export function groupByConfig<T>(
  items: T[],
  configOf: (item: T) => string = (item) => (item as { configName: string }).configName,
): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const name = configOf(item);
    const group = groups.get(name);
    if (group) group.push(item);
    else groups.set(name, [item]);
  }
  return groups;
}

/**
 * Idempotency token of one CreateFleet: the same jobs at the same attempt on the same market give
 * the same token, so an SDK retry of a request whose answer was lost returns the first fleet
 * instead of launching a second one. A new attempt (after a release) gets a new token.
 */
export function clientTokenFor(jobs: { jobId: string; attempts?: number }[], market: Market): string {
  const key = jobs
    .map((job) => `${job.jobId}@${job.attempts ?? 0}`)
    .sort()
    .join(",");
  // ClientToken: at most 64 ASCII characters.
  return createHash("sha256").update(`${market}|${key}`).digest("hex");
}

export interface FleetRequestInput {
  config: LabelConfig;
  subnetIds: string[];
  market: Market;
  count: number;
  clientToken: string;
  stackName: string;
  /** Launching members of the config's stopped pool (tagged TAGS.poolMember), not runners for jobs. */
  poolMembers?: boolean;
}

/**
 * One `instant` CreateFleet for `count` runners of a config: every instance type × every subnet as
 * overrides, so EC2 picks the deepest spot pool (capacity-optimized) or the cheapest on-demand one.
 * Tags name the stack, the config and the market (see TAGS for why not the job). Volume tags belong in the launch
 * template (an instant fleet tags only `fleet` and `instance`).
 */
export function buildFleetRequest(input: FleetRequestInput): CreateFleetCommandInput {
  const { config, subnetIds, market, count } = input;
  if (subnetIds.length === 0) throw new Error("no runner subnets configured (SUBNET_IDS)");
  if (config.instanceTypes.length === 0) throw new Error(`label config ${config.name} has no instance types`);
  const overrides = config.instanceTypes.flatMap((instanceType) =>
    subnetIds.map((subnetId) => ({ InstanceType: instanceType as never, SubnetId: subnetId })),
  );
  const tags = [
    { Key: TAGS.stack, Value: input.stackName },
    { Key: TAGS.config, Value: config.name },
    { Key: TAGS.market, Value: market },
    ...(input.poolMembers ? [{ Key: TAGS.poolMember, Value: config.name }] : []),
  ];
  return {
    Type: "instant",
    ClientToken: input.clientToken,
    LaunchTemplateConfigs: [
      {
        LaunchTemplateSpecification: {
          LaunchTemplateId: config.launchTemplateId,
          Version: LAUNCH_TEMPLATE_VERSION,
        },
        Overrides: overrides,
      },
    ],
    TargetCapacitySpecification: {
      TotalTargetCapacity: count,
      DefaultTargetCapacityType: market,
      ...(market === "spot" ? { SpotTargetCapacity: count } : { OnDemandTargetCapacity: count }),
    },
    ...(market === "spot"
      ? { SpotOptions: { AllocationStrategy: config.allocationStrategy ?? "capacity-optimized" } }
      : { OnDemandOptions: { AllocationStrategy: "lowest-price" } }),
    TagSpecifications: [
      { ResourceType: "instance", Tags: tags },
      { ResourceType: "fleet", Tags: tags },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// The fleet result

export interface LaunchedInstance {
  instanceId: string;
  instanceType?: string;
  subnetId?: string;
  availabilityZone?: string;
  market: Market;
}

export interface FleetError {
  code: string;
  message?: string;
  instanceType?: string;
  subnetId?: string;
}

export interface FleetResult {
  instances: LaunchedInstance[];
  errors: FleetError[];
}

/** Flattens an instant fleet's answer: one entry per instance, and the per-override errors. */
export function readFleetResult(output: Pick<CreateFleetCommandOutput, "Instances" | "Errors">): FleetResult {
  const instances: LaunchedInstance[] = [];
  for (const group of output.Instances ?? []) {
    const overrides = group.LaunchTemplateAndOverrides?.Overrides;
    for (const instanceId of group.InstanceIds ?? []) {
      instances.push({
        instanceId,
        instanceType: group.InstanceType ?? overrides?.InstanceType,
        subnetId: overrides?.SubnetId,
        availabilityZone: overrides?.AvailabilityZone,
        market: group.Lifecycle === "on-demand" ? "on-demand" : "spot",
      });
    }
  }
  const errors: FleetError[] = (output.Errors ?? []).map((error) => ({
    code: error.ErrorCode ?? "Unknown",
    message: error.ErrorMessage,
    instanceType: error.LaunchTemplateAndOverrides?.Overrides?.InstanceType,
    subnetId: error.LaunchTemplateAndOverrides?.Overrides?.SubnetId,
  }));
  return { instances, errors };
}

/**
 * Pairs jobs with instances in order (the caller sorts jobs oldest first, so the oldest get
 * capacity first). Jobs beyond the instances are `unserved`.
 */
export function assignInstances<J>(
  jobs: J[],
  instances: LaunchedInstance[],
): { assigned: { job: J; instance: LaunchedInstance }[]; unserved: J[]; surplus: LaunchedInstance[] } {
  const n = Math.min(jobs.length, instances.length);
  return {
    assigned: jobs.slice(0, n).map((job, i) => ({ job, instance: instances[i] as LaunchedInstance })),
    unserved: jobs.slice(n),
    surplus: instances.slice(n),
  };
}
