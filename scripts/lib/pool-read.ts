/**
 * What the operator tools read of the stopped pools, with your AWS credentials: every member item
 * (one Scan of the pool table: the pools of configs the stack config no longer has show too), the
 * stack's live instances, and each pooled config's current AMI (its amiId, or the value of the image
 * pipeline's SSM parameter, as the launch template resolves it). ./pool-report.ts words them.
 */
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { dynamodb } from "../../lambda/adapters/dynamodb";
import { describeRunnerInstances } from "../../lambda/adapters/ec2";
import type { PoolMember } from "../../lambda/adapters/pool-members";
import { LIVE_INSTANCE_STATES } from "../../lambda/core/stack-identity";
import type { Arch } from "../../lambda/shared/label-config";
import type { StackConfig } from "../../src/config/schema";
import { amiParameterValue } from "./ami-parameter";
import { gp3PriceOf } from "./ebs-price";
import { type PoolConfigSpec, type PoolsReport, poolsReport } from "./pool-report";

/** A label config's pool as the stack config says, and where its AMI comes from. */
export interface PoolConfigSource extends Omit<PoolConfigSpec, "currentAmi"> {
  arch: Arch;
  amiId?: string;
}

export interface PoolSources {
  table: string;
  stackName: string;
  /** For the gp3 price. */
  region: string;
  configs: PoolConfigSource[];
  /** The image pipeline's AMI parameter per architecture (the stack's amiParameterNames output). */
  amiParameterNames?: Partial<Record<Arch, string>>;
}

/** Every label config of the stack config, with its pool (size 0 and no schedule: no pool). */
export const poolConfigsOf = (config: Pick<StackConfig, "labelConfigs">): PoolConfigSource[] =>
  Object.entries(config.labelConfigs).map(([name, l]) => ({
    name,
    pool: l.pool.size > 0 || l.pool.schedule ? l.pool : undefined,
    maxRunners: l.maxRunners,
    diskSizeGb: l.diskSizeGb,
    arch: l.arch,
    amiId: l.amiId,
  }));

/** Every member item of the pool table. */
export async function scanPoolMembers(table: string): Promise<PoolMember[]> {
  const members: PoolMember[] = [];
  let startKey: Record<string, never> | undefined;
  do {
    const page = await dynamodb("Scan", { TableName: table, ExclusiveStartKey: startKey });
    for (const item of page.Items ?? []) members.push(unmarshall(item) as PoolMember);
    startKey = page.LastEvaluatedKey as typeof startKey;
  } while (startKey);
  return members;
}

/** Each config's current AMI; one read per parameter. */
async function withCurrentAmis(sources: PoolSources, names: Set<string>): Promise<PoolConfigSpec[]> {
  const reads = new Map<string, Promise<string | undefined>>();
  const read = (parameter: string) => {
    if (!reads.has(parameter)) reads.set(parameter, amiParameterValue(parameter));
    return reads.get(parameter)!;
  };
  return Promise.all(
    sources.configs.map(async ({ arch, amiId, ...spec }) => {
      const parameter = sources.amiParameterNames?.[arch];
      if (amiId || !names.has(spec.name) || !parameter) return { ...spec, currentAmi: amiId };
      return { ...spec, currentAmi: await read(parameter) };
    }),
  );
}

/** The pools now: members, their instances, current AMIs and the region's gp3 price. */
export async function readPools(sources: PoolSources, now: Date): Promise<PoolsReport> {
  const [members, instances] = await Promise.all([
    scanPoolMembers(sources.table),
    describeRunnerInstances(sources.stackName, LIVE_INSTANCE_STATES),
  ]);
  const pooled = new Set([
    ...sources.configs.filter((c) => c.pool).map((c) => c.name),
    ...members.map((m) => m.config),
  ]);
  const configs = await withCurrentAmis(sources, pooled);
  return poolsReport({ configs, members, instances, price: gp3PriceOf(sources.region), now });
}
