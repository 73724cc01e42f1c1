/**
 * Every Lambda's IAM statements, in one place so they can be read side by side. Each statement names
 * exactly the actions the function's code calls (a test checks them against the SDK commands in each
 * bundle) on the narrowest resources AWS supports for them (a test checks every action, ARN and
 * condition key against AWS's service authorization data), and says in `why` what AWS offers no
 * narrower: the docs' IAM table is generated from it.
 */
import type * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { TAGS } from "../../lambda/core/stack-identity";
import { JOBS_TABLE } from "../../lambda/shared/tables";
import { IMAGE_BUILDER_SNAPSHOT_TAG } from "../components/image-pipeline";
import {
  arnOf,
  parameterNames,
  STACK_TAG,
  type StackContext,
  ssmParameterArn,
} from "../config/stack-context";
import type { PolicyStatement } from "./iam";

export interface FleetRefs {
  ctx: StackContext;
  jobsTable: aws.dynamodb.Table;
  handoffTable: aws.dynamodb.Table;
  /** The stopped pools' members (lambda/adapters/pool-members.ts). */
  poolTable: aws.dynamodb.Table;
  launchQueue: aws.sqs.Queue;
  runnerRole: aws.iam.Role;
  launchTemplateArns: pulumi.Output<string>[];
  /** The subnets fleet requests use (SUBNET_IDS). */
  subnetIds: pulumi.Output<string[]>;
  securityGroupArn: pulumi.Output<string>;
  /** SSM parameters the launch templates resolve their AMI from (empty without the pipeline). */
  amiParameterNames: string[];
  /** SSM SecureString holding the GitHub credential (App key or PAT). */
  githubCredentialParameter: string;
}

/** A statement over these resources, or none when there are none (IAM refuses an empty Resource). */
function ifAny<T>(items: T[], statement: (items: T[]) => PolicyStatement): PolicyStatement[] {
  return items.length > 0 ? [statement(items)] : [];
}

function ec2Arn(refs: FleetRefs, resource: pulumi.Input<string>) {
  return arnOf(refs.ctx, "ec2", resource);
}

/** An EC2 resource ARN without an account (images and snapshots, AWS's own included). */
function ec2RegionArn(refs: FleetRefs, resource: string) {
  return pulumi.interpolate`arn:${refs.ctx.partition}:ec2:${refs.ctx.region}::${resource}`;
}

/** Only resources (instances, images, snapshots) carrying this stack's tag. */
function stackTagged(refs: FleetRefs) {
  return { StringEquals: { [`aws:ResourceTag/${STACK_TAG}`]: refs.ctx.stack } };
}

/** Only the stack's stopped-pool members: the stack tag, and a pool tag (any config's) present. */
function stackPoolMembers(refs: FleetRefs) {
  return { ...stackTagged(refs), Null: { [`aws:ResourceTag/${TAGS.poolMember}`]: "false" } };
}

function terminateStackInstances(refs: FleetRefs): PolicyStatement {
  return {
    Sid: "TerminateStackInstances",
    Action: ["ec2:TerminateInstances"],
    Resource: [ec2Arn(refs, "instance/*")],
    Condition: stackTagged(refs),
    why: "Instance ids are not known in advance; only instances carrying the stack tag (set at launch).",
  };
}

function describeInRegion(refs: FleetRefs, sid: string, actions: string[]): PolicyStatement {
  return {
    Sid: sid,
    Action: actions,
    Resource: ["*"],
    Condition: { StringEquals: { "aws:RequestedRegion": refs.ctx.region } },
    why: "Describe calls have no resource type in AWS (resource `*` only); limited to the stack's region.",
  };
}

function readLabelConfigs(refs: FleetRefs): PolicyStatement {
  const path = parameterNames(refs.ctx).labelConfigPath;
  return {
    Sid: "ReadLabelConfigs",
    Action: ["ssm:GetParametersByPath"],
    Resource: [ssmParameterArn(refs.ctx, path), ssmParameterArn(refs.ctx, `${path}/*`)],
    why: "The stack's label-config path only.",
  };
}

