/**
 * What the operator tools read of the stopped pools, with your AWS credentials, as the reconciler
 * reads them: the published label configs (their pools, disk sizes, AMI sources and launch template
 * versions), every member item (one Scan of the pool table: the members of configs whose pool was
 * removed show too), the stack's live instances, and each pooled config's current AMI (its amiId, or
 * the value of the image pipeline's SSM parameter). ./pool-report.ts words them.
 */

import { isServiceError } from "../../lambda/adapters/aws-json";
import { describeRunnerInstances } from "../../lambda/adapters/ec2";
import { currentAmisOf, parseLabelConfig } from "../../lambda/adapters/label-configs";
import { scanMembers } from "../../lambda/adapters/pool-members";
import { LIVE_INSTANCE_STATES } from "../../lambda/core/stack-identity";
import type { LabelConfig } from "../../lambda/shared/label-config";
import type { StackConfig } from "../../src/config/schema";
import { gp3PriceOf } from "./ebs-price";
import { type PoolsReport, poolsReport } from "./pool-report";
import { parametersUnder } from "./ssm-read";

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
    const parsed = parseLabelConfig(value);
    return parsed.ok ? [parsed.config] : [];
  });
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
    // A parameter not written yet (no image built): no current AMI; any other failure is the tool's error.
    currentAmis: await currentAmisOf(
      configs.filter((c) => pooled.has(c.name)),
      (_config, error) => {
        if (!isServiceError(error, "ParameterNotFound")) throw error;
      },
    ),
    members,
    instances,
    price: gp3PriceOf(sources.region),
    now,
  });
}
