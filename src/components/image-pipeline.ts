/**
 * The runner AMIs: EC2 Image Builder builds Ubuntu 24.04 images (x64 and arm64) from the AWSTOE
 * components in image/components/, on a schedule, and writes each new AMI id to an SSM parameter
 * that the launch templates resolve at launch time (`resolve:ssm:`), so a new image needs no deploy.
 * The first deploy builds one image per arch (aws.imagebuilder.Image), so the fleet can launch as
 * soon as `pulumi up` ends. Image Builder runs the build, and the test stage on an instance booted
 * from the new image, through that image's SSM agent (a snap on Ubuntu): the components' boot
 * trimming (image/scripts/boot-trim.sh) keeps it, though runners themselves have no SSM permission.
 */
import { createHash } from "node:crypto";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { Arch } from "../../lambda/shared/label-config";
import type { StackConfig } from "../config/schema";
import { parameterNames, type StackContext } from "../config/stack-context";
import { assumedBy, recordReason } from "../packaging/iam";
import {
  type ImageArch,
  imageComponents,
  parentImageArn,
  type RunnerImageOptions,
  recipeParameters,
} from "./runner-bootstrap";

export const ARCHES: readonly Arch[] = ["x64", "arm64"];

const BUILD_INSTANCE_TYPES: Record<Arch, string[]> = {
  x64: ["m7i.large", "m6i.large", "m5.large"],
  arm64: ["m7g.large", "m6g.large"],
};
const IMAGE_ARCH: Record<Arch, ImageArch> = { x64: "x86_64", arm64: "arm64" };

/**
 * The tag Image Builder puts on the AMIs it distributes and on their snapshots (AWS's own lifecycle
 * policy, EC2ImageBuilderLifecycleExecutionPolicy, deletes snapshots by it). Image Builder has no
 * setting to tag the snapshots with anything else: `amiTags` reach the AMIs only.
 */
export const IMAGE_BUILDER_SNAPSHOT_TAG = { key: "CreatedBy", value: "EC2 Image Builder" } as const;

/** AWS-managed policies of the build instances, and why no narrower inline policy replaces them. */
const BUILD_INSTANCE_POLICIES = {
  EC2InstanceProfileForImageBuilder:
    "Image Builder's documented minimum for build instances (its logs, components, tags on what it " +
    "creates); AWS keeps it in step with the service, which an inline copy would not be.",
  AmazonSSMManagedInstanceCore:
    "Image Builder drives the build through SSM Run Command: the SSM agent's own documented minimum.",
};

/** A semantic version that changes with the content (Image Builder versions are immutable). */
function contentVersion(...parts: string[]): string {
  const hash = createHash("sha256").update(parts.join("\0")).digest();
  return `1.${hash.readUInt16BE(0)}.${hash.readUInt16BE(2)}`;
}

/** Arches the pipeline builds for: those of label configs without their own AMI (none if disabled). */
export function pipelineArches(config: StackConfig): Arch[] {
  if (!config.imagePipeline.enabled) return [];
  return ARCHES.filter((arch) => Object.values(config.labelConfigs).some((l) => l.arch === arch && !l.amiId));
}

export class ImagePipeline extends pulumi.ComponentResource {
  /** SSM parameter name holding the current AMI id, per arch. */
  readonly amiParameterNames: Record<Arch, string>;
  /** The AMI parameters of the arches built here. */
  readonly parameterNamesInUse: string[];
  /** Build images of the first deploy, per arch; launch templates wait for them. */
  readonly initialImages: aws.imagebuilder.Image[] = [];