function sendToLaunchQueue(refs: FleetRefs): PolicyStatement {
  return {
    Sid: "EnqueueLaunches",
    Action: ["sqs:SendMessage"],
    Resource: [refs.launchQueue.arn],
    why: "The stack's launch queue only.",
  };
}

/** The jobs table: item reads and writes on the table, queries on its two indexes, plus `extraActions`. */
function ledgerJobs(refs: FleetRefs): PolicyStatement[] {
  return [
    {
      Sid: "LedgerJobs",
      Action: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
      Resource: [refs.jobsTable.arn],
      why:
        "The stack's jobs table only. Keys are GitHub job ids (and the ledger's reserved items), not " +
        "known to IAM in advance, so no dynamodb:LeadingKeys condition fits.",
    },
    {
      Sid: "LedgerQueries",
      Action: ["dynamodb:Query"],
      Resource: JOBS_TABLE.indexes.map(
        (index) => pulumi.interpolate`${refs.jobsTable.arn}/index/${index.name}`,
      ),
      why: "The jobs table's two indexes (by state, by instance); never the table itself.",
    },
  ];
}

/** Statements for reading SecureString parameters: exactly these names, decrypted via SSM only. */
function readSecretParameters(ctx: StackContext, names: pulumi.Input<string>[]): PolicyStatement[] {
  if (names.length === 0) return [];
  return [
    {
      Sid: "ReadSecretParameters",
      Action: ["ssm:GetParameter"],
      Resource: names.map((n) => ssmParameterArn(ctx, n)),
      why: "Exactly the secret parameters this function reads.",
    },
    {
      Sid: "DecryptViaSsm",
      Action: ["kms:Decrypt"],
      Resource: [arnOf(ctx, "kms", "key/*")],
      Condition: {
        StringEquals: { "kms:ViaService": `ssm.${ctx.region}.amazonaws.com` },
        "ForAnyValue:StringEquals": { "kms:ResourceAliases": ["alias/aws/ssm"] },
      },
      why:
        "The parameters use the account's AWS-managed SSM key, whose id AWS creates and the program " +
        "cannot name: any key of the account, but only the one aliased alias/aws/ssm, and only through SSM.",
    },
  ];
}

type Conditions = NonNullable<PolicyStatement["Condition"]>;

/** AMIs label configs name themselves (`amiId`), instead of the pipeline's. */
function configuredAmiIds(ctx: StackContext): string[] {
  return [...new Set(Object.values(ctx.config.labelConfigs).flatMap((l) => (l.amiId ? [l.amiId] : [])))];
}

/**
 * The AMIs a launch may use: the pipeline's (owned by this account AND tagged with the stack: another
 * account could tag its public AMI alike) and those label configs name. `fromTemplates`: RunInstances'
 * binding to the stack's templates (CreateFleet has no such key for images).
 */
function imageStatements(
  refs: FleetRefs,
  action: "CreateFleet" | "RunInstances",
  fromTemplates?: Conditions,
) {
  const { ctx } = refs;
  const sid = action === "CreateFleet" ? "Fleet" : "Run";
  const pipelineImages = { "ec2:Owner": ctx.accountId, [`aws:ResourceTag/${STACK_TAG}`]: ctx.stack };
  return [
    ...ifAny(refs.amiParameterNames, () => ({
      Sid: `${sid}PipelineImages`,
      Action: [`ec2:${action}`],
      Resource: [ec2RegionArn(refs, "image/*")],
      Condition: { ...fromTemplates, StringEquals: pipelineImages },
      why: `The pipeline's AMIs (new ids every build): only images of this account that carry the stack tag${fromTemplates ? ", launched from the stack's templates" : ""}.`,
    })),
    ...ifAny(configuredAmiIds(ctx), (ids) => ({
      Sid: `${sid}ConfiguredImages`,
      Action: [`ec2:${action}`],
      Resource: ids.map((id) => ec2RegionArn(refs, `image/${id}`)),
      ...(fromTemplates ? { Condition: fromTemplates } : {}),
      why: `Exactly the AMIs label configs name (\`amiId\`; they may belong to another account)${fromTemplates ? ", launched from the stack's templates" : ""}.`,
    })),
  ];
}

