/**
 * The benchmark's world: the sandbox (dynalite, SQS, SSM and EC2 fakes, the GitHub fake) with the
 * modeled service behaviour, the stack's tables, queue and parameters, and the Lambdas as they ship
 * (the esbuild bundles of scripts/build-lambdas.mjs, imported from a build directory). The launch
 * queue feeds the launcher through `LaunchEventSource`, which does what Lambda's SQS event source
 * mapping does with the settings the program configures.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyStructuredResultV2,
  ScheduledEvent,
  SQSBatchResponse,
  SQSEvent,
  SQSRecord,
} from "aws-lambda";
import { GITHUB_JIT_PER_MINUTE_PER_APP, LAUNCHER_EVENT_SOURCE } from "../../src/components/launcher-tuning";
import { signedApiGatewayEvent, workflowJobEvent } from "../../test/fixtures/webhooks";
import { EC2_BOOT_MODEL } from "../../test/sandbox/ec2-boot";
import { EC2_THROTTLE, type Sandbox, startSandbox } from "../../test/sandbox/index";
import { currentClock } from "./clock";

/**
 * Modeled service behaviour (docs/performance.md says where each number comes from). Latencies are
 * added by the fakes before they answer; the throttles are token buckets in front of them; `boot`
 * is how long instances take to boot, stop and start (test/sandbox/ec2-boot.ts).
 */
export const MODEL = {
  githubMs: 250,
  createFleetMs: 1200,
  startInstancesMs: 500,
  /** Other EC2 calls (CreateTags, DescribeInstances, StopInstances, TerminateInstances). */
  ec2OtherMs: 100,
  dynamodbMs: 6,
  sqsMs: 8,
  ssmMs: 8,
  /** GitHub's JIT registrations per App: a bucket of 180, refilled at 180 a minute. */
  jit: { burst: 180, perMinute: 180 },
  ec2: EC2_THROTTLE,
  boot: EC2_BOOT_MODEL,
} as const;

// What the program configures for the launcher: the same values (src/components/launcher-tuning.ts).
export { LAUNCHER_EVENT_SOURCE };

const LAUNCHER_SETTINGS = { GITHUB_WRITES_PER_MINUTE: String(GITHUB_JIT_PER_MINUTE_PER_APP) };

export const CONFIGS = [
  { name: "linux-x64-large", labels: ["linux", "x64", "large"], arch: "x64" as const },
  { name: "linux-arm64", labels: ["linux", "arm64"], arch: "arm64" as const },
];
const INSTANCE_TYPES = {
  x64: ["m7i.xlarge", "m6i.xlarge", "m5.xlarge", "c7i.2xlarge", "c6i.2xlarge", "r7i.xlarge"],
  arm64: ["m7g.xlarge", "m6g.xlarge", "c7g.2xlarge", "c6g.2xlarge", "r7g.xlarge"],
};
const SUBNETS = ["subnet-0bench00000000001", "subnet-0bench00000000002", "subnet-0bench00000000003"];
const SECRET = "bench-webhook-secret-0d5f1c";
const OWNER = "Codertocat";
const INSTALLATION_ID = 3456996;
export const ROLE_ID = "AROABENCHRUNNERROLE01";

export type WebhookLambda = LambdaWorker<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2>;
export type LauncherLambda = LambdaWorker<SQSEvent, SQSBatchResponse>;
export type ReconcilerLambda = LambdaWorker<ScheduledEvent, unknown>;

/**
 * A Lambda execution environment on its own thread (lambda-worker.ts): its own module state (SDK
 * clients, caches, the GitHub write pacing) and its own CPU, apart from the sandbox's services.
 */
export class LambdaWorker<Event, Result> {
  private readonly worker: Worker;
  private readonly pending = new Map<
    number,
    { resolve(r: { result: Result; ms: number }): void; reject(e: Error): void }
  >();
  private next = 0;
  readonly ready: Promise<void>;

