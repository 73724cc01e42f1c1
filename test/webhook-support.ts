/**
 * What the webhook suites (webhook.test.ts, webhook-fuzz.test.ts) share: the webhook Lambda on a
 * sandbox (its table, queue, secret and settings), what it wrote there, and Lambda logs kept out of
 * the test output unless a test fails.
 */
import { createHmac } from "node:crypto";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { afterEach, beforeEach, vi } from "vitest";
import type { JobRecord } from "../lambda/shared/job";
import { type Sandbox, startSandbox } from "./sandbox";

export const SECRET = "It's a Secret to Everybody: 7f3c9a1e5b";
export const SECRET_PARAM = "/runner-fleet/test/webhook-secret";
export const ROUTES = [
  { name: "linux-x64", labels: ["linux", "x64"] },
  { name: "linux-x64-large", labels: ["linux", "x64", "large"] },
  { name: "linux-x64-gpu", labels: ["linux", "x64", "large", "gpu"] },
];
/** The owner of the fixtures' repository (Codertocat/Hello-World): the one the stack serves. */
export const SERVED_OWNER = "Codertocat";

/** GitHub's X-Hub-Signature-256 of raw bytes (the fixtures sign strings, as UTF-8). */
export const signBytes = (secret: string, bytes: Uint8Array): string =>
  `sha256=${createHmac("sha256", secret).update(bytes).digest("hex")}`;

export type Handler = (
  event: APIGatewayProxyEventV2,
  context?: Context,
) => Promise<APIGatewayProxyStructuredResultV2>;

export interface WebhookSandbox {
  sandbox: Sandbox;
  tableName: string;
  queueUrl: string;
  handler: Handler;
  /** Every job item in the table. */
  jobs(): Promise<JobRecord[]>;
  /** Every DynamoDB and SQS call the fakes served since the last reset. */
  dataCalls(): unknown[];
  /** Back to an empty table and queue, with the secret in SSM. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts the sandbox, sets the webhook's settings (plus `env`) and imports its handler (after the
 * environment is set: the module starts loading its secret at init).
 */
export async function startWebhookSandbox(
  prefix: string,
  env: Record<string, string> = {},
): Promise<WebhookSandbox> {
  const sandbox = await startSandbox();
  const tableName = (await sandbox.createTables(prefix)).jobs;
  const queueUrl = sandbox.createQueue(`${prefix}-launch`, { dlq: true }).url;
  sandbox.ssm.put(SECRET_PARAM, SECRET, { type: "SecureString" });
  const restoreEnv = sandbox.useEnv({
    STACK_NAME: "test",
    JOBS_TABLE: tableName,
    LAUNCH_QUEUE_URL: queueUrl,
    WEBHOOK_SECRET_PARAM: SECRET_PARAM,
    LABEL_ROUTES: JSON.stringify(ROUTES),
    GITHUB_OWNER: SERVED_OWNER,
    POWERTOOLS_SERVICE_NAME: "webhook",
    ...env,
  });
  const { handler } = await import("../lambda/webhook");
  return {
    sandbox,
    tableName,
    queueUrl,
    handler,
    async jobs() {
      const { Items = [] } = await sandbox.dynamodb.client.send(new ScanCommand({ TableName: tableName }));
      return Items.map((item) => unmarshall(item) as JobRecord);
    },
    dataCalls: () => [...sandbox.callsTo("dynamodb"), ...sandbox.callsTo("sqs")],
    async reset() {
      await sandbox.reset();
      sandbox.ssm.put(SECRET_PARAM, SECRET, { type: "SecureString" });
    },
    async close() {
      restoreEnv();
      await sandbox.close();
    },
  };
}

/**
 * Holds what the Lambdas write to stdout and stderr (Powertools' logger and metrics write there)
 * during each test of the calling file, and prints it only when the test fails. Keeps the last
 * `keep` chunks: a fuzzing test writes thousands.
 */
export function quietLambdaLogs(keep = 2_000): void {
  let spies: { mockRestore(): void }[] = [];
  beforeEach((context) => {
    const chunks: string[] = [];
    const print = process.stderr.write.bind(process.stderr);
    spies = [process.stdout, process.stderr].map((stream) =>
      vi.spyOn(stream, "write").mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
        chunks.push(String(chunk));
        if (chunks.length > keep) chunks.shift();
        const callback = rest.find((arg) => typeof arg === "function") as (() => void) | undefined;
        callback?.();
        return true;
      }),
    );
    context.onTestFailed(() => {
      print(`--- Lambda output of the failed test ---\n${chunks.join("")}`);
    });
  });
  // A test may spy on the streams itself (captureOutput): restoring twice is harmless.
  afterEach(() => {
    for (const spy of spies) spy.mockRestore();
    spies = [];
  });
}
