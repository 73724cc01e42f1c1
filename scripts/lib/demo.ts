/**
 * The no-account demo (`npm run demo`): the real webhook and launcher handlers against the local
 * sandbox (DynamoDB, SQS, SSM, EC2 and GitHub fakes on 127.0.0.1). Signed workflow_job deliveries go
 * in; jobs are recorded and enqueued; the launcher batches them into CreateFleet calls, registers JIT
 * runners and writes the hand-offs; one instance "boots"; then `npm run status` shows the result.
 */
import { ScanCommand, UpdateItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyStructuredResultV2,
  SQSBatchResponse,
  SQSEvent,
} from "aws-lambda";
import type { HandoffItem } from "../../lambda/adapters/handoff";
import type { LabelConfig } from "../../lambda/shared/label-config";
import { signedApiGatewayEvent, workflowJobEvent } from "../../test/fixtures/webhooks";
import { startSandbox } from "../../test/sandbox";
import type { FleetLimits } from "./explain";
import { runStatus } from "./fleet-status";

const SECRET = "demo-webhook-secret-0123456789abcdef";
const PARAMS = {
  secret: "/runner-fleet/demo/webhook-secret",
  key: "/runner-fleet/demo/github-app-key",
  configs: "/runner-fleet/demo/label-configs",
};
const CONFIGS: LabelConfig[] = [
  {
    name: "linux-x64-large",
    labels: ["linux", "x64", "large"],
    arch: "x64",
    instanceTypes: ["m7i.xlarge", "m6i.xlarge"],
    launchTemplateId: "lt-0demo0x6400000000",
    spotPolicy: "spotPreferred",
    spotFailuresBeforeOnDemand: 2,
    allocationStrategy: "capacity-optimized",
    maxRunners: 10,
    retryOnInterruption: true,
    runnerGroupId: 1,
  },
  {
    name: "linux-arm64",
    labels: ["linux", "arm64"],
    arch: "arm64",
    instanceTypes: ["m7g.large"],
    launchTemplateId: "lt-0demo0arm6400000",
    spotPolicy: "spotOnly",
    spotFailuresBeforeOnDemand: 2,
    allocationStrategy: "price-capacity-optimized",
    maxRunners: 2,
    retryOnInterruption: true,
    runnerGroupId: 1,
  },
];

type Webhook = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;
type Launcher = (event: SQSEvent) => Promise<SQSBatchResponse>;

export interface DemoResult {
  /** Webhook answers: status and body per delivery. */
  deliveries: { labels: string[]; status: number; body: string }[];
  instances: { instanceId: string; instanceType: string; market: string }[];
  statusLines: string[];
}

