/**
 * What the operator tools read of the stopped pools, with your AWS credentials, as the reconciler
 * reads them: the published label configs (their pools, disk sizes, AMI sources and launch template
 * versions), every member item (one Scan of the pool table: the members of configs whose pool was
 * removed show too), the stack's live instances, and each pooled config's current AMI (its amiId, or
 * the value of the image pipeline's SSM parameter). ./pool-report.ts words them.
 */
import { describeRunnerInstances } from "../../lambda/adapters/ec2";
import { labelConfigSchema } from "../../lambda/adapters/label-configs";
import { scanMembers } from "../../lambda/adapters/pool-members";
import { LIVE_INSTANCE_STATES } from "../../lambda/core/stack-identity";
import type { LabelConfig } from "../../lambda/shared/label-config";
import type { StackConfig } from "../../src/config/schema";
import { gp3PriceOf } from "./ebs-price";
import { type PoolsReport, poolsReport } from "./pool-report";
import { amiParameterValue, parametersUnder } from "./ssm-read";

export interface PoolSources {
  table: string;
  stackName: string;
  /** For the gp3 price. */
  region: string;
  /** Where the program publishes the label configs (the stack's labelConfigParameterPath output). */
  labelConfigPath: string;
}

/** Whether the stack config gives any label config a pool (then a missing pool table is worth a note). */
export const stackConfigHasPool = (config: Pick<StackConfig, "labelConfigs">): boolean =>
  Object.values(config.labelConfigs).some((l) => l.pool.size > 0 || l.pool.schedule !== undefined);

/** The published label configs that parse (a broken one is the label-configs check's to report). */
async function readPublishedConfigs(path: string): Promise<LabelConfig[]> {
  const published = await parametersUnder(path);
  return [...published.values()].flatMap((value) => {
    try {
      const parsed = labelConfigSchema.safeParse(JSON.parse(value ?? ""));
      return parsed.success ? [parsed.data] : [];
    } catch {
      return [];
    }
  });
}

/** Each config's current AMI, for the configs named; one read per parameter, an unwritten one left out. */
async function currentAmis(configs: LabelConfig[], names: Set<string>): Promise<Map<string, string>> {
  const reads = new Map<string, Promise<string | undefined>>();
  const read = (parameter: string) => {
    if (!reads.has(parameter)) reads.set(parameter, amiParameterValue(parameter));
    return reads.get(parameter)!;
  };
  const amis = await Promise.all(
    configs
      .filter((c) => c.image && names.has(c.name))
      .map(async (c) => {
        const image = c.image!;
        return [c.name, "amiId" in image ? image.amiId : await read(image.parameter)] as const;
      }),
  );
  return new Map(amis.flatMap(([name, ami]) => (ami ? [[name, ami]] : [])));
}

/** The pools now: configs, members, their instances, current AMIs and the region's gp3 price. */
export async function readPools(sources: PoolSources, now: Date): Promise<PoolsReport> {
  const [configs, members, instances] = await Promise.all([
    readPublishedConfigs(sources.labelConfigPath),
    scanMembers(sources.table),
    describeRunnerInstances(sources.stackName, LIVE_INSTANCE_STATES),
  ]);
  const pooled = new Set([
    ...configs.filter((c) => c.pool).map((c) => c.name),
    ...members.map((m) => m.config),
  ]);
  return poolsReport({
    configs,
    currentAmis: await currentAmis(configs, pooled),
    members,
    instances,
    price: gp3PriceOf(sources.region),
    now,
  });
}