/**
 * What a fleet request may name and create. CreateFleet is checked against the resources its request
 * names (template, override subnets, the fleet and instances it tags); EC2 then launches the instances
 * with RunInstances, checked against every resource of the launch (runInstancesStatements).
 */
function fleetStatements(refs: FleetRefs, subnets: pulumi.Output<string[]>): PolicyStatement[] {
  return [
    {
      Sid: "FleetFromStackTemplates",
      Action: ["ec2:CreateFleet"],
      Resource: refs.launchTemplateArns,
      why: "A fleet request names its launch template: only the stack's templates (one per label config).",
    },
    {
      Sid: "FleetOfStackTaggedInstances",
      Action: ["ec2:CreateFleet"],
      Resource: [ec2Arn(refs, "fleet/*"), ec2Arn(refs, "instance/*")],
      Condition: { StringEquals: { [`aws:RequestTag/${STACK_TAG}`]: refs.ctx.stack } },
      why: "The fleet and its instances do not exist yet: they must be tagged with the stack at creation.",
    },
    {
      Sid: "FleetInStackSubnets",
      Action: ["ec2:CreateFleet"],
      Resource: subnets,
      why: "The subnets the request's overrides name: exactly the stack's runner subnets.",
    },
    ...imageStatements(refs, "CreateFleet"),
    {
      Sid: "FleetVolumes",
      Action: ["ec2:CreateFleet"],
      Resource: [ec2Arn(refs, "volume/*")],
      why:
        "The template's volumes, bound to the stack's templates under RunInstances; CreateFleet offers " +
        "only request-tag keys for them and a fleet request cannot tag volumes.",
    },
  ];
}

/**
 * Every resource of a launch from a launch template carries `ec2:LaunchTemplate` (the template's ARN);
 * a launch without a template carries none, so nothing below allows it. `spot`: spot launches too.
 */
function runInstancesStatements(
  refs: FleetRefs,
  subnets: pulumi.Output<string[]>,
  spot: boolean,
): PolicyStatement[] {
  const fromTemplates = { ArnEquals: { "ec2:LaunchTemplate": refs.launchTemplateArns } };
  return [
    {
      Sid: "RunFromStackTemplates",
      Action: ["ec2:RunInstances"],
      Resource: [
        ...refs.launchTemplateArns,
        refs.securityGroupArn,
        ec2Arn(refs, "volume/*"),
        ec2Arn(refs, "network-interface/*"),
        ec2RegionArn(refs, "snapshot/*"),
      ],
      Condition: fromTemplates,
      why:
        "Only launches from the stack's templates: the templates, the runner security group, and the " +
        "volumes, network interfaces and AMI snapshots such a launch creates or reads. " +
        "ec2:IsLaunchTemplateResource is not required: the fleet's overrides replace the subnet, and " +
        "every resource a request could substitute is pinned here anyway (no key pair is allowed).",
    },
    {
      Sid: "RunStackTaggedInstances",
      Action: ["ec2:RunInstances"],
      Resource: [ec2Arn(refs, "instance/*")],
      Condition: { ...fromTemplates, StringEquals: { [`aws:RequestTag/${STACK_TAG}`]: refs.ctx.stack } },
      why:
        "Instances from the stack's templates, tagged with the stack at creation. User data is not " +
        "a resource: no condition key covers it (a RunInstances request may override the template's).",
    },
    {
      Sid: "RunInStackSubnets",
      Action: ["ec2:RunInstances"],
      Resource: subnets,
      Condition: fromTemplates,
      why: "Exactly the stack's runner subnets, from the stack's templates.",
    },
    ...imageStatements(refs, "RunInstances", fromTemplates),
    ...(spot
      ? [
          {
            Sid: "RunSpotRequests",
            Action: ["ec2:RunInstances"],
            Resource: [ec2Arn(refs, "spot-instances-request/*")],
            why:
              "Spot requests of a spot launch. Nothing narrower: their only condition keys are request tags, " +
              "and an instant fleet cannot tag spot requests. Useless alone: the instance, image and " +
              "subnet of the same launch are checked above.",
          },
        ]
      : []),
  ];
}