  constructor(bundleDir: string, name: string) {
    const bundleUrl = pathToFileURL(join(bundleDir, name, "index.mjs")).href;
    // The environment is process.env as it is now (the world's settings and endpoints).
    this.worker = new Worker(new URL("./lambda-worker.mjs", import.meta.url), {
      workerData: { bundleUrl, clock: currentClock() },
      stdout: true,
      stderr: true,
    });
    // The Lambda's logs (CloudWatch's business): read and dropped.
    this.worker.stdout.resume();
    this.worker.stderr.resume();
    this.ready = new Promise((resolve, reject) => {
      this.worker.once("error", reject);
      this.worker.on(
        "message",
        (message: { ready?: true; id: number; result?: Result; ms?: number; error?: string }) => {
          if (message.ready) return resolve();
          const waiter = this.pending.get(message.id);
          this.pending.delete(message.id);
          if (message.error !== undefined) waiter?.reject(new Error(message.error));
          else waiter?.resolve({ result: message.result as Result, ms: message.ms ?? Number.NaN });
        },
      );
    });
    this.worker.on("error", (error) => {
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
    });
  }

  /** Invokes the handler; `ms` is the time it took, measured on the Lambda's own thread. */
  async invokeTimed(event: Event): Promise<{ result: Result; ms: number }> {
    await this.ready;
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, event });
    });
  }

  async invoke(event: Event): Promise<Result> {
    return (await this.invokeTimed(event)).result;
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

export interface WorldOptions {
  /** Directory holding `<lambda>/index.mjs` bundles (buildLambdas' outRoot). */
  bundleDir: string;
  /** Apply MODEL's latencies and throttles (default true). */
  modeled?: boolean;
  /** Per label config; high enough that limits never hold a burst back. */
  maxRunners?: number;
  /** Extra Lambda settings (what-if runs, e.g. GITHUB_WRITES_PER_MINUTE). */
  env?: Record<string, string>;
  /** Extra fields of every label config (e.g. a pool). */
  labelConfig?: Record<string, unknown>;
}

export type World = Awaited<ReturnType<typeof startWorld>>;

export async function startWorld(options: WorldOptions) {
  const modeled = options.modeled ?? true;
  const maxRunners = options.maxRunners ?? 5000;
  // The GitHub fake on the sandbox's faults and clock; its URL is in sandbox.env (GITHUB_API_URL).
  const sandbox = await startSandbox({
    ec2: { boot: modeled ? MODEL.boot : undefined },
    github: {
      org: OWNER,
      repo: "Hello-World",
      installationId: INSTALLATION_ID,
      jitRateLimit: { ...MODEL.jit },
      // Request validation stays on; checking every answer too would only spend the harness's CPU.
      validateResponses: false,
    },
  });
  const github = sandbox.github!;
  const tables = await sandbox.createTables("bench");
  const queue = sandbox.createQueue("bench-launch", {
    dlq: { maxReceiveCount: 100 },
    attributes: { VisibilityTimeout: "360" },
  });
  const params = {
    secret: "/bench/webhook-secret",
    privateKey: "/bench/github-app-key",
    configs: "/bench/label-configs",
  };
  sandbox.ssm.put(params.secret, SECRET, { type: "SecureString" });
  sandbox.ssm.put(params.privateKey, github.privateKey, { type: "SecureString" });
  for (const config of CONFIGS) {
    sandbox.ssm.put(
      `${params.configs}/${config.name}`,
      JSON.stringify({
        name: config.name,
        labels: config.labels,
        arch: config.arch,
        instanceTypes: INSTANCE_TYPES[config.arch],
        launchTemplateId: `lt-0bench${config.arch.padEnd(12, "0")}`,
        spotPolicy: "spotPreferred",
        spotFailuresBeforeOnDemand: 1,
        allocationStrategy: "capacity-optimized",
        maxRunners,
        retryOnInterruption: true,
        runnerGroupId: 1,
        ...options.labelConfig,
      }),
    );
  }
  const env = {
    STACK_NAME: "bench",
    JOBS_TABLE: tables.jobs,
    HANDOFF_TABLE: tables.handoff,
    POOL_TABLE: tables.pool,
    LAUNCH_QUEUE_URL: queue.url,
    LABEL_CONFIG_PATH: params.configs,
    LABEL_ROUTES: JSON.stringify(CONFIGS.map(({ name, labels }) => ({ name, labels }))),
    WEBHOOK_SECRET_PARAM: params.secret,
    GITHUB_AUTH_MODE: "app",
    GITHUB_APP_ID: String(github.appId),
    GITHUB_PRIVATE_KEY_PARAM: params.privateKey,
    GITHUB_OWNER: OWNER,
    RUNNER_ROLE_ID: ROLE_ID,
    SUBNET_IDS: SUBNETS.join(","),
    MAX_RUNNERS_TOTAL: String(maxRunners * CONFIGS.length),
    ...LAUNCHER_SETTINGS,
    POWERTOOLS_METRICS_NAMESPACE: "runner-fleet-bench",
  };
  const restoreEnv = sandbox.useEnv({ ...env, ...options.env });

  if (modeled) applyModel(sandbox);

  let webhook: WebhookLambda | undefined;
  const workers: LambdaWorker<never, unknown>[] = [];
  const world = {
    sandbox,
    github,
    tables,
    queue,
    env,
    secret: SECRET,
    /** The webhook's environment, started on first use (its init starts fetching the webhook secret). */
    async webhook(): Promise<WebhookLambda> {
      if (!webhook) {
        webhook = new LambdaWorker(options.bundleDir, "webhook");
        workers.push(webhook as LambdaWorker<never, unknown>);
      }
      await webhook.ready;
      return webhook;
    },
    /** A new execution environment of a Lambda other than the webhook. */
    async environment<Event, Result>(name: "launcher" | "reconciler"): Promise<LambdaWorker<Event, Result>> {
      const lambda = new LambdaWorker<Event, Result>(options.bundleDir, name);
      workers.push(lambda as LambdaWorker<never, unknown>);
      await lambda.ready;
      return lambda;
    },
    launcherEnvironment(): Promise<LauncherLambda> {
      return world.environment("launcher");
    },
    /** The `workflow_job` payload of a queued job of config `configIndex` (mod the configs). */
    queuedPayload(jobId: number, configIndex = 0): Record<string, unknown> {
      const config = CONFIGS[configIndex % CONFIGS.length]!;
      return workflowJobEvent("queued", {
        id: jobId,
        runId: 900_000 + jobId,
        labels: ["self-hosted", ...config.labels],
        installationId: INSTALLATION_ID,
      });
    },
    /** A delivery of `payload` signed as GitHub does, as API Gateway hands it to the webhook. */
    signedEvent(payload: Record<string, unknown>, deliveryId: string): Promise<APIGatewayProxyEventV2> {
      return signedApiGatewayEvent(payload, SECRET, { deliveryId });
    },
    /** A signed `workflow_job` delivery of a queued job, as API Gateway hands it to the webhook. */
    queuedEvent(jobId: number, configIndex = 0, deliveryId?: string): Promise<APIGatewayProxyEventV2> {
      return world.signedEvent(world.queuedPayload(jobId, configIndex), deliveryId ?? `bench-${jobId}`);
    },
    /** Every job item and hand-off item (scans; for the end of a scenario). */
    async snapshot(): Promise<{ jobs: BenchJob[]; handoffs: BenchHandoff[] }> {
      const scan = async (table: string) => {
        const items: Record<string, unknown>[] = [];
        let start: Record<string, unknown> | undefined;
        do {
          const page = await sandbox.dynamodb.client.send(
            new ScanCommand({ TableName: table, ExclusiveStartKey: start as never }),
          );
          for (const item of page.Items ?? []) items.push(unmarshall(item));
          start = page.LastEvaluatedKey;
        } while (start);
        return items;
      };
      const [jobs, handoffs] = await Promise.all([scan(tables.jobs), scan(tables.handoff)]);
      return { jobs: jobs as unknown as BenchJob[], handoffs: handoffs as unknown as BenchHandoff[] };
    },
    /** Jobs (those `counts`) with a hand-off written so far (from the call record: cheap to poll). */
    handedOffJobs(counts: (jobId: string) => boolean = () => true): number {
      const jobs = new Set<string>();
      for (const call of sandbox.callsTo("dynamodb", "PutItem")) {
        const params = call.params as { TableName?: string; Item?: { jobId?: { S?: string } } };
        const jobId = params.Item?.jobId?.S ?? "";
        if (call.status === 200 && params.TableName === tables.handoff && counts(jobId)) jobs.add(jobId);
      }
      return jobs.size;
    },
    async close(): Promise<void> {
      await Promise.all(workers.map((w) => w.terminate()));
      restoreEnv();
      await sandbox.close();
    },
  };
  return world;
}

export interface BenchJob {
  jobId: string;
  state: string;
  configName: string;
  instanceId?: string;
  market?: string;
  reason?: string;
  attempts?: number;
  spotFailures?: number;
  createdAt: string;
  launchedAt?: string;
}

export interface BenchHandoff {
  handoffKey: string;
  instanceId: string;
  jobId: string;
  createdAt: string;
}

function applyModel(sandbox: Sandbox): void {
  const f = sandbox.faults;
  f.latency("github", "*", MODEL.githubMs);
  f.latency("ec2", "CreateFleet", MODEL.createFleetMs);
  f.latency("ec2", "StartInstances", MODEL.startInstancesMs);
  for (const op of [
    "CreateTags",
    "DescribeInstances",
    "StopInstances",
    "TerminateInstances",
    "RunInstances",
  ]) {
    f.latency("ec2", op, MODEL.ec2OtherMs);
  }
  f.latency("dynamodb", "*", MODEL.dynamodbMs);
  f.latency("sqs", "*", MODEL.sqsMs);
  f.latency("ssm", "*", MODEL.ssmMs);
  f.throttle("ec2", "mutating", MODEL.ec2.mutating);
  f.throttle("ec2", "DescribeInstances", MODEL.ec2.nonMutating);
}

// ---------------------------------------------------------------------------------------------

/**
 * Lambda's SQS event source mapping, as far as the launcher can tell: pollers long-poll the queue,
 * gather up to `batchSize` messages for at most `windowSeconds`, invoke one execution environment
 * each (at most `maxConcurrency` at once), delete what the handler did not report as failed, and
 * leave the failed ones to come back when their visibility ends.
 */
export class LaunchEventSource {
  invocations = 0;
  invocationErrors = 0;
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly sqs: SQSClient;

  constructor(
    private readonly world: World,
    private readonly settings: {
      batchSize: number;
      windowSeconds: number;
      maxConcurrency: number;
    } = LAUNCHER_EVENT_SOURCE,
  ) {
    this.sqs = new SQSClient({
      endpoint: world.sandbox.endpoints.sqs,
      region: world.sandbox.region,
      credentials: world.sandbox.credentials,
    });
  }

  async start(): Promise<void> {
    this.running = true;
    for (let i = 0; i < this.settings.maxConcurrency; i++) {
      const launcher = await this.world.launcherEnvironment();
      this.loops.push(this.poll(launcher));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    this.sqs.destroy();
  }

  private async receive(max: number, waitSeconds: number): Promise<Message[]> {
    const { Messages = [] } = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.world.queue.url,
        MaxNumberOfMessages: Math.min(10, max),
        WaitTimeSeconds: waitSeconds,
        MessageSystemAttributeNames: ["All"],
      }),
    );
    return Messages;
  }

  private async poll(launcher: LauncherLambda): Promise<void> {
    const { batchSize, windowSeconds } = this.settings;
    while (this.running) {
      const batch = await this.receive(batchSize, 1);
      if (batch.length === 0) continue;
      const deadline = Date.now() + windowSeconds * 1000;
      while (batch.length < batchSize && Date.now() < deadline && this.running) {
        const more = await this.receive(batchSize - batch.length, 0);
        if (more.length) batch.push(...more);
        else await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await this.invoke(launcher, batch);
    }
  }

  private async invoke(launcher: LauncherLambda, messages: Message[]): Promise<void> {
    this.invocations++;
    const records: SQSRecord[] = messages.map((m) => ({
      messageId: m.MessageId!,
      receiptHandle: m.ReceiptHandle!,
      body: m.Body ?? "",
      attributes: {
        ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? "1",
        SentTimestamp: m.Attributes?.SentTimestamp ?? String(Date.now()),
        SenderId: m.Attributes?.SenderId ?? "AROABENCH",
        ApproximateFirstReceiveTimestamp:
          m.Attributes?.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      },
      messageAttributes: {},
      md5OfBody: m.MD5OfBody ?? "",
      eventSource: "aws:sqs",
      eventSourceARN: this.world.queue.arn,
      awsRegion: this.world.sandbox.region,
    }));
    let failed: Set<string>;
    try {
      const response = await launcher.invoke({ Records: records });
      failed = new Set((response?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
    } catch {
      // The whole batch comes back after the visibility timeout, as on Lambda.
      this.invocationErrors++;
      return;
    }
    const done = records.filter((r) => !failed.has(r.messageId));
    for (let i = 0; i < done.length; i += 10) {
      await this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.world.queue.url,
          Entries: done.slice(i, i + 10).map((r, n) => ({ Id: String(n), ReceiptHandle: r.receiptHandle })),
        }),
      );
    }
  }
}