  constructor(
    name: string,
    args: {
      ctx: StackContext;
      subnetId: pulumi.Input<string>;
      securityGroupId: pulumi.Input<string>;
      /** Arches some label config builds for. */
      arches: Arch[];
    },
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("runner-fleet:index:ImagePipeline", name, {}, opts);
    const { ctx } = args;
    const { imagePipeline } = ctx.config;
    const names = parameterNames(ctx);
    this.amiParameterNames = { x64: names.ami("x64"), arm64: names.ami("arm64") };
    this.parameterNamesInUse = args.arches.map((arch) => this.amiParameterNames[arch]);

    const role = new aws.iam.Role(
      `${name}-build`,
      {
        description: `${ctx.prefix}: Image Builder build instances`,
        assumeRolePolicy: assumedBy("ec2.amazonaws.com"),
      },
      { parent: this },
    );
    const attachments = Object.entries(BUILD_INSTANCE_POLICIES).map(([policy, why]) => {
      recordReason(policy, why);
      return new aws.iam.RolePolicyAttachment(
        `${name}-build-${policy}`,
        { role: role.name, policyArn: pulumi.interpolate`arn:${ctx.partition}:iam::aws:policy/${policy}` },
        { parent: this },
      );
    });
    const profile = new aws.iam.InstanceProfile(
      `${name}-build`,
      { role: role.name },
      { parent: this, dependsOn: attachments },
    );

    const imageOptions: RunnerImageOptions = {
      runnerVersion: imagePipeline.runnerVersionPolicy === "pinned" ? imagePipeline.runnerVersion : "latest",
      runnerSha256: imagePipeline.runnerSha256
        ? { x86_64: imagePipeline.runnerSha256.x64, arm64: imagePipeline.runnerSha256.arm64 }
        : undefined,
      prePullImages: imagePipeline.prePullImages,
    };
    const documents = imageComponents();
    const components = documents.map(
      (doc) =>
        new aws.imagebuilder.Component(
          `${name}-${doc.key}`,
          {
            name: `${ctx.prefix}-${doc.key}`,
            platform: doc.platform,
            supportedOsVersions: doc.supportedOsVersions,
            version: doc.version,
            data: doc.data,
            description: doc.description.slice(0, 1024),
          },
          { parent: this },
        ),
    );

    const extraComponents = imagePipeline.extraComponents.map((componentArn) => ({ componentArn }));
    for (const arch of args.arches) {
      const parameters = documents.map((doc) => recipeParameters(doc.key, IMAGE_ARCH[arch], imageOptions));
      const recipe = new aws.imagebuilder.ImageRecipe(
        `${name}-${arch}`,
        {
          name: `${ctx.prefix}-${arch}`,
          // The recipe is immutable: a new version whenever its components or parameters change.
          version: contentVersion(
            arch,
            ...documents.map((d) => d.version),
            JSON.stringify(extraComponents),
            JSON.stringify(parameters),
          ),
          parentImage: parentImageArn(ctx.region, IMAGE_ARCH[arch]),
          components: [
            ...components.map((component, i) => ({ componentArn: component.arn, parameters: parameters[i] })),
            ...extraComponents,
          ],
          blockDeviceMappings: [
            {
              deviceName: "/dev/sda1",
              ebs: { volumeSize: 30, volumeType: "gp3", encrypted: "true", deleteOnTermination: "true" },
            },
          ],
          description: `runner-fleet ${arch} runner image`,
        },
        { parent: this },
      );
      const infrastructure = new aws.imagebuilder.InfrastructureConfiguration(
        `${name}-${arch}`,
        {
          name: `${ctx.prefix}-${arch}`,
          instanceProfileName: profile.name,
          instanceTypes: BUILD_INSTANCE_TYPES[arch],
          subnetId: args.subnetId,
          securityGroupIds: [args.securityGroupId],
          terminateInstanceOnFailure: true,
          instanceMetadataOptions: { httpTokens: "required", httpPutResponseHopLimit: 1 },
          // Not the stack tag: the reconciler would take a build instance for an orphaned runner.
          resourceTags: { "runner-fleet:image-build": ctx.stack },
        },
        { parent: this },
      );
      const distribution = new aws.imagebuilder.DistributionConfiguration(
        `${name}-${arch}`,
        {
          name: `${ctx.prefix}-${arch}`,
          distributions: [
            {
              region: ctx.region,
              amiDistributionConfiguration: {
                name: `${ctx.prefix}-${arch}-{{ imagebuilder:buildDate }}`,
                description: `runner-fleet ${ctx.stack} ${arch} runner image`,
                // ctx.tags holds the stack tag: the janitor finds and deregisters every AMI built by it,
                // and the launcher may launch only this account's AMIs that carry it. The snapshots get
                // IMAGE_BUILDER_SNAPSHOT_TAG from Image Builder itself.
                amiTags: { ...ctx.tags, "runner-fleet:arch": arch },
              },
              ssmParameterConfigurations: [
                { parameterName: this.amiParameterNames[arch], dataType: "aws:ec2:image" },
              ],
            },
          ],
        },
        { parent: this },
      );
      new aws.imagebuilder.ImagePipeline(
        `${name}-${arch}`,
        {
          name: `${ctx.prefix}-${arch}`,
          description: `Rebuilds the ${arch} runner image (OS updates, runner release)`,
          imageRecipeArn: recipe.arn,
          infrastructureConfigurationArn: infrastructure.arn,
          distributionConfigurationArn: distribution.arn,
          // Rebuild on schedule even when no component changed: the runner and OS packages did.
          schedule: {
            scheduleExpression: imagePipeline.schedule,
            pipelineExecutionStartCondition: "EXPRESSION_MATCH_ONLY",
          },
          status: "ENABLED",
        },
        { parent: this },
      );
      this.initialImages.push(
        new aws.imagebuilder.Image(
          `${name}-${arch}-initial`,
          {
            imageRecipeArn: recipe.arn,
            infrastructureConfigurationArn: infrastructure.arn,
            distributionConfigurationArn: distribution.arn,
          },
          { parent: this, customTimeouts: { create: "120m" } },
        ),
      );
    }
    this.registerOutputs({ amiParameterNames: this.amiParameterNames });
  }
}