export async function runDemo(out: (line: string) => void = console.log): Promise<DemoResult> {
  const sandbox = await startSandbox({ github: true });
  const github = sandbox.github!;
  let restoreEnv = () => {};
  try {
    const tables = await sandbox.createTables("demo");
    const queue = sandbox.createQueue("demo-launch", { dlq: true });
    sandbox.ssm.put(PARAMS.secret, SECRET, { type: "SecureString" });
    sandbox.ssm.put(PARAMS.key, github.privateKey, { type: "SecureString" });
    for (const c of CONFIGS) sandbox.ssm.put(`${PARAMS.configs}/${c.name}`, JSON.stringify(c));
    sandbox.ec2.addSubnet("subnet-0demo000000000a", "us-east-1a");
    sandbox.ec2.addSubnet("subnet-0demo000000000b", "us-east-1b");
    restoreEnv = sandbox.useEnv({
      STACK_NAME: "demo",
      JOBS_TABLE: tables.jobs,
      HANDOFF_TABLE: tables.handoff,
      POOL_TABLE: tables.pool,
      LAUNCH_QUEUE_URL: queue.url,
      WEBHOOK_SECRET_PARAM: PARAMS.secret,
      LABEL_ROUTES: JSON.stringify(CONFIGS.map(({ name, labels }) => ({ name, labels }))),
      LABEL_CONFIG_PATH: PARAMS.configs,
      GITHUB_AUTH_MODE: "app",
      GITHUB_APP_ID: String(github.appId),
      GITHUB_PRIVATE_KEY_PARAM: PARAMS.key,
      RUNNER_SCOPE: "org",
      GITHUB_OWNER: github.org,
      RUNNER_ROLE_ID: "AROADEMORUNNERROLE00",
      SUBNET_IDS: "subnet-0demo000000000a,subnet-0demo000000000b",
      MAX_RUNNERS_TOTAL: "20",
      POWERTOOLS_LOG_LEVEL: "SILENT",
      POWERTOOLS_METRICS_DISABLED: "true",
    });
    // Imported once the environment is set: the handlers read their settings at init.
    const webhook = (await import("../../lambda/webhook")).handler as unknown as Webhook;
    const launcher = (await import("../../lambda/launcher")).handler as unknown as Launcher;

    out(`sandbox up: DynamoDB, SQS, SSM, EC2 and GitHub (${github.url}, org ${github.org}) on 127.0.0.1`);
    // No spot capacity for the arm64 config: its job waits (spotOnly), which status explains.
    sandbox.faults.fail("ec2", "CreateFleet", "InsufficientInstanceCapacity", {
      when: (r) => r.part?.lifecycle === "spot" && r.part?.launchTemplateId === "lt-0demo0arm6400000",
    });

    out("\n1. GitHub sends signed workflow_job deliveries to the webhook handler");
    const jobs = [
      { id: 9001, labels: ["self-hosted", "linux", "x64", "large"] },
      { id: 9002, labels: ["self-hosted", "linux", "x64", "large"] },
      { id: 9003, labels: ["self-hosted", "linux", "arm64"] },
      { id: 9004, labels: ["ubuntu-latest"] },
    ];
    const deliveries: DemoResult["deliveries"] = [];
    for (const job of jobs) {
      const payload = workflowJobEvent("queued", {
        id: job.id,
        labels: job.labels,
        repo: `${github.org}/${github.repo.name}`,
        installationId: github.installationId,
      });
      const response = await webhook(await signedApiGatewayEvent(payload, SECRET));
      const body = String(response.body ?? "");
      deliveries.push({ labels: job.labels, status: response.statusCode ?? 0, body });
      out(`   job ${job.id} runs-on [${job.labels.join(", ")}] → ${response.statusCode} ${body}`);
    }

    out("\n2. The launcher takes the queued messages (batched per label config)");
    const records = sandbox.sqs.receive(queue.url, 10);
    const response = await launcher({ Records: records });
    sandbox.sqs.settle(queue.url, records, response);
    out(
      `   ${records.length} messages, ${sandbox.callsTo("ec2", "CreateFleet").length} CreateFleet calls, ` +
        `${response.batchItemFailures.length} left in the queue for a retry`,
    );

    out("\n3. Instances and their JIT hand-offs (the config itself is never shown)");
    const instances = sandbox.ec2
      .instances()
      .map((i) => ({ instanceId: i.instanceId, instanceType: i.instanceType, market: i.market }));
    for (const i of instances) out(`   ${i.instanceId} ${i.instanceType} ${i.market}`);
    const { Items = [] } = await sandbox.dynamodb.client.send(new ScanCommand({ TableName: tables.handoff }));
    const handoffs = Items.map((item) => unmarshall(item) as HandoffItem);
    for (const h of handoffs) {
      out(
        `   hand-off ${h.instanceId}: job ${h.jobId}, runner ${h.runnerName}, JIT config ${h.jitConfig ? "waiting" : "taken"}`,
      );
    }

    // One instance boots: it takes its JIT config (the runner registers with GitHub) and reports.
    const first = handoffs[0];
    if (first?.jitConfig) {
      github.state.connectRunner(first.jitConfig);
      const now = new Date().toISOString();
      await sandbox.dynamodb.client.send(
        new UpdateItemCommand({
          TableName: tables.handoff,
          Key: marshall({ handoffKey: first.handoffKey }),
          UpdateExpression: "SET fetchedAt = :now, runnerStartedAt = :now REMOVE jitConfig",
          ExpressionAttributeValues: marshall({ ":now": now }),
        }),
      );
      out(
        `   ${first.instanceId} booted: took its JIT config, runner ${first.runnerName} is online on GitHub`,
      );
    }

    out("\n4. npm run status");
    const limits: FleetLimits = {
      maxRunnersTotal: 20,
      queueTimeoutMinutes: 60,
      maxRuntimeMinutes: 360,
      idleTimeoutMinutes: 10,
      configs: Object.fromEntries(CONFIGS.map((c) => [c.name, c])),
    };
    const sources = { jobsTable: tables.jobs, handoffTable: tables.handoff, limits, notes: [] };
    const statusLines: string[] = [];
    const print = (line: string) => {
      statusLines.push(line);
      out(`   ${line}`);
    };
    await runStatus({}, sources, print);
    for (const jobId of [String(jobs[2]!.id), first?.jobId].filter((id): id is string => Boolean(id))) {
      out(`\n   npm run status -- --job ${jobId}`);
      await runStatus({ job: jobId }, sources, print);
    }
    return { deliveries, instances, statusLines };
  } finally {
    restoreEnv();
    await sandbox.close();
  }
}