/**
 * Launches: the fleet request, the launch it makes, tags on create, the runner role and the SLRs.
 * `spot: false` (the pools' on-demand refill): no spot request, no spot service-linked role.
 */
function launchStatements(refs: FleetRefs, { spot = true }: { spot?: boolean } = {}): PolicyStatement[] {
  const { ctx } = refs;
  const subnets = pulumi
    .all([refs.subnetIds, ctx.partition, ctx.accountId])
    .apply(([ids, partition, account]) =>
      ids.map((id) => `arn:${partition}:ec2:${ctx.region}:${account}:subnet/${id}`),
    );
  const serviceLinkedRole = (service: string, name: string) =>
    pulumi.interpolate`arn:${ctx.partition}:iam::${ctx.accountId}:role/aws-service-role/${service}/${name}`;
  return [
    ...fleetStatements(refs, subnets),
    ...runInstancesStatements(refs, subnets, spot),
    {
      Sid: "TagOnCreate",
      Action: ["ec2:CreateTags"],
      Resource: ["fleet/*", "instance/*", "volume/*", "network-interface/*"].map((r) => ec2Arn(refs, r)),
      Condition: {
        StringEquals: {
          "ec2:CreateAction": ["CreateFleet", "RunInstances"],
          [`aws:RequestTag/${STACK_TAG}`]: ctx.stack,
        },
      },
      why: "Tags only while creating (fleet, instances, their volumes and interfaces), and only with the stack tag.",
    },
    {
      Sid: "PassRunnerRole",
      Action: ["iam:PassRole"],
      Resource: [refs.runnerRole.arn],
      Condition: { StringEquals: { "iam:PassedToService": "ec2.amazonaws.com" } },
      why: "The runner role only, and only to EC2 (the templates' instance profile).",
    },
    spot
      ? {
          Sid: "FleetServiceLinkedRoles",
          Action: ["iam:CreateServiceLinkedRole"],
          Resource: [
            serviceLinkedRole("ec2fleet.amazonaws.com", "AWSServiceRoleForEC2Fleet"),
            serviceLinkedRole("spot.amazonaws.com", "AWSServiceRoleForEC2Spot"),
          ],
          Condition: {
            StringEquals: { "iam:AWSServiceName": ["ec2fleet.amazonaws.com", "spot.amazonaws.com"] },
          },
          why: "EC2 Fleet and spot create their service-linked roles on first use: exactly those two.",
        }
      : {
          Sid: "FleetServiceLinkedRole",
          Action: ["iam:CreateServiceLinkedRole"],
          Resource: [serviceLinkedRole("ec2fleet.amazonaws.com", "AWSServiceRoleForEC2Fleet")],
          Condition: { StringEquals: { "iam:AWSServiceName": "ec2fleet.amazonaws.com" } },
          why: "EC2 Fleet creates its service-linked role on first use: exactly that one.",
        },
  ];
}

export function webhookStatements(refs: FleetRefs): PolicyStatement[] {
  return [
    {
      Sid: "RecordJobs",
      Action: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
      Resource: [refs.jobsTable.arn],
      why: "The stack's jobs table only; keys are GitHub job ids, unknown in advance.",
    },
    {
      Sid: "FindJobsByInstance",
      Action: ["dynamodb:Query"],
      Resource: [pulumi.interpolate`${refs.jobsTable.arn}/index/byInstance`],
      why: "in_progress follow-up: the jobs launched on the instance whose runner took this job; one index.",
    },
    sendToLaunchQueue(refs),
    ...readSecretParameters(refs.ctx, [parameterNames(refs.ctx).webhookSecret]),
  ];
}

