/**
 * What a runner instance is: its IAM role (it may only take and report on its own hand-off item),
 * instance profile, and one launch template per label config (IMDSv2, encrypted gp3 root volume,
 * terminate on shutdown, egress-only security group, AMI resolved at launch time, user data = the
 * bootstrap script, which holds no secret), plus each label config as the SSM parameter the
 * launcher reads.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { Arch, LabelConfig } from "../../lambda/shared/label-config";
import type { LabelConfigInput, StackConfig } from "../config/schema";
import { CONFIG_TAG, parameterNames, type StackContext } from "../config/stack-context";
import { AWS_USERID, assumedBy, policyDocument } from "../packaging/iam";
import { HANDOFF_INSTANCE_ATTRIBUTES, renderBootstrap } from "./runner-bootstrap";

export class Runners extends pulumi.ComponentResource {
  readonly role: aws.iam.Role;
  readonly instanceProfile: aws.iam.InstanceProfile;
  /** Launch template per label config name. */
  readonly launchTemplates: Record<string, aws.ec2.LaunchTemplate> = {};

  constructor(
    name: string,
    args: {
      ctx: StackContext;
      handoffTable: aws.dynamodb.Table;
      securityGroupId: pulumi.Input<string>;
      assignPublicIp: boolean;
      /** SSM parameter of the pipeline's current AMI per arch (when a config has no amiId). */
      amiParameterNames?: Record<Arch, string>;
      /** The first images: templates (and the configs the launcher reads) wait for them. */
      images?: pulumi.Resource[];
    },
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("runner-fleet:index:Runners", name, {}, opts);
    const { ctx } = args;
    const { config } = ctx;

    this.role = new aws.iam.Role(
      name,
      { description: `${ctx.prefix}: runner instances`, assumeRolePolicy: assumedBy("ec2.amazonaws.com") },
      { parent: this },
    );
    new aws.iam.RolePolicy(
      name,
      {
        role: this.role.id,
        policy: policyDocument([
          {
            // The hand-off key is `<role unique id>:<instance id>`, exactly the instance's aws:userid, so
            // an instance can reach its own item only. UpdateItem is all the bootstrap needs: it takes the
            // JIT config with one conditional update (UPDATED_OLD) and reports progress the same way.
            Sid: "OwnHandOffItemOnly",
            Action: ["dynamodb:UpdateItem"],
            Resource: [args.handoffTable.arn],
            Condition: {
              "ForAllValues:StringEquals": {
                "dynamodb:LeadingKeys": [AWS_USERID],
                "dynamodb:Attributes": [...HANDOFF_INSTANCE_ATTRIBUTES],
              },
              StringEqualsIfExists: { "dynamodb:ReturnValues": ["NONE", "UPDATED_OLD", "UPDATED_NEW"] },
            },
            why:
              "Its own hand-off item only: dynamodb:LeadingKeys must equal the caller's aws:userid " +
              "(`<runner role id>:<instance id>`), with only the hand-off's instance attributes. " +
              "ForAllValues is safe here: UpdateItem always names a key, so the key set is never empty.",
          },
        ]),
      },
      { parent: this },
    );
    this.instanceProfile = new aws.iam.InstanceProfile(name, { role: this.role.name }, { parent: this });

    const userData = pulumi
      .all([this.role.uniqueId, args.handoffTable.name])
      .apply(([runnerRoleId, handoffTable]) =>
        Buffer.from(
          renderBootstrap({
            region: ctx.region,
            handoffTable,
            runnerRoleId,
            idleTimeoutSeconds: config.limits.idleTimeoutMinutes * 60,
            maxRuntimeSeconds: config.limits.maxRuntimeMinutes * 60,
          }),
        ).toString("base64"),
      );
    const names = parameterNames(ctx);

    for (const [configName, label] of Object.entries(config.labelConfigs)) {
      const tags = { ...ctx.tags, [CONFIG_TAG]: configName };
      const imageId =
        label.amiId ?? `resolve:ssm:${(args.amiParameterNames ?? missingPipeline(configName))[label.arch]}`;
      const template = new aws.ec2.LaunchTemplate(
        `${name}-${configName}`,
        {
          // Named by stack and config only: changes make new versions (the fleet uses $Latest), never a
          // replacement, so running instances are not affected and new launches get the new version.
          name: `${ctx.prefix}-${configName}`,
          description: `runner-fleet ${ctx.stack}: ${configName} (${label.arch})`,
          updateDefaultVersion: true,
          imageId,
          instanceInitiatedShutdownBehavior: "terminate",
          iamInstanceProfile: { arn: this.instanceProfile.arn },
          metadataOptions: {
            httpEndpoint: "enabled",
            httpTokens: "required",
            // 1: containers of a job (Docker bridge network, one hop further) cannot reach IMDS, so job
            // code in a container never gets the instance role; steps on the host still can.
            httpPutResponseHopLimit: 1,
            instanceMetadataTags: "enabled",
          },
          blockDeviceMappings: [
            {
              deviceName: "/dev/sda1",
              ebs: {
                volumeSize: label.diskSizeGb,
                volumeType: "gp3",
                encrypted: "true",
                deleteOnTermination: "true",
              },
            },
          ],
          networkInterfaces: [
            {
              deviceIndex: 0,
              associatePublicIpAddress: String(args.assignPublicIp),
              securityGroups: [args.securityGroupId],
              deleteOnTermination: "true",
            },
          ],
          userData,
          tagSpecifications: ["instance", "volume", "network-interface"].map((resourceType) => ({
            resourceType,
            tags,
          })),
          tags,
        },
        { parent: this, dependsOn: args.images },
      );
      this.launchTemplates[configName] = template;
      new aws.ssm.Parameter(
        `${name}-${configName}`,
        {
          name: names.labelConfig(configName),
          type: "String",
          description: `runner-fleet label config ${configName}`,
          value: pulumi
            .all([template.id, template.latestVersion])
            .apply(([id, version]) =>
              JSON.stringify(
                runtimeLabelConfig(
                  configName,
                  label,
                  config,
                  { id, version },
                  args.amiParameterNames?.[label.arch],
                ),
              ),
            ),
        },
        { parent: this },
      );
    }
    this.registerOutputs({});
  }
}

function missingPipeline(configName: string): never {
  throw new Error(`label config ${configName} has no amiId and the image pipeline is disabled`);
}

/** The run-time label config (the SSM parameter's JSON) of one config. */
function runtimeLabelConfig(
  name: string,
  l: LabelConfigInput,
  config: StackConfig,
  template: { id: string; version: number },
  amiParameter: string | undefined,
): LabelConfig {
  return {
    name,
    labels: l.labels,
    arch: l.arch,
    instanceTypes: l.instanceTypes,
    launchTemplateId: template.id,
    launchTemplateVersion: template.version,
    spotPolicy: l.spotPolicy,
    spotFailuresBeforeOnDemand: l.spotFailuresBeforeOnDemand,
    allocationStrategy: l.allocationStrategy,
    maxRunners: l.maxRunners,
    retryOnInterruption: l.retryOnInterruption,
    runnerGroupId: l.runnerGroupId ?? config.github.runnerGroupId,
    diskSizeGb: l.diskSizeGb,
    image: l.amiId ? { amiId: l.amiId } : { parameter: amiParameter ?? missingPipeline(name) },
    pool: l.pool.size > 0 || l.pool.schedule ? l.pool : undefined,
  };
}
