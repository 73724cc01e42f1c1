/**
 * What every component needs to know about the stack: its validated config, names derived from the
 * stack name only (never from changeable config, so an update never renames a table or a queue),
 * the tags every resource carries, and ARN builders for least-privilege policies.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { TAGS } from "../../lambda/core/stack-identity";
import type { Arch } from "../../lambda/shared/label-config";
import type { FleetSettings } from "./load";
import type { StackConfig } from "./schema";

/** The stack tag (cleanup finds the fleet's instances, AMIs and runners by it) is also the cost tag. */
export const STACK_TAG = TAGS.stack;
export const CONFIG_TAG = TAGS.config;

export interface StackContext {
  settings: FleetSettings;
  config: StackConfig;
  stack: string;
  /** `runner-fleet-<stack>`: prefix of every named resource. */
  prefix: string;
  /** `/runner-fleet/<stack>`: prefix of every SSM parameter. */
  ssmPath: string;
  /** Tags on every resource (provider default tags) and on what the fleet launches. */
  tags: Record<string, string>;
  region: string;
  accountId: pulumi.Output<string>;
  partition: pulumi.Output<string>;
  /** The AWS provider every component uses: its default tags put `tags` on every resource. */
  provider: aws.Provider;
}

export function createContext(settings: FleetSettings, region: string): StackContext {
  const tags = { [STACK_TAG]: settings.stack, "runner-fleet:managed-by": "pulumi" };
  const provider = new aws.Provider("aws", { region: region as aws.Region, defaultTags: { tags } });
  const identity = aws.getCallerIdentityOutput({}, { provider });
  const partition = aws.getPartitionOutput({}, { provider });
  return {
    settings,
    config: settings.config,
    stack: settings.stack,
    prefix: `${settings.project}-${settings.stack}`,
    ssmPath: `/${settings.project}/${settings.stack}`,
    tags,
    region,
    accountId: identity.accountId,
    partition: partition.partition,
    provider,
  };
}

/** `arn:<partition>:<service>:<region>:<account>:<resource>` of this stack's account and region. */
export function arnOf(
  ctx: StackContext,
  service: string,
  resource: pulumi.Input<string>,
): pulumi.Output<string> {
  return pulumi.interpolate`arn:${ctx.partition}:${service}:${ctx.region}:${ctx.accountId}:${resource}`;
}

/** ARN of an SSM parameter by its (slash-leading) name. */
export function ssmParameterArn(ctx: StackContext, name: pulumi.Input<string>): pulumi.Output<string> {
  return arnOf(ctx, "ssm", pulumi.interpolate`parameter${name}`);
}

/** SSM parameter names of the stack (all under ssmPath). */
export function parameterNames(ctx: StackContext) {
  return {
    labelConfigPath: `${ctx.ssmPath}/label-configs`,
    labelConfig: (name: string) => `${ctx.ssmPath}/label-configs/${name}`,
    githubAppPrivateKey: `${ctx.ssmPath}/github/app-private-key`,
    githubToken: `${ctx.ssmPath}/github/token`,
    webhookSecret: `${ctx.ssmPath}/github/webhook-secret`,
    ami: (arch: Arch) => `${ctx.ssmPath}/ami/${arch}`,
  };
}
