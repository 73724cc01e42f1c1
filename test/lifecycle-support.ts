/**
 * Helpers shared by the lifecycle tests (ec2-events, reconciler, stolen runners, simulated day):
 * job items as the webhook writes them, EC2 events in EventBridge's shape (from the EC2 user guide),
 * and ledger reads.
 */
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { Ec2Event } from "../lambda/ec2-events";
import type { JobRecord, LaunchMessage } from "../lambda/shared/job";
import type { LabelConfig } from "../lambda/shared/label-config";
import { type Sandbox, type SandboxQueue, startSandbox } from "./sandbox";
import { type GitHubFake, startGitHubFake } from "./sandbox/github";

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

// ---- The whole stack on the sandbox ----------------------------------------------------------------

export const CONFIG_PATH = "/runner-fleet/test/label-configs";
export const KEY_PARAM = "/runner-fleet/test/github-app-key";
export const SECRET_PARAM = "/runner-fleet/test/webhook-secret";
export const WEBHOOK_SECRET = "lifecycle-tests-webhook-secret-5d1e";
export const ROLE_ID = "AROATESTRUNNERROLE";
export const STACK = "test";

export const linuxConfig: LabelConfig = {
  name: "linux-x64",
  labels: ["self-hosted", "linux", "x64"],
  arch: "x64",
  instanceTypes: ["m7i.large", "m6i.large"],
  launchTemplateId: "lt-0linux0x640000000",
  spotPolicy: "spotPreferred",
  spotFailuresBeforeOnDemand: 1,
  allocationStrategy: "capacity-optimized",
  maxRunners: 50,
  retryOnInterruption: true,
  runnerGroupId: 1,
};

export interface World {
  sandbox: Sandbox;
  github: GitHubFake;
  tables: { jobs: string; handoff: string };
  queue: SandboxQueue;
  restore(): void;
  /** Back to empty tables, queue, instances, GitHub runners (keeps the fakes and the env). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts the sandbox and the GitHub fake and sets every Lambda's settings in process.env (import the
 * handlers after this). `env` adds or overrides settings.
 */
export async function startWorld(
  prefix: string,
  env: Record<string, string> = {},
  configs = [linuxConfig],
): Promise<World> {
  const sandbox = await startSandbox();
  const github = await startGitHubFake({ faults: sandbox.faults, clock: sandbox.clock });
  const tables = await sandbox.createTables(prefix);
  const queue = sandbox.createQueue(`${prefix}-launch`, { dlq: { maxReceiveCount: 1000 } });
  const restore = sandbox.useEnv({
    STACK_NAME: STACK,
    JOBS_TABLE: tables.jobs,
    HANDOFF_TABLE: tables.handoff,
    LAUNCH_QUEUE_URL: queue.url,
    LABEL_CONFIG_PATH: CONFIG_PATH,
    LABEL_ROUTES: JSON.stringify(configs.map((c) => ({ name: c.name, labels: c.labels }))),
    WEBHOOK_SECRET_PARAM: SECRET_PARAM,
    GITHUB_API_URL: github.url,
    GITHUB_AUTH_MODE: "app",
    GITHUB_APP_ID: String(github.appId),
    GITHUB_PRIVATE_KEY_PARAM: KEY_PARAM,
    GITHUB_WRITES_PER_MINUTE: "60000",
    RUNNER_SCOPE: "org",
    RUNNER_ROLE_ID: ROLE_ID,
    SUBNET_IDS: "subnet-0aaa,subnet-0bbb",
    MAX_RUNNERS_TOTAL: "1000",
    POWERTOOLS_LOG_LEVEL: "ERROR",
    POWERTOOLS_METRICS_DISABLED: "true",
    ...env,
  });
  const seed = () => {
    sandbox.ec2.addSubnet("subnet-0aaa", "us-east-1a");
    sandbox.ec2.addSubnet("subnet-0bbb", "us-east-1b");
    sandbox.ssm.put(KEY_PARAM, github.privateKey, { type: "SecureString" });
    sandbox.ssm.put(SECRET_PARAM, WEBHOOK_SECRET, { type: "SecureString" });
    for (const config of configs) sandbox.ssm.put(`${CONFIG_PATH}/${config.name}`, JSON.stringify(config));
  };
  seed();
  const { tuneGitHub } = await import("../lambda/adapters/github");
  tuneGitHub({ retryAfterBaseValue: 5 });
  return {
    sandbox,
    github,
    tables,
    queue,
    restore,
    async reset() {
      await sandbox.reset();
      for (const runner of github.state.listRunners()) github.state.removeRunner(runner.id);
      github.state.jobs.clear();
      github.state.deliveries.length = 0;
      github.state.reruns.length = 0;
      github.state.redeliveryAttempts.length = 0;
      seed();
      (await import("../lambda/adapters/label-configs")).forgetLabelConfigs();
    },
    async close() {
      restore();
      await Promise.all([github.close(), sandbox.close()]);
    },
  };
}