/** PutItem on the hand-off table, only under keys a runner instance can read (its role id, an instance id). */
function putHandoffItems(refs: FleetRefs, sid: string, why: string): PolicyStatement {
  return {
    Sid: sid,
    Action: ["dynamodb:PutItem"],
    Resource: [refs.handoffTable.arn],
    Condition: {
      "ForAllValues:StringLike": {
        "dynamodb:LeadingKeys": [pulumi.interpolate`${refs.runnerRole.uniqueId}:i-*`],
      },
    },
    why,
  };
}

export function launcherStatements(refs: FleetRefs): PolicyStatement[] {
  const { ctx } = refs;
  return [
    ...ledgerJobs(refs),
    putHandoffItems(
      refs,
      "HandOffJitConfigs",
      "The hand-off table, and only keys a runner instance can read (`<runner role id>:i-…`); the " +
        "instance ids are those just launched, unknown in advance.",
    ),
    {
      Sid: "ConsumeLaunchQueue",
      Action: [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
      ],
      Resource: [refs.launchQueue.arn],
      why:
        "The launch queue only. Receive, delete, attributes: the event source mapping acts with this " +
        "role; change visibility: the launcher delays a job it cannot serve yet.",
    },
    readLabelConfigs(refs),
    ...ifAny(refs.amiParameterNames, (names) => ({
      Sid: "ResolveRunnerAmis",
      Action: ["ssm:GetParameters"],
      Resource: names.map((n) => ssmParameterArn(ctx, n)),
      why: "The launch templates' `resolve:ssm:` image ids are resolved with the caller's permissions.",
    })),
    ...launchStatements(refs),
    ...launcherPoolStatements(refs),
    terminateStackInstances(refs),
    describeInRegion(refs, "DescribeInstances", ["ec2:DescribeInstances"]),
    ...readSecretParameters(ctx, [refs.githubCredentialParameter]),
  ];
}

/** A job on a stopped pool member: find and claim the member, start its instance. */
function launcherPoolStatements(refs: FleetRefs): PolicyStatement[] {
  return [
    {
      Sid: "ClaimPoolMembers",
      Action: ["dynamodb:Query", "dynamodb:UpdateItem"],
      Resource: [refs.poolTable.arn],
      why:
        "The stack's pool table only: a config's members (Query) and a member's conditional claim or " +
        "release (UpdateItem). Keys are config names and instance ids launched later; no index.",
    },
    {
      Sid: "StartPoolMembers",
      Action: ["ec2:StartInstances"],
      Resource: [ec2Arn(refs, "instance/*")],
      Condition: stackPoolMembers(refs),
      why:
        "Member ids are not known in advance; only instances carrying the stack tag and a pool tag " +
        "(set at launch by the pool's refill), so no runner or other instance can be started.",
    },
  ];
}

export function reconcilerStatements(refs: FleetRefs): PolicyStatement[] {
  return [
    ...ledgerJobs(refs),
    {
      Sid: "HandOffReports",
      Action: ["dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:Scan"],
      Resource: [refs.handoffTable.arn],
      why: "The hand-off table only: progress reports and leftovers of instances that are gone.",
    },
    sendToLaunchQueue(refs),
    readLabelConfigs(refs),
    describeInRegion(refs, "DescribeInstances", ["ec2:DescribeInstances"]),
    terminateStackInstances(refs),
    ...readSecretParameters(refs.ctx, [refs.githubCredentialParameter]),
    ...reconcilerPoolStatements(refs),
  ];
}

