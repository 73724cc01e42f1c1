/**
 * Helpers shared by the lifecycle tests (ec2-events, reconciler, stolen runners, simulated day):
 * job items as the webhook writes them, EC2 events in EventBridge's shape (from the EC2 user guide),
 * and ledger reads.
 */
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { Ec2Event } from "../lambda/ec2-events";
import type { JobRecord, LaunchMessage } from "../lambda/shared/job";
import type { Sandbox } from "./sandbox";

export function jobRecord(jobId: string, over: Partial<JobRecord> = {}, now = new Date()): JobRecord {
  const t = now.toISOString();
  return {
    jobId,
    state: "queued",
    configName: "linux-x64",
    labels: ["self-hosted", "linux", "x64"],
    repo: "acme/widgets",
    owner: "acme",
    runId: 4242,
    runAttempt: 1,
    githubHost: "github.com",
    deliveryId: `delivery-${jobId}`,
    lastAction: "queued",
    createdAt: t,
    updatedAt: t,
    queuedAt: t,
    enqueuedAt: t,
    expiresAt: Math.floor(now.getTime() / 1000) + 86_400,
    ...over,
  };
}

/** "EC2 Spot Instance Interruption Warning", as EventBridge delivers it. */
export function interruptionWarning(instanceId: string, time = new Date(), region = "us-east-1"): Ec2Event {
  return {
    version: "0",
    id: "1e5527d7-bb36-4607-3370-4164db56a40e",
    "detail-type": "EC2 Spot Instance Interruption Warning",
    source: "aws.ec2",
    account: "123456789012",
    time: time.toISOString().replace(/\.\d{3}Z$/, "Z"),
    region,
    resources: [`arn:aws:ec2:${region}a:instance/${instanceId}`],
    detail: { "instance-id": instanceId, "instance-action": "terminate" },
  };
}

/** "EC2 Instance State-change Notification", as EventBridge delivers it. */
export function stateChange(
  instanceId: string,
  state: string,
  time = new Date(),
  region = "us-east-1",
): Ec2Event {
  return {
    version: "0",
    id: "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "EC2 Instance State-change Notification",
    source: "aws.ec2",
    account: "123456789012",
    time: time.toISOString().replace(/\.\d{3}Z$/, "Z"),
    region,
    resources: [`arn:aws:ec2:${region}:123456789012:instance/${instanceId}`],
    detail: { "instance-id": instanceId, state },
  };
}

/** Every job item (reserved `#…` items left out). */
export async function allJobs(sandbox: Sandbox, table: string): Promise<JobRecord[]> {
  const jobs: JobRecord[] = [];
  let startKey: Record<string, import("@aws-sdk/client-dynamodb").AttributeValue> | undefined;
  do {
    const page = await sandbox.dynamodb.client.send(
      new ScanCommand({ TableName: table, ExclusiveStartKey: startKey }),
    );
    for (const item of page.Items ?? []) {
      const record = unmarshall(item) as JobRecord;
      if (!record.jobId.startsWith("#")) jobs.push(record);
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return jobs;
}

export function launchMessages(sandbox: Sandbox, queueUrl: string): LaunchMessage[] {
  return sandbox.sqs.messages(queueUrl).map((m) => JSON.parse(m.body) as LaunchMessage);
}
