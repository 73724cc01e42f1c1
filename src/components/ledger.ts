/**
 * The job ledger and the launch queue: the DynamoDB jobs table (keys and indexes from
 * lambda/shared/tables.ts), the JIT config hand-off table, and the SQS launch queue with its DLQ.
 * Names come from the stack name only, so no config change ever replaces them.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { HANDOFF_TABLE, JOBS_TABLE, POOL_TABLE, type TableSchema } from "../../lambda/shared/tables";
import type { StackContext } from "../config/stack-context";
import { LAUNCHER_TIMEOUT_SECONDS } from "./launcher-tuning";

/**
 * Receives before a launch message goes to the DLQ. The launcher re-delays a message it cannot serve
 * yet (runner limits, no capacity, throttling) by at least 5 s each time, and fails the job itself
 * once the queue timeout passes, so a healthy waiting job may be received up to queue timeout / 5 s
 * times; only a message the launcher keeps failing on outright should reach the DLQ. SQS allows 1000.
 */
export function launchMaxReceiveCount(queueTimeoutMinutes: number): number {
  const MIN_REDELAY_SECONDS = 5;
  return Math.min(1000, Math.ceil((queueTimeoutMinutes * 60) / MIN_REDELAY_SECONDS) + 10);
}

function tableArgs(
  schema: TableSchema,
): Pick<
  aws.dynamodb.TableArgs,
  "hashKey" | "rangeKey" | "attributes" | "ttl" | "globalSecondaryIndexes" | "billingMode"
> {
  return {
    billingMode: "PAY_PER_REQUEST",
    hashKey: schema.hashKey,
    rangeKey: schema.rangeKey,
    attributes: schema.attributes.map((name) => ({ name, type: "S" })),
    ttl: { attributeName: schema.ttlAttribute, enabled: true },
    globalSecondaryIndexes: schema.indexes.length
      ? schema.indexes.map((index) => ({
          name: index.name,
          hashKey: index.hashKey,
          rangeKey: index.rangeKey,
          projectionType: "ALL",
        }))
      : undefined,
  };
}

export class Ledger extends pulumi.ComponentResource {
  readonly jobsTable: aws.dynamodb.Table;
  readonly handoffTable: aws.dynamodb.Table;
  readonly poolTable: aws.dynamodb.Table;
  readonly launchQueue: aws.sqs.Queue;
  readonly deadLetterQueue: aws.sqs.Queue;

  constructor(name: string, args: { ctx: StackContext }, opts?: pulumi.ComponentResourceOptions) {
    super("runner-fleet:index:Ledger", name, {}, opts);
    const { prefix } = args.ctx;
    this.jobsTable = new aws.dynamodb.Table(
      `${name}-jobs`,
      {
        name: `${prefix}-jobs`,
        ...tableArgs(JOBS_TABLE),
        pointInTimeRecovery: { enabled: true },
        serverSideEncryption: { enabled: true },
      },
      { parent: this },
    );
    this.handoffTable = new aws.dynamodb.Table(
      `${name}-handoff`,
      {
        name: `${prefix}-handoff`,
        ...tableArgs(HANDOFF_TABLE),
        // JIT configs are credentials: encrypted with the AWS-managed KMS key, not only at rest by default.
        serverSideEncryption: { enabled: true },
      },
      { parent: this },
    );
    this.poolTable = new aws.dynamodb.Table(
      `${name}-pool`,
      { name: `${prefix}-pool`, ...tableArgs(POOL_TABLE), serverSideEncryption: { enabled: true } },
      { parent: this },
    );
    this.deadLetterQueue = new aws.sqs.Queue(
      `${name}-launch-dlq`,
      { name: `${prefix}-launch-dlq`, sqsManagedSseEnabled: true, messageRetentionSeconds: 14 * 24 * 3600 },
      { parent: this },
    );
    this.launchQueue = new aws.sqs.Queue(
      `${name}-launch`,
      {
        name: `${prefix}-launch`,
        sqsManagedSseEnabled: true,
        visibilityTimeoutSeconds: 6 * LAUNCHER_TIMEOUT_SECONDS,
        // Jobs wait for capacity at most the queue timeout; the ledger, not the queue, is the record.
        messageRetentionSeconds: 4 * 24 * 3600,
        // The launcher re-delays a message it cannot serve yet (limits, no capacity); only a message
        // that keeps failing outright should reach the DLQ.
        redrivePolicy: this.deadLetterQueue.arn.apply((arn) =>
          JSON.stringify({
            deadLetterTargetArn: arn,
            maxReceiveCount: launchMaxReceiveCount(args.ctx.config.limits.queueTimeoutMinutes),
          }),
        ),
      },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
