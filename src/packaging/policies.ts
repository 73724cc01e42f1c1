/**
 * Every Lambda's IAM statements, in one place so they can be read side by side. Each statement names
 * exactly the actions the function's code calls (a test checks them against the SDK commands in each
 * bundle) on the narrowest resources AWS supports for them, with conditions where resources cannot
 * be named in advance (instances: tag on create, and only instances tagged with this stack).
 */
import type * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
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
  launchQueue: aws.sqs.Queue;
  runnerRole: aws.iam.Role;
  launchTemplateArns: pulumi.Output<string>[];
  vpcId: pulumi.Output<string>;
  securityGroupArn: pulumi.Output<string>;
  /** SSM parameters the launch templates resolve their AMI from. */
  amiParameterNames: string[];
  /** SSM SecureString holding the GitHub credential (App key or PAT). */
  githubCredentialParameter: string;
}

const tableItems = (table: aws.dynamodb.Table) => [table.arn];
const tableAndIndexes = (table: aws.dynamodb.Table) => [table.arn, pulumi.interpolate`${table.arn}/index/*`];

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

/** Only resources (instances, images) carrying this stack's tag. */
function stackTagged(refs: FleetRefs) {
  return { StringEquals: { [`aws:ResourceTag/${STACK_TAG}`]: refs.ctx.stack } };
}

function terminateStackInstances(refs: FleetRefs): PolicyStatement {
  return {
    Sid: "TerminateStackInstances",
    Action: ["ec2:TerminateInstances"],
    Resource: [ec2Arn(refs, "instance/*")],
    Condition: stackTagged(refs),
  };
}

const describeInstances: PolicyStatement = {
  // Describe* calls cannot be scoped to resources.
  Sid: "DescribeInstances",
  Action: ["ec2:DescribeInstances"],
  Resource: ["*"],
};

function readLabelConfigs(refs: FleetRefs): PolicyStatement {
  const path = parameterNames(refs.ctx).labelConfigPath;
  return {
    Sid: "ReadLabelConfigs",
    Action: ["ssm:GetParametersByPath"],
    Resource: [ssmParameterArn(refs.ctx, path), ssmParameterArn(refs.ctx, `${path}/*`)],
  };
}

function sendToLaunchQueue(refs: FleetRefs): PolicyStatement {
  return { Sid: "EnqueueLaunches", Action: ["sqs:SendMessage"], Resource: [refs.launchQueue.arn] };
}

/** The jobs table and its indexes: read and write items, query, plus `extraActions`. */
function ledgerJobs(refs: FleetRefs, ...extraActions: string[]): PolicyStatement {
  return {
    Sid: "LedgerJobs",
    Action: [
      "dynamodb:GetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:Query",
      ...extraActions,
    ],
    Resource: tableAndIndexes(refs.jobsTable),
  };
}

/** Statements for reading SecureString parameters: exactly these names, decrypted via SSM only. */
function readSecretParameters(ctx: StackContext, names: pulumi.Input<string>[]): PolicyStatement[] {
  if (names.length === 0) return [];
  return [
    {
      Sid: "ReadSecretParameters",
      Action: ["ssm:GetParameter"],
      Resource: names.map((n) => ssmParameterArn(ctx, n)),
    },
    {
      // The parameters use the account's AWS-managed key (alias/aws/ssm); decrypt only through SSM.
      Sid: "DecryptViaSsm",
      Action: ["kms:Decrypt"],
      Resource: [arnOf(ctx, "kms", "key/*")],
      Condition: {
        StringEquals: { "kms:ViaService": `ssm.${ctx.region}.amazonaws.com` },
        "ForAnyValue:StringEquals": { "kms:ResourceAliases": ["alias/aws/ssm"] },
      },
    },
  ];
}

export function webhookStatements(refs: FleetRefs): PolicyStatement[] {
  return [
    {
      Sid: "RecordJobs",
      Action: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
      Resource: tableItems(refs.jobsTable),
    },
    {
      // in_progress follow-up: the jobs launched on the instance whose runner took this job.
      Sid: "FindJobsByInstance",
      Action: ["dynamodb:Query"],
      Resource: [pulumi.interpolate`${refs.jobsTable.arn}/index/byInstance`],
    },
    sendToLaunchQueue(refs),
    ...readSecretParameters(refs.ctx, [parameterNames(refs.ctx).webhookSecret]),
  ];
}

