/**
 * Helpers shared by the lifecycle tests (ec2-events, reconciler, stolen runners, simulated day) and
 * the launcher and webhook tests: job items as the webhook writes them, EC2 events in EventBridge's
 * shape (from the EC2 user guide), ledger and queue reads, the GitHub fake and label configs as the
 * Lambdas read them, and the whole stack on the sandbox (startWorld).
 */
import { ScanCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { vi } from "vitest";
import type { Ec2Event } from "../lambda/ec2-events";
import type { JobRecord, LaunchMessage } from "../lambda/shared/job";
import type { LabelConfig } from "../lambda/shared/label-config";
import { handoffKeyFor } from "../lambda/shared/tables";
import { type Payload, workflowJobEvent } from "./fixtures/webhooks";
import { type Sandbox, type SandboxQueue, startSandbox } from "./sandbox";
import type { SandboxTables } from "./sandbox/dynamodb";
import type { FaultRequest } from "./sandbox/faults";
import type { GitHubFake } from "./sandbox/github";
import type { Job } from "./sandbox/github-state";

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

/**
 * The body of every message sent to SQS (SendMessage and SendMessageBatch, answered 200) since the
 * sandbox's last reset, oldest first: what was sent, not only what is still on a queue.
 */
export function sentMessageBodies(sandbox: Sandbox): string[] {
  type SendParams = { MessageBody?: string; Entries?: { MessageBody?: string }[] };
  return sandbox
    .callsTo("sqs")
    .filter((c) => c.status === 200 && c.operation.startsWith("SendMessage"))
    .flatMap((c) => {
      const p = c.params as SendParams;
      return p.Entries ? p.Entries.map((e) => e.MessageBody ?? "") : [p.MessageBody ?? ""];
    });
}

/** Every launch message sent (sentMessageBodies of the fleet's only queue, parsed). */
export function sentLaunchMessages(sandbox: Sandbox): LaunchMessage[] {
  return sentMessageBodies(sandbox).map((body) => JSON.parse(body) as LaunchMessage);
}

/**
 * Captures what is written to `streams` (stdout and stderr by default) instead of printing it, until
 * `vi.restoreAllMocks()`; returns the chunks, in order, as they are written.
 */
export function captureOutput(streams: NodeJS.WriteStream[] = [process.stdout, process.stderr]): string[] {
  const chunks: string[] = [];
  for (const stream of streams) {
    vi.spyOn(stream, "write").mockImplementation((chunk: string | Uint8Array) => {
      chunks.push(String(chunk));
      return true;
    });
  }
  return chunks;
}

// ---- The whole stack on the sandbox ----------------------------------------------------------------

export const CONFIG_PATH = "/runner-fleet/test/label-configs";
export const KEY_PARAM = "/runner-fleet/test/github-app-key";
export const PAT_PARAM = "/runner-fleet/test/github-pat";
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

/**
 * Points the GitHub adapter at a fake: its App key and PAT under KEY_PARAM and PAT_PARAM, its URL,
 * App id, auth mode and runner scope in process.env (settings are read from it on every access).
 */
export async function useGitHubFake(
  sandbox: Sandbox,
  fake: GitHubFake,
  { mode = "app", scope = "org" }: { mode?: "app" | "token"; scope?: "org" | "repo" } = {},
): Promise<void> {
  sandbox.ssm.put(KEY_PARAM, fake.privateKey, { type: "SecureString" });
  sandbox.ssm.put(PAT_PARAM, fake.pat, { type: "SecureString" });
  Object.assign(process.env, {
    GITHUB_API_URL: fake.url,
    GITHUB_APP_ID: String(fake.appId),
    GITHUB_AUTH_MODE: mode,
    RUNNER_SCOPE: scope,
  });
  // Loaded here, not at the top: the Lambda modules read their environment when first imported.
  const [{ forgetSecrets }, { tuneGitHub }] = await Promise.all([
    import("../lambda/adapters/ssm-secrets"),
    import("../lambda/adapters/github-client"),
  ]);
  forgetSecrets();
  tuneGitHub({ retryAfterBaseValue: 5 });
}

/** Puts label configs under CONFIG_PATH and drops the Lambdas' cached copies. */
export async function putLabelConfigs(sandbox: Sandbox, ...configs: LabelConfig[]): Promise<void> {
  for (const config of configs) sandbox.ssm.put(`${CONFIG_PATH}/${config.name}`, JSON.stringify(config));
  (await import("../lambda/adapters/label-configs")).forgetLabelConfigs();
}

export interface World {
  sandbox: Sandbox;
  github: GitHubFake;
  tables: SandboxTables;
  queue: SandboxQueue;
  /** The GitHub fake's repository as `owner/name`, as job items hold it. */
  repoFullName: string;
  /** A job item (see jobRecord) of the GitHub fake's organization, repository and installation. */
  jobRecord(jobId: string, over?: Partial<JobRecord>): JobRecord;
  /** The job's item in the ledger (it must exist). */
  getJob(jobId: string): Promise<JobRecord>;
  /** The messages on the launch queue. */
  launchMessages(): LaunchMessage[];
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
  const sandbox = await startSandbox({ github: true });
  const github = sandbox.github!;
  const tables = await sandbox.createTables(prefix);
  const queue = sandbox.createQueue(`${prefix}-launch`, { dlq: { maxReceiveCount: 1000 } });
  const restore = sandbox.useEnv({
    STACK_NAME: STACK,
    JOBS_TABLE: tables.jobs,
    HANDOFF_TABLE: tables.handoff,
    POOL_TABLE: tables.pool,
    LAUNCH_QUEUE_URL: queue.url,
    LABEL_CONFIG_PATH: CONFIG_PATH,
    LABEL_ROUTES: JSON.stringify(configs.map((c) => ({ name: c.name, labels: c.labels }))),
    WEBHOOK_SECRET_PARAM: SECRET_PARAM,
    GITHUB_AUTH_MODE: "app",
    GITHUB_APP_ID: String(github.appId),
    GITHUB_PRIVATE_KEY_PARAM: KEY_PARAM,
    GITHUB_WRITES_PER_MINUTE: "60000",
    RUNNER_SCOPE: "org",
    GITHUB_OWNER: github.org,
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
  const { tuneGitHub } = await import("../lambda/adapters/github-client");
  tuneGitHub({ retryAfterBaseValue: 5 });
  const repoFullName = `${github.repo.owner}/${github.repo.name}`;
  return {
    sandbox,
    github,
    tables,
    queue,
    repoFullName,
    jobRecord: (jobId, over = {}) =>
      jobRecord(jobId, {
        repo: repoFullName,
        owner: github.org,
        installationId: github.installationId,
        ...over,
      }),
    async getJob(jobId) {
      return (await (await import("../lambda/adapters/jobs-table")).getJob(jobId))!;
    },
    launchMessages: () => launchMessages(sandbox, queue.url),
    restore,
    async reset() {
      await sandbox.reset();
      github.state.reset();
      seed();
      (await import("../lambda/adapters/label-configs")).forgetLabelConfigs();
    },
    async close() {
      restore();
      await sandbox.close();
    },
  };
}

/**
 * What the runner's bootstrap reports on its hand-off item (fetchedAt, runnerStartedAt, …): sets
 * `fields` on the instance's item, which must exist (an UpdateItem conditioned on it).
 */
export async function reportProgress(
  world: World,
  instanceId: string,
  fields: Record<string, string>,
): Promise<void> {
  const names = Object.keys(fields);
  await world.sandbox.dynamodb.client.send(
    new UpdateItemCommand({
      TableName: world.tables.handoff,
      Key: marshall({ handoffKey: handoffKeyFor(ROLE_ID, instanceId) }),
      UpdateExpression: `SET ${names.map((_, i) => `#n${i} = :v${i}`).join(", ")}`,
      ConditionExpression: "attribute_exists(handoffKey)",
      ExpressionAttributeNames: Object.fromEntries(names.map((n, i) => [`#n${i}`, n])),
      ExpressionAttributeValues: marshall(Object.fromEntries(names.map((n, i) => [`:v${i}`, fields[n]]))),
    }),
  );
}

/**
 * The `workflow_job` payload GitHub would send for one of the GitHub fake's jobs, as it is now: its
 * ids, labels and repository, its runner once it has one, its conclusion once completed.
 */
export function payloadOf(world: World, action: "queued" | "in_progress" | "completed", job: Job): Payload {
  return workflowJobEvent(action, {
    id: job.id,
    runId: job.run_id,
    runAttempt: job.run_attempt,
    labels: job.labels,
    repo: world.repoFullName,
    installationId: world.github.installationId,
    ...(job.runner_name ? { runnerName: job.runner_name, runnerId: job.runner_id ?? undefined } : {}),
    ...(action === "completed" ? { conclusion: job.conclusion ?? "success" } : {}),
  });
}

/** Runs `launcher` over the launch queue, as its event source would, until the queue has nothing ready. */
export async function drainLauncher(
  world: World,
  launcher: (event: SQSEvent) => Promise<SQSBatchResponse>,
): Promise<void> {
  for (;;) {
    const records = world.sandbox.sqs.receive(world.queue.url, 10);
    if (records.length === 0) return;
    world.sandbox.sqs.settle(world.queue.url, records, await launcher({ Records: records }));
  }
}

/**
 * A launcher invocation over `records` that dies at `at`: from that request on (it included) every
 * call fails, as when the process is gone, and the batch counts as thrown (its messages come back
 * after their visibility timeout). Returns whether the invocation reached the crash point.
 */
export async function launcherDiesAt(
  world: World,
  launcher: (event: SQSEvent) => Promise<SQSBatchResponse>,
  records: SQSRecord[],
  at: (request: FaultRequest) => boolean,
): Promise<boolean> {
  let crashed = false;
  const when = (r: FaultRequest) => {
    crashed ||= at(r);
    return crashed;
  };
  for (const service of ["dynamodb", "sqs", "ec2", "ssm", "github"])
    world.sandbox.faults.fail(service, "*", { code: "LauncherDied", status: 400 }, { when });
  await launcher({ Records: records }).catch(() => undefined);
  world.sandbox.faults.clear();
  world.sandbox.sqs.settle(world.queue.url, records, "threw");
  return crashed;
}