/** Tending the stopped pools: refill (an on-demand fleet), warm-up markers, stop, rotation by AMI. */
function reconcilerPoolStatements(refs: FleetRefs): PolicyStatement[] {
  const { ctx } = refs;
  return [
    {
      Sid: "TendPoolMembers",
      Action: ["dynamodb:Scan", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
      Resource: [refs.poolTable.arn],
      why:
        "The stack's pool table only: every member of every config (Scan: a config removed from the " +
        "stack still has members to retire), a new member's item, its conditional state changes, and " +
        "the item of a member that is gone. Keys are instance ids launched later.",
    },
    putHandoffItems(
      refs,
      "HandOffWarmupMarkers",
      "A new member's warm-up marker, under the only keys a runner instance can read " +
        "(`<runner role id>:i-…`); the instance ids are those just launched.",
    ),
    ...launchStatements(refs, { spot: false }),
    {
      Sid: "StopPoolMembers",
      Action: ["ec2:StopInstances"],
      Resource: [ec2Arn(refs, "instance/*")],
      Condition: stackPoolMembers(refs),
      why:
        "Member ids are not known in advance; only instances carrying the stack tag and a pool tag " +
        "(set at launch by the refill), so no runner running a job can be stopped.",
    },
    ...ifAny(refs.amiParameterNames, (names) => ({
      Sid: "ReadRunnerAmis",
      Action: ["ssm:GetParameter", "ssm:GetParameters"],
      Resource: names.map((n) => ssmParameterArn(ctx, n)),
      why:
        "Exactly the AMI parameters the pipeline writes: the current AMI, which members are rotated " +
        "against (GetParameter), and the launch templates' `resolve:ssm:` image ids, resolved with " +
        "the caller's permissions when the refill launches (GetParameters).",
    })),
  ];
}

export function ec2EventsStatements(refs: FleetRefs): PolicyStatement[] {
  return [
    ...ledgerJobs(refs),
    {
      Sid: "HandOffCleanup",
      Action: ["dynamodb:DeleteItem"],
      Resource: [refs.handoffTable.arn],
      why: "The hand-off table only: the item of an instance that stopped.",
    },
    sendToLaunchQueue(refs),
    terminateStackInstances(refs),
  ];
}

export function janitorStatements(refs: FleetRefs): PolicyStatement[] {
  const { ctx } = refs;
  const snapshots = [ec2RegionArn(refs, "snapshot/*")];
  return [
    describeInRegion(refs, "DescribeFleetLeftovers", [
      "ec2:DescribeInstances",
      "ec2:DescribeImages",
      "ec2:DescribeSnapshots",
    ]),
    terminateStackInstances(refs),
    {
      Sid: "DeregisterStackImages",
      Action: ["ec2:DeregisterImage"],
      Resource: [ec2RegionArn(refs, "image/*")],
      Condition: stackTagged(refs),
      why: "AMI ids are made by each pipeline run; only AMIs carrying the stack tag (the pipeline's amiTags).",
    },
    {
      Sid: "DeleteImageBuilderSnapshots",
      Action: ["ec2:DeleteSnapshot"],
      Resource: snapshots,
      Condition: {
        StringEquals: {
          [`aws:ResourceTag/${IMAGE_BUILDER_SNAPSHOT_TAG.key}`]: IMAGE_BUILDER_SNAPSHOT_TAG.value,
        },
      },
      why:
        "The snapshots behind the stack's AMIs. Image Builder tags them only `CreatedBy: EC2 Image " +
        "Builder` (the AMI tags, and so the stack tag, are not documented to reach them) and no condition " +
        "key links a snapshot to its AMI, so nothing narrower than the account's Image Builder snapshots " +
        "exists; EC2 refuses to delete a snapshot a registered AMI still uses.",
    },
    {
      Sid: "DeleteStackSnapshots",
      Action: ["ec2:DeleteSnapshot"],
      Resource: snapshots,
      Condition: stackTagged(refs),
      why: "Snapshots carrying the stack tag.",
    },
    ...ifAny(refs.amiParameterNames, (names) => ({
      Sid: "DeleteAmiParameters",
      Action: ["ssm:DeleteParameter"],
      Resource: names.map((n) => ssmParameterArn(ctx, n)),
      why: "Exactly the AMI parameters Image Builder's distribution wrote, outside the program's state.",
    })),
    ...readSecretParameters(ctx, [refs.githubCredentialParameter]),
  ];
}