export function launcherStatements(refs: FleetRefs): PolicyStatement[] {
  const { ctx } = refs;
  return [
    ledgerJobs(refs),
    {
      Sid: "HandOffJitConfigs",
      Action: ["dynamodb:PutItem"],
      Resource: tableItems(refs.handoffTable),
    },
    {
      // Receive, delete and read attributes: the event source mapping (it acts with this role);
      // change visibility: the launcher delays a job it cannot serve yet.
      Sid: "ConsumeLaunchQueue",
      Action: [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:ChangeMessageVisibility",
      ],
      Resource: [refs.launchQueue.arn],
    },
    readLabelConfigs(refs),
    ...ifAny(refs.amiParameterNames, (names) => ({
      // The launch templates' `resolve:ssm:` image ids are resolved with the caller's permissions.
      Sid: "ResolveRunnerAmis",
      Action: ["ssm:GetParameters"],
      Resource: names.map((n) => ssmParameterArn(ctx, n)),
    })),
    {
      Sid: "LaunchFromStackTemplates",
      Action: ["ec2:CreateFleet", "ec2:RunInstances"],
      Resource: [
        ...refs.launchTemplateArns,
        refs.securityGroupArn,
        ec2RegionArn(refs, "image/*"),
        ec2Arn(refs, "volume/*"),
        ec2Arn(refs, "network-interface/*"),
        ec2Arn(refs, "spot-instances-request/*"),
      ],
    },
    {
      // Subnet ids come from the VPC at deploy time; any subnet of the stack's VPC.
      Sid: "LaunchIntoStackVpc",
      Action: ["ec2:CreateFleet", "ec2:RunInstances"],
      Resource: [ec2Arn(refs, "subnet/*")],
      Condition: { StringEquals: { "ec2:Vpc": ec2Arn(refs, pulumi.interpolate`vpc/${refs.vpcId}`) } },
    },
    {
      // What the request creates must carry this stack's tag (tag on create).
      Sid: "LaunchStackTaggedInstances",
      Action: ["ec2:CreateFleet", "ec2:RunInstances"],
      Resource: [ec2Arn(refs, "instance/*"), ec2Arn(refs, "fleet/*")],
      Condition: { StringEquals: { [`aws:RequestTag/${STACK_TAG}`]: ctx.stack } },
    },
    {
      Sid: "TagOnCreate",
      Action: ["ec2:CreateTags"],
      Resource: [
        ec2Arn(refs, "instance/*"),
        ec2Arn(refs, "fleet/*"),
        ec2Arn(refs, "volume/*"),
        ec2Arn(refs, "network-interface/*"),
        ec2Arn(refs, "spot-instances-request/*"),
      ],
      Condition: { StringEquals: { "ec2:CreateAction": ["CreateFleet", "RunInstances"] } },
    },
    terminateStackInstances(refs),
    describeInstances,
    {
      Sid: "PassRunnerRole",
      Action: ["iam:PassRole"],
      Resource: [refs.runnerRole.arn],
      Condition: { StringEquals: { "iam:PassedToService": "ec2.amazonaws.com" } },
    },
    {
      // EC2 Fleet and spot need their service-linked roles; created on first use if missing.
      Sid: "FleetServiceLinkedRoles",
      Action: ["iam:CreateServiceLinkedRole"],
      Resource: [
        pulumi.interpolate`arn:${ctx.partition}:iam::${ctx.accountId}:role/aws-service-role/ec2fleet.amazonaws.com/AWSServiceRoleForEC2Fleet`,
        pulumi.interpolate`arn:${ctx.partition}:iam::${ctx.accountId}:role/aws-service-role/spot.amazonaws.com/AWSServiceRoleForEC2Spot`,
      ],
      Condition: { StringEquals: { "iam:AWSServiceName": ["ec2fleet.amazonaws.com", "spot.amazonaws.com"] } },
    },
    ...readSecretParameters(ctx, [refs.githubCredentialParameter]),
  ];
}

export function reconcilerStatements(refs: FleetRefs): PolicyStatement[] {
  return [
    ledgerJobs(refs, "dynamodb:Scan"),
    {
      // Progress reports and leftovers of instances that are gone.
      Sid: "HandOffReports",
      Action: ["dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:Scan"],
      Resource: tableItems(refs.handoffTable),
    },
    sendToLaunchQueue(refs),
    readLabelConfigs(refs),
    describeInstances,
    terminateStackInstances(refs),
    ...readSecretParameters(refs.ctx, [refs.githubCredentialParameter]),
  ];
}

export function ec2EventsStatements(refs: FleetRefs): PolicyStatement[] {
  return [
    ledgerJobs(refs),
    {
      Sid: "HandOffCleanup",
      Action: ["dynamodb:DeleteItem"],
      Resource: tableItems(refs.handoffTable),
    },
    sendToLaunchQueue(refs),
    // An interrupted or lost instance of the stack is terminated right away.
    terminateStackInstances(refs),
  ];
}

export function janitorStatements(refs: FleetRefs): PolicyStatement[] {
  const { ctx } = refs;
  return [
    {
      Sid: "DescribeFleetLeftovers",
      Action: ["ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeSnapshots"],
      Resource: ["*"],
    },
    terminateStackInstances(refs),
    {
      Sid: "DeregisterStackImages",
      Action: ["ec2:DeregisterImage"],
      Resource: [ec2RegionArn(refs, "image/*")],
      Condition: stackTagged(refs),
    },
    {
      // Only the snapshots behind the stack's AMIs are deleted (the code takes them from the images);
      // Image Builder does not tag them, so IAM cannot narrow this further than the region.
      Sid: "DeleteStackImageSnapshots",
      Action: ["ec2:DeleteSnapshot"],
      Resource: [ec2RegionArn(refs, "snapshot/*")],
    },
    ...ifAny(refs.amiParameterNames, (names) => ({
      // Image Builder's distribution created these parameters, outside the program's state.
      Sid: "DeleteAmiParameters",
      Action: ["ssm:DeleteParameter"],
      Resource: names.map((n) => ssmParameterArn(ctx, n)),
    })),
    ...readSecretParameters(ctx, [refs.githubCredentialParameter]),
  ];
}
