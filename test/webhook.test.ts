/**
 * The webhook Lambda against the sandbox (dynalite, SQS and SSM fakes) with its real clients:
 * signed API Gateway v2 events built from real workflow_job payloads, and assertions on the items,
 * messages and calls they produce.
 */
import { DeleteItemCommand } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { decideIntake } from "../lambda/core/intake-decision";
import { findRoutingConflicts } from "../lambda/core/routing";
import {
  MAX_BODY_BYTES,
  MAX_JOB_LABELS,
  MAX_LABEL_LENGTH,
  MAX_NAME_LENGTH,
} from "../lambda/core/workflow-job-payload";
import type { JobRecord } from "../lambda/shared/job";
import {
  loadSettings,
  MAX_QUEUE_TIMEOUT_MINUTES,
  MIN_JOB_TTL_DAYS,
  REDELIVERY_WINDOW_DAYS,
} from "../lambda/shared/settings";
import { stackConfigSchema } from "../src/config/schema";
import {
  GHES_HOST,
  signedApiGatewayEvent,
  type WorkflowJobAction,
  workflowJobEvent,
} from "./fixtures/webhooks";
import { captureOutput, launchMessages } from "./lifecycle-support";
import type { Sandbox } from "./sandbox";
import {
  type Handler,
  quietLambdaLogs,
  ROUTES,
  SECRET,
  signBytes,
  startWebhookSandbox,
  type WebhookSandbox,
} from "./webhook-support";

let world: WebhookSandbox;
let sandbox: Sandbox;
let queueUrl: string;
let handler: Handler;

beforeAll(async () => {
  world = await startWebhookSandbox("webhook-test");
  ({ sandbox, queueUrl, handler } = world);
});

afterAll(async () => {
  await world?.close();
});

beforeEach(async () => {
  await world.reset();
});

afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  vi.useRealTimers();
});

quietLambdaLogs();

const jobs = (): Promise<JobRecord[]> => world.jobs();

async function onlyJob(): Promise<JobRecord> {
  const all = await jobs();
  expect(all).toHaveLength(1);
  return all[0]!;
}

const deliver = async (
  action: WorkflowJobAction,
  overrides: Parameters<typeof workflowJobEvent>[1] = {},
  options: Parameters<typeof signedApiGatewayEvent>[2] = {},
) => handler(await signedApiGatewayEvent(workflowJobEvent(action, overrides), SECRET, options));

const bodyOf = (response: APIGatewayProxyStructuredResultV2) => JSON.parse(String(response.body));

const dataCalls = () => world.dataCalls();

it("uses routes without conflicts (a sanity check of the test setup)", () => {
  expect(findRoutingConflicts(ROUTES)).toEqual([]);
});

describe("a valid queued job", () => {
  it("is recorded once and enqueued once, with ids only in the message", async () => {
    const before = Date.now();
    const response = await deliver("queued", { id: 4242, runId: 77, runAttempt: 2 }, { deliveryId: "d-1" });
    const took = Date.now() - before;

    expect(response.statusCode).toBe(202);
    expect(bodyOf(response)).toEqual({ status: "accepted", jobId: "4242", configName: "linux-x64-large" });
    const job = await onlyJob();
    expect(job).toMatchObject({
      jobId: "4242",
      state: "queued",
      configName: "linux-x64-large",
      labels: ["self-hosted", "linux", "x64", "large"],
      repo: "Codertocat/Hello-World",
      owner: "Codertocat",
      installationId: 3456996,
      githubHost: "github.com",
      runId: 77,
      runAttempt: 2,
      deliveryId: "d-1",
      lastDeliveryId: "d-1",
      lastAction: "queued",
    });
    expect(job.enqueuedAt).toBeDefined();
    expect(job.enqueueClaimedAt).toBeUndefined();
    const created = Date.parse(job.createdAt);
    expect(created).toBeGreaterThanOrEqual(before - 1000);
    // The TTL counts from the job's last write (here: marking the message sent), to the second.
    expect(job.expiresAt).toBe(Math.floor(Date.parse(job.updatedAt) / 1000) + 30 * 86_400);
    expect(launchMessages(sandbox, queueUrl)).toEqual([{ jobId: "4242", configName: "linux-x64-large" }]);
    expect(took).toBeLessThan(5000); // GitHub gives up after 10 s
  });

  it("routes by the smallest config holding the job's labels, case-insensitively", async () => {
    await deliver("queued", { id: 1, labels: ["Self-Hosted", "LINUX", "x64"] });
    await deliver("queued", { id: 2, labels: ["self-hosted", "gpu"] });
    const byId = Object.fromEntries((await jobs()).map((j) => [j.jobId, j.configName]));
    expect(byId).toEqual({ "1": "linux-x64", "2": "linux-x64-gpu" });
    expect(
      launchMessages(sandbox, queueUrl)
        .map((m) => m.configName)
        .sort(),
    ).toEqual(["linux-x64", "linux-x64-gpu"]);
  });

  it("accepts a base64-encoded body (verified over the decoded bytes)", async () => {
    const response = await deliver("queued", { id: 9 }, { base64: true });
    expect(response.statusCode).toBe(202);
    expect((await onlyJob()).jobId).toBe("9");
    expect(launchMessages(sandbox, queueUrl)).toHaveLength(1);
  });

  it("reads headers whatever their case", async () => {
    const payload = JSON.stringify(workflowJobEvent("queued", { id: 10 }));
    const event = await signedApiGatewayEvent(payload, SECRET);
    event.headers = Object.fromEntries(
      Object.entries(event.headers).map(([name, value]) => [
        name.replace(/(^|-)([a-z])/g, (m) => m.toUpperCase()),
        value,
      ]),
    );
    expect(event.headers["X-Hub-Signature-256"]).toBeDefined();
    expect((await handler(event)).statusCode).toBe(202);
    expect(launchMessages(sandbox, queueUrl)).toHaveLength(1);
  });

  it("records a GHES job with its host", async () => {
    vi.stubEnv("GITHUB_HOST", GHES_HOST);
    vi.stubEnv("GITHUB_OWNER", "octo-org");
    const payload = workflowJobEvent("queued", { ghes: true, id: 31 });
    expect(payload.enterprise).toBeDefined();
    const response = await handler(await signedApiGatewayEvent(payload, SECRET, { ghesHost: GHES_HOST }));
    expect(response.statusCode).toBe(202);
    expect(await onlyJob()).toMatchObject({
      jobId: "31",
      githubHost: GHES_HOST,
      repo: "octo-org/example-workflow",
      owner: "octo-org",
      installationId: 7,
      runAttempt: 1,
      configName: "linux-x64-large",
    });
  });
});

describe("rejected deliveries change nothing", () => {
  const cases: { name: string; event: () => Promise<APIGatewayProxyEventV2> }[] = [
    {
      name: "forged (signed with another secret)",
      event: () => signedApiGatewayEvent(workflowJobEvent("queued"), "not-the-secret"),
    },
    {
      name: "unsigned",
      event: () => signedApiGatewayEvent(workflowJobEvent("queued"), SECRET, { signature: null }),
    },
    {
      name: "tampered (signature of another body)",
      event: async () => {
        const event = await signedApiGatewayEvent(workflowJobEvent("queued", { id: 1 }), SECRET);
        event.body = JSON.stringify(workflowJobEvent("queued", { id: 2 }));
        return event;
      },
    },
    {
      name: "signed with SHA-1 only (X-Hub-Signature)",
      event: async () => {
        const event = await signedApiGatewayEvent(workflowJobEvent("queued"), SECRET, { signature: null });
        event.headers["x-hub-signature"] = "sha1=0123456789abcdef0123456789abcdef01234567";
        return event;
      },
    },
    {
      name: "signature in the wrong format",
      event: () => signedApiGatewayEvent(workflowJobEvent("queued"), SECRET, { signature: "sha256=xyz" }),
    },
    {
      name: "base64 flag on a body that was signed as sent (decoded body differs)",
      event: async () => {
        const event = await signedApiGatewayEvent(workflowJobEvent("queued"), SECRET);
        event.isBase64Encoded = true;
        return event;
      },
    },
  ];
  it.each(cases)("401: $name", async ({ event }) => {
    const response = await handler(await event());
    expect(response.statusCode).toBe(401);
    expect(bodyOf(response).status).toBe("rejected");
    expect(dataCalls()).toEqual([]);
    expect(await jobs()).toEqual([]);
    expect(launchMessages(sandbox, queueUrl)).toEqual([]);
  });

  const invalid: { name: string; body: () => string; reason: RegExp }[] = [
    { name: "malformed JSON", body: () => '{"action":"queued","workflow_job":', reason: /not valid JSON/ },
    {
      name: "missing workflow_job.id",
      body: () => JSON.stringify(workflowJobEvent("queued", { workflowJob: { id: undefined } })),
      reason: /workflow_job\.id/,
    },
    {
      name: "labels not an array of strings",
      body: () =>
        JSON.stringify(workflowJobEvent("queued", { workflowJob: { labels: ["self-hosted", 42] } })),
      reason: /workflow_job\.labels/,
    },
    {
      name: "labels a string",
      body: () => JSON.stringify(workflowJobEvent("queued", { workflowJob: { labels: "self-hosted" } })),
      reason: /workflow_job\.labels/,
    },
    {
      name: "job id not a number",
      body: () => JSON.stringify(workflowJobEvent("queued", { workflowJob: { id: "4242" } })),
      reason: /workflow_job\.id/,
    },
    {
      name: "no repository",
      body: () => JSON.stringify({ ...workflowJobEvent("queued"), repository: undefined }),
      reason: /repository/,
    },
    {
      name: "no action",
      body: () => JSON.stringify({ ...workflowJobEvent("queued"), action: 7 }),
      reason: /action/,
    },
    { name: "JSON that is not an object", body: () => "[1,2]", reason: /action/ },
  ];
  it.each(invalid)("400: $name (signed)", async ({ body, reason }) => {
    const response = await handler(await signedApiGatewayEvent(body(), SECRET));
    expect(response.statusCode).toBe(400);
    expect(bodyOf(response).reason).toMatch(reason);
    expect(dataCalls()).toEqual([]);
  });
});

describe("signed deliveries missing GitHub's headers", () => {
  it.each(["x-github-event", "x-github-delivery"])("400 without %s", async (header) => {
    const event = await signedApiGatewayEvent(workflowJobEvent("queued"), SECRET);
    delete event.headers[header];
    const response = await handler(event);
    expect(response.statusCode).toBe(400);
    expect(bodyOf(response).reason).toMatch(/missing X-GitHub-(Event|Delivery)/);
    expect(dataCalls()).toEqual([]);
  });
});

describe("ignored deliveries", () => {
  it("answers ping with 200", async () => {
    const response = await handler(
      await signedApiGatewayEvent({ zen: "Design for failure.", hook_id: 1 }, SECRET, { event: "ping" }),
    );
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toEqual({ status: "pong" });
    expect(dataCalls()).toEqual([]);
  });

  const cases: { name: string; send: () => Promise<APIGatewayProxyStructuredResultV2>; reason: RegExp }[] = [
    {
      name: "another event",
      send: async () =>
        handler(await signedApiGatewayEvent({ action: "opened", number: 1 }, SECRET, { event: "issues" })),
      reason: /^event not handled$/,
    },
    {
      name: "another workflow_job action",
      send: async () =>
        handler(await signedApiGatewayEvent({ ...workflowJobEvent("queued"), action: "paused" }, SECRET)),
      reason: /^workflow_job action not handled$/,
    },
    {
      name: "no self-hosted label",
      send: () => deliver("queued", { labels: ["linux", "x64", "large"] }),
      reason: /lacks the required label "self-hosted"/,
    },
    {
      name: "a GitHub-hosted job, also when it completes",
      send: () => deliver("completed", { labels: ["ubuntu-latest"] }),
      reason: /lacks the required label/,
    },
    {
      name: "empty labels",
      send: () => deliver("queued", { labels: [] }),
      reason: /lacks the required label/,
    },
  ];
  it.each(cases)("202: $name", async ({ send, reason }) => {
    const response = await send();
    expect(response.statusCode).toBe(202);
    expect(bodyOf(response)).toMatchObject({ status: "ignored", reason: expect.stringMatching(reason) });
    expect(dataCalls()).toEqual([]);
  });

  it("202 for a job with labels no config has, kept a day for npm run status (no job, no message)", async () => {
    const response = await deliver("queued", {
      id: 9090,
      runId: 12,
      labels: ["self-hosted", "linux", "larg"],
    });
    expect(response.statusCode).toBe(202);
    expect(bodyOf(response)).toEqual({
      status: "ignored",
      reason: "no label config has all of the job's labels",
    });
    const [put, ...others] = dataCalls() as {
      operation: string;
      params: { Item: Record<string, unknown> };
    }[];
    expect(others).toEqual([]);
    expect(put?.operation).toBe("PutItem");
    const item = unmarshall(put!.params.Item as never);
    expect(item).toMatchObject({
      jobId: "#unmatched#9090",
      labels: ["self-hosted", "linux", "larg"],
      repo: "Codertocat/Hello-World",
      jobUrl: "https://github.com/Codertocat/Hello-World/actions/runs/12/job/9090",
    });
    expect(item).not.toHaveProperty("state");
    expect((await jobs()).map((j) => j.jobId)).toEqual(["#unmatched#9090"]);
  });

  it("does not keep an unmatched job's later actions, only its queued", async () => {
    await deliver("completed", { labels: ["self-hosted", "windows"] });
    expect(dataCalls()).toEqual([]);
  });
});

describe("duplicates and redeliveries", () => {
  it("a redelivery of the same queued event changes nothing", async () => {
    const event = await signedApiGatewayEvent(workflowJobEvent("queued", { id: 50 }), SECRET);
    expect((await handler(event)).statusCode).toBe(202);
    const first = await onlyJob();
    const again = await handler(event);
    expect(again.statusCode).toBe(200);
    expect(bodyOf(again)).toMatchObject({ status: "duplicate", jobId: "50" });
    expect(await onlyJob()).toEqual(first);
    expect(launchMessages(sandbox, queueUrl)).toHaveLength(1);
  });

  it("20 concurrent copies make one record and one message", async () => {
    const event = await signedApiGatewayEvent(workflowJobEvent("queued", { id: 60 }), SECRET);
    const responses = await Promise.all(Array.from({ length: 20 }, () => handler(event)));
    const statuses = responses.map((r) => bodyOf(r).status).sort();
    expect(statuses).toEqual(["accepted", ...Array(19).fill("duplicate")]);
    expect((await jobs()).map((j) => j.jobId)).toEqual(["60"]);
    expect(launchMessages(sandbox, queueUrl)).toEqual([{ jobId: "60", configName: "linux-x64-large" }]);
  });

  it("queued → waiting → queued enqueues once and notes the wait", async () => {
    expect((await deliver("queued", { id: 70 })).statusCode).toBe(202);
    const waiting = await deliver("waiting", { id: 70 }, { deliveryId: "d-wait" });
    expect(bodyOf(waiting)).toMatchObject({ status: "recorded", jobId: "70" });
    expect(await onlyJob()).toMatchObject({
      state: "queued",
      lastAction: "waiting",
      lastDeliveryId: "d-wait",
    });
    const requeued = await deliver("queued", { id: 70 });
    expect(requeued.statusCode).toBe(200);
    expect(bodyOf(requeued).status).toBe("duplicate");
    expect(await onlyJob()).toMatchObject({ state: "queued", lastAction: "waiting" });
    expect(launchMessages(sandbox, queueUrl)).toHaveLength(1);
  });

  it("waiting for a job never seen records nothing", async () => {
    const response = await deliver("waiting", { id: 71 });
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response).status).toBe("duplicate");
    expect(await jobs()).toEqual([]);
  });
});

describe("the job's lifecycle", () => {
  it("queued → in_progress → completed records runner and conclusion", async () => {
    await deliver("queued", { id: 80 });
    const started = await deliver(
      "in_progress",
      { id: 80, runnerId: 23, runnerName: "rf-i-0123" },
      { deliveryId: "d-2" },
    );
    expect(started.statusCode).toBe(200);
    expect(bodyOf(started)).toMatchObject({ status: "recorded", jobId: "80" });
    expect(await onlyJob()).toMatchObject({
      state: "running",
      runnerId: 23,
      runnerName: "rf-i-0123",
      lastAction: "in_progress",
    });
    const done = await deliver("completed", { id: 80, conclusion: "failure" }, { deliveryId: "d-3" });
    expect(done.statusCode).toBe(200);
    const job = await onlyJob();
    expect(job).toMatchObject({
      state: "completed",
      conclusion: "failure",
      lastAction: "completed",
      lastDeliveryId: "d-3",
    });
    expect(job.completedAt).toBeDefined();
    expect(job.deliveryId).not.toBe("d-3"); // the creating delivery stays recorded
    // Late and duplicate news change nothing.
    for (const action of ["in_progress", "completed", "waiting", "queued"] as const) {
      const response = await deliver(action, { id: 80 });
      expect(bodyOf(response).status).toBe("duplicate");
    }
    expect(await onlyJob()).toEqual(job);
    expect(launchMessages(sandbox, queueUrl)).toHaveLength(1);
  });

  it("completed before queued: created completed, and the late queued does not resurrect it", async () => {
    const done = await deliver("completed", { id: 90, conclusion: "cancelled" });
    expect(done.statusCode).toBe(200);
    expect(await onlyJob()).toMatchObject({
      jobId: "90",
      state: "completed",
      conclusion: "cancelled",
      configName: "linux-x64-large",
    });
    const late = await deliver("queued", { id: 90 });
    expect(late.statusCode).toBe(200);
    expect(bodyOf(late).status).toBe("duplicate");
    expect(await onlyJob()).toMatchObject({ state: "completed" });
    expect(launchMessages(sandbox, queueUrl)).toEqual([]);
  });

  it("in_progress before queued: created running, no launch for the late queued", async () => {
    await deliver("in_progress", { id: 91, runnerId: 4, runnerName: "someone-else" });
    expect(await onlyJob()).toMatchObject({ state: "running", runnerId: 4, runnerName: "someone-else" });
    expect(bodyOf(await deliver("queued", { id: 91 })).status).toBe("duplicate");
    expect(launchMessages(sandbox, queueUrl)).toEqual([]);
    await deliver("completed", { id: 91 });
    expect(await onlyJob()).toMatchObject({ state: "completed", conclusion: "success" });
  });

  it("a GitHub conclusion after we failed the job keeps our state and records it", async () => {
    await deliver("queued", { id: 92 });
    const { transitionJob } = await import("../lambda/adapters/jobs-table");
    await transitionJob("92", "timed-out", { set: { reason: "no capacity in 60 min" } });
    const response = await deliver("completed", { id: 92, conclusion: "cancelled" });
    expect(bodyOf(response).status).toBe("recorded");
    expect(await onlyJob()).toMatchObject({
      state: "timed-out",
      conclusion: "cancelled",
      reason: "no capacity in 60 min",
    });
  });
});

describe("our own failures answer 5xx so GitHub can redeliver", () => {
  it("SQS down: 500, then the redelivery still enqueues (and only once)", async () => {
    sandbox.faults.fail("sqs", "SendMessageBatch", { code: "InternalError", status: 500 });
    const event = await signedApiGatewayEvent(workflowJobEvent("queued", { id: 100 }), SECRET);
    const failed = await handler(event);
    expect(failed.statusCode).toBe(500);
    expect(bodyOf(failed).status).toBe("failed");
    const recorded = await onlyJob();
    expect(recorded.state).toBe("queued");
    expect(recorded.enqueuedAt).toBeUndefined();
    expect(recorded.enqueueClaimedAt).toBeUndefined(); // released, so the redelivery need not wait
    expect(launchMessages(sandbox, queueUrl)).toEqual([]);

    sandbox.faults.clear();
    const redelivered = await handler(event);
    expect(redelivered.statusCode).toBe(202);
    expect(bodyOf(redelivered)).toMatchObject({ status: "accepted", jobId: "100" });
    expect(launchMessages(sandbox, queueUrl)).toEqual([{ jobId: "100", configName: "linux-x64-large" }]);
    expect((await onlyJob()).enqueuedAt).toBeDefined();
    expect(bodyOf(await handler(event)).status).toBe("duplicate");
    expect(launchMessages(sandbox, queueUrl)).toHaveLength(1);
  });

  it("a claim left by a delivery that died is taken over once it is stale", async () => {
    await deliver("queued", { id: 101 });
    const { updateJobFields } = await import("../lambda/adapters/jobs-table");
    // As if the creating delivery had crashed between its write and its message, 2 minutes ago.
    await updateJobFields("101", {
      set: { enqueueClaimedAt: new Date(Date.now() - 120_000).toISOString() },
      remove: ["enqueuedAt"],
    });
    sandbox.sqs.reset();
    expect(bodyOf(await deliver("queued", { id: 101 })).status).toBe("accepted");
    expect(launchMessages(sandbox, queueUrl)).toHaveLength(1);
  });

  it("a fresh claim (a delivery still sending) is left alone", async () => {
    await deliver("queued", { id: 102 });
    const { updateJobFields } = await import("../lambda/adapters/jobs-table");
    await updateJobFields("102", {
      set: { enqueueClaimedAt: new Date().toISOString() },
      remove: ["enqueuedAt"],
    });
    sandbox.sqs.reset();
    expect(bodyOf(await deliver("queued", { id: 102 })).status).toBe("duplicate");
    expect(launchMessages(sandbox, queueUrl)).toEqual([]);
  });

  it("DynamoDB down: 500 and nothing enqueued", async () => {
    sandbox.faults.fail("dynamodb", "*", { code: "InternalServerError", status: 500 });
    const response = await deliver("queued", { id: 110 });
    expect(response.statusCode).toBe(500);
    expect(launchMessages(sandbox, queueUrl)).toEqual([]);
    sandbox.faults.clear();
    expect((await deliver("queued", { id: 110 })).statusCode).toBe(202);
  });

  it("SSM down at cold start: 500 without touching DynamoDB or SQS; the next request fetches the secret", async () => {
    sandbox.faults.fail("ssm", "GetParameter", { code: "InternalServerError", status: 500 });
    vi.resetModules(); // a new process: nothing cached
    const fresh = (await import("../lambda/webhook")).handler as Handler;
    const event = await signedApiGatewayEvent(workflowJobEvent("queued", { id: 120 }), SECRET);
    const response = await fresh(event);
    expect(response.statusCode).toBe(500);
    expect(dataCalls()).toEqual([]);
    sandbox.faults.clear();
    expect((await fresh(event)).statusCode).toBe(202);
    // Fetched at init (failed), at the first request (failed), then once more: never per request.
    const fetches = sandbox.callsTo("ssm", "GetParameter").length;
    await fresh(await signedApiGatewayEvent(workflowJobEvent("queued", { id: 121 }), SECRET));
    expect(sandbox.callsTo("ssm", "GetParameter")).toHaveLength(fetches);
  });
});

describe("replays: a queued delivery for a job created longer ago than the queue timeout", () => {
  const MINUTE = 60_000;
  const forget = (jobId: string) =>
    sandbox.dynamodb.client.send(
      new DeleteItemCommand({ TableName: world.tableName, Key: { jobId: { S: jobId } } }),
    );

  it("launches nothing once the ledger has forgotten the job (its item expired)", async () => {
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    const event = await signedApiGatewayEvent(workflowJobEvent("queued", { id: 140 }), SECRET);
    expect(bodyOf(await handler(event)).status).toBe("accepted");
    await forget("140"); // as the TTL would, days later
    vi.setSystemTime(Date.now() + 61 * MINUTE);

    const replayed = await handler(event);
    expect(replayed.statusCode).toBe(202);
    expect(bodyOf(replayed)).toEqual({
      status: "ignored",
      reason: "queued for a job created more than the queue timeout (60 min) ago: not launched",
    });
    expect(await jobs()).toEqual([]);
    expect(launchMessages(sandbox, queueUrl)).toHaveLength(1);
  });

  it("follows the queue timeout setting, and launches a job within it (or dated ahead by clock skew)", async () => {
    vi.stubEnv("QUEUE_TIMEOUT_MINUTES", "120");
    const ago = (minutes: number) => new Date(Date.now() - minutes * MINUTE).toISOString();
    expect(bodyOf(await deliver("queued", { id: 141, createdAt: ago(119) })).status).toBe("accepted");
    expect(bodyOf(await deliver("queued", { id: 142, createdAt: ago(-5) })).status).toBe("accepted");
    const late = await deliver("queued", { id: 143, createdAt: ago(121) });
    expect(bodyOf(late).reason).toMatch(/queue timeout \(120 min\)/);
    expect((await jobs()).map((j) => j.jobId).sort()).toEqual(["141", "142"]);
  });

  it("launches nothing without a readable created_at", async () => {
    for (const created_at of [undefined, "yesterday"]) {
      const response = await deliver("queued", { id: 144, workflowJob: { created_at } });
      expect(bodyOf(response)).toMatchObject({
        status: "ignored",
        reason: expect.stringMatching(/created_at/),
      });
    }
    expect(dataCalls()).toEqual([]);
  });

  it("still records later news of an old job (it cannot launch anything)", async () => {
    const response = await deliver("completed", { id: 145, createdAt: "2021-09-13T02:21:13Z" });
    expect(bodyOf(response).status).toBe("recorded");
    expect(await onlyJob()).toMatchObject({ jobId: "145", state: "completed" });
  });

  it("the ledger outlives both the longest queue timeout and GitHub's redelivery window", () => {
    expect(MIN_JOB_TTL_DAYS * 24 * 60).toBeGreaterThan(MAX_QUEUE_TIMEOUT_MINUTES);
    expect(MIN_JOB_TTL_DAYS).toBeGreaterThan(REDELIVERY_WINDOW_DAYS);
    expect(loadSettings({ JOB_TTL_DAYS: "1" }).jobTtlDays).toBe(MIN_JOB_TTL_DAYS);
    expect(loadSettings({}).jobTtlDays).toBe(30);
    const limits = (queueTimeoutMinutes: number) =>
      stackConfigSchema.shape.limits.safeParse({ queueTimeoutMinutes }).success;
    expect(limits(MAX_QUEUE_TIMEOUT_MINUTES)).toBe(true);
    expect(limits(MAX_QUEUE_TIMEOUT_MINUTES + 1)).toBe(false);
  });
});

describe("deliveries for what the stack does not serve: 2xx, nothing recorded", () => {
  const withOwnerLogin = async (login: string) => {
    const payload = workflowJobEvent("queued");
    (payload.repository as { owner: { login: string } }).owner.login = login;
    return handler(await signedApiGatewayEvent(payload, SECRET));
  };
  const cases: {
    name: string;
    env?: Record<string, string>;
    send: () => Promise<APIGatewayProxyStructuredResultV2>;
    reason: string;
  }[] = [
    {
      name: "another owner's queued job",
      send: () => deliver("queued", { repo: "someone-else/Hello-World" }),
      reason: "another owner",
    },
    {
      name: "another owner's in_progress",
      send: () => deliver("in_progress", { repo: "someone-else/Hello-World" }),
      reason: "another owner",
    },
    {
      name: "another owner's completed",
      send: () => deliver("completed", { repo: "someone-else/Hello-World" }),
      reason: "another owner",
    },
    {
      name: "an owner login unlike the repository's",
      send: () => withOwnerLogin("someone-else"),
      reason: "another owner",
    },
    {
      name: "another host (a GHES job at a github.com stack)",
      send: () => deliver("queued", { ghes: true, repo: "Codertocat/Hello-World" }),
      reason: "another GitHub host",
    },
    {
      name: "repo scope: a repository not listed",
      env: { RUNNER_SCOPE: "repo", GITHUB_REPOSITORIES: "Spoon-Knife,linguist" },
      send: () => deliver("queued"),
      reason: "a repository this stack does not serve",
    },
    {
      name: "repo scope without a list: none",
      env: { RUNNER_SCOPE: "repo" },
      send: () => deliver("queued"),
      reason: "a repository this stack does not serve",
    },
    {
      name: "App mode with its installation configured: another installation",
      env: { GITHUB_INSTALLATION_ID: "3456996" },
      send: () => deliver("queued", { installationId: 42 }),
      reason: "another App installation",
    },
  ];
  it.each(cases)("202 not served: $name", async ({ env = {}, send, reason }) => {
    for (const [name, value] of Object.entries(env)) vi.stubEnv(name, value);
    const response = await send();
    expect(response.statusCode).toBe(202);
    expect(bodyOf(response)).toEqual({ status: "not-served", reason: `not served: ${reason}` });
    expect(dataCalls()).toEqual([]);
  });

  it("serves the owner and listed repositories whatever their case, and any installation when none is configured", async () => {
    vi.stubEnv("RUNNER_SCOPE", "repo");
    vi.stubEnv("GITHUB_REPOSITORIES", "Spoon-Knife, hello-world");
    const first = await deliver("queued", { id: 150, repo: "CODERTOCAT/Hello-World", installationId: 9 });
    expect(bodyOf(first).status).toBe("accepted");
    vi.stubEnv("GITHUB_INSTALLATION_ID", "9");
    expect(bodyOf(await deliver("queued", { id: 151, installationId: 9 })).status).toBe("accepted");
    expect(launchMessages(sandbox, queueUrl)).toHaveLength(2);
  });
});

describe("bounded input: an oversized signed delivery gets 400 and writes nothing", () => {
  /** Labels that route once trimmed (`linux` and spaces), so only the bounds stop them. */
  const padded = (count: number, length: number) => [
    "self-hosted",
    ...Array.from({ length: count - 1 }, (_, i) => ["linux", "x64", "large"][i % 3]!.padEnd(length)),
  ];

  it("1,000 labels of 500 characters (an item over DynamoDB's 400 KB)", async () => {
    const response = await deliver("queued", { id: 160, labels: padded(1000, 500) });
    expect(response.statusCode).toBe(400);
    expect(bodyOf(response).reason).toMatch(/^invalid workflow_job payload: workflow_job\.labels.* too_big/);
    expect(dataCalls()).toEqual([]);
  });

  it.each([
    ["101 labels", { labels: padded(MAX_JOB_LABELS + 1, 5) }, /workflow_job\.labels too_big \(at most 100\)/],
    [
      "a label of 101 characters",
      { labels: ["self-hosted", "x".repeat(MAX_LABEL_LENGTH + 1)] },
      /workflow_job\.labels\.1 too_big \(at most 100\)/,
    ],
    [
      "a runner name of 257 characters",
      { runnerName: "r".repeat(MAX_NAME_LENGTH + 1) },
      /workflow_job\.runner_name too_big/,
    ],
  ])("%s", async (_name, overrides, reason) => {
    const response = await deliver("in_progress", { id: 161, ...overrides });
    expect(response.statusCode).toBe(400);
    expect(bodyOf(response).reason).toMatch(reason);
    expect(dataCalls()).toEqual([]);
  });

  it("a delivery id of 257 characters", async () => {
    const response = await deliver("queued", { id: 162 }, { deliveryId: "d".repeat(MAX_NAME_LENGTH + 1) });
    expect(response.statusCode).toBe(400);
    expect(dataCalls()).toEqual([]);
  });

  it.each([false, true])(
    "a body over 1 MiB (base64: %s), judged before decoding or verifying",
    async (base64) => {
      const body = JSON.stringify({ ...workflowJobEvent("queued"), padding: "x".repeat(MAX_BODY_BYTES) });
      for (const signature of [undefined, `sha256=${"0".repeat(64)}`]) {
        const response = await handler(await signedApiGatewayEvent(body, SECRET, { base64, signature }));
        expect(response.statusCode).toBe(400);
        expect(bodyOf(response).reason).toBe(`body larger than ${MAX_BODY_BYTES} bytes`);
      }
      expect(sandbox.calls).toEqual([]);
    },
  );

  it("the most labels a delivery may carry are recorded", async () => {
    const labels = padded(MAX_JOB_LABELS, MAX_LABEL_LENGTH);
    expect(bodyOf(await deliver("queued", { id: 163, labels })).status).toBe("accepted");
    expect((await onlyJob()).labels).toEqual(labels);
  });

  it("the largest item any delivery can make stays far below DynamoDB's 400 KB", () => {
    const widest = "\u20ac"; // 3 bytes in UTF-8: the most per UTF-16 unit that a length limit counts
    const text = (length: number) => widest.repeat(length);
    const owner = text(39);
    const route = { name: "c".repeat(40), labels: [text(MAX_LABEL_LENGTH)] };
    const payload = (action: WorkflowJobAction) =>
      JSON.stringify({
        action,
        workflow_job: {
          id: Number.MAX_SAFE_INTEGER,
          run_id: Number.MAX_SAFE_INTEGER,
          run_attempt: Number.MAX_SAFE_INTEGER,
          labels: [`self-hosted${" ".repeat(89)}`, ...Array(MAX_JOB_LABELS - 1).fill(route.labels[0])],
          created_at: new Date().toISOString(),
          runner_id: Number.MAX_SAFE_INTEGER,
          runner_name: text(MAX_NAME_LENGTH),
          conclusion: text(MAX_NAME_LENGTH),
        },
        repository: {
          full_name: `${owner}/${text(MAX_NAME_LENGTH - 40)}`,
          html_url: `https://github.com/${owner}/x`,
          owner: { login: owner },
        },
        installation: { id: Number.MAX_SAFE_INTEGER },
      });
    const items = (["queued", "in_progress", "completed"] as const).map((action) => {
      const intake = decideIntake(
        { event: "workflow_job", deliveryId: text(MAX_NAME_LENGTH), body: payload(action) },
        {
          routes: [route],
          requiredLabel: "self-hosted",
          served: { owner, host: "github.com" },
          queueTimeoutMinutes: 60,
          now: new Date(),
        },
      );
      if (intake.kind === "launch") return intake.job;
      if (intake.kind === "record" && intake.plan.createIfMissing) return intake.plan.createIfMissing;
      throw new Error(`${action}: ${JSON.stringify(intake).slice(0, 200)}`);
    });
    const largest = Math.max(...items.map(dynamoItemBytes));
    expect(largest).toBeGreaterThan(MAX_JOB_LABELS * MAX_LABEL_LENGTH * 3); // the labels are all there
    // Other writers add bounded fields of their own (instance, reason, timestamps): a few KB.
    expect(largest).toBeLessThan(50 * 1024);
  });
});

/**
 * An item's size as DynamoDB counts it, rounded up: each attribute's name and value in UTF-8 bytes,
 * a number at most 21 bytes, a list or map 3 bytes plus 1 per element.
 */
function dynamoItemBytes(item: object): number {
  const size = (value: unknown): number => {
    if (typeof value === "string") return Buffer.byteLength(value);
    if (typeof value === "number") return 21;
    if (typeof value === "boolean" || value === null) return 1;
    if (Array.isArray(value)) return 3 + value.reduce((sum: number, v) => sum + size(v) + 1, 0);
    if (typeof value === "object")
      return (
        3 +
        Object.entries(value as object).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + size(v) + 1, 0)
      );
    return 0;
  };
  return Object.entries(item).reduce(
    (sum, [name, value]) => sum + (value === undefined ? 0 : Buffer.byteLength(name) + size(value)),
    0,
  );
}

describe("answers never quote the request", () => {
  const marker = "zz-request-text";
  it.each([
    ["labels no config has", () => deliver("queued", { labels: ["self-hosted", marker] })],
    [
      "another event",
      async () => handler(await signedApiGatewayEvent({ action: "x" }, SECRET, { event: marker })),
    ],
    [
      "another action",
      async () =>
        handler(await signedApiGatewayEvent({ ...workflowJobEvent("queued"), action: marker }, SECRET)),
    ],
  ])("ignored: %s (the log has it)", async (_name, send) => {
    const written = captureOutput();
    const response = await send();
    vi.restoreAllMocks();
    expect(response.statusCode).toBe(202);
    expect(bodyOf(response).status).toBe("ignored");
    expect(response.body).not.toContain(marker);
    const logged = written.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(JSON.stringify(logged.find((r) => r.message === "webhook delivery"))).toContain(marker);
  });
});

describe("signatures over bytes and headers as API Gateway joins them", () => {
  it("a signature header sent twice under two cases is one joined value: 401", async () => {
    const event = await signedApiGatewayEvent(workflowJobEvent("queued"), SECRET);
    event.headers["X-Hub-Signature-256"] = event.headers["x-hub-signature-256"]!;
    const response = await handler(event);
    expect(response.statusCode).toBe(401);
    expect(dataCalls()).toEqual([]);
  });

  it("a signed body that is not UTF-8: 400", async () => {
    const bytes = Buffer.concat([
      Buffer.from('{"action":"queued","x":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}'),
    ]);
    const event = await signedApiGatewayEvent("{}", SECRET, { signature: signBytes(SECRET, bytes) });
    Object.assign(event, { body: bytes.toString("base64"), isBase64Encoded: true });
    const response = await handler(event);
    expect(response.statusCode).toBe(400);
    expect(bodyOf(response).reason).toBe("body is not UTF-8");
    expect(dataCalls()).toEqual([]);
  });
});

describe("logs and metrics", () => {
  it("are JSON lines with the delivery, job and repo, never the secret, signature or body", async () => {
    const written = captureOutput();
    const signatures: string[] = [];
    const send = async (event: APIGatewayProxyEventV2) => {
      const signature = event.headers["x-hub-signature-256"];
      if (signature) signatures.push(signature);
      return handler(event);
    };
    const context = {
      awsRequestId: "c0ffee00-1111-2222-3333-444455556666",
      functionName: "runner-fleet-webhook",
      functionVersion: "$LATEST",
      invokedFunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:runner-fleet-webhook",
      memoryLimitInMB: "256",
    } as Context;
    const first = await signedApiGatewayEvent(workflowJobEvent("queued", { id: 130 }), SECRET, {
      deliveryId: "d-log",
    });
    signatures.push(first.headers["x-hub-signature-256"]!);
    await handler(first, context);
    await send(await signedApiGatewayEvent(workflowJobEvent("queued", { id: 130 }), SECRET));
    await send(await signedApiGatewayEvent(workflowJobEvent("queued", { id: 131 }), "forged-secret"));
    await send(await signedApiGatewayEvent(workflowJobEvent("queued", { labels: ["windows"] }), SECRET));
    await send(await signedApiGatewayEvent("{oops", SECRET));
    sandbox.faults.fail("sqs", "SendMessageBatch", { code: "InternalError", status: 500 });
    await send(await signedApiGatewayEvent(workflowJobEvent("queued", { id: 132 }), SECRET));
    vi.restoreAllMocks();

    const lines = written.flatMap((chunk) => chunk.split("\n").filter(Boolean));
    const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    for (const line of lines) {
      expect(line).not.toContain(SECRET);
      expect(line).not.toContain("forged-secret");
      for (const signature of signatures) expect(line).not.toContain(signature.slice("sha256=".length));
      expect(line).not.toContain("Hello-World/actions"); // nothing of the body beyond ids
      expect(line).not.toContain("{oops");
    }
    const accepted = records.find((r) => r.message === "webhook delivery" && r.deliveryId === "d-log");
    expect(accepted).toMatchObject({
      outcome: "accepted",
      statusCode: 202,
      jobId: "130",
      repo: "Codertocat/Hello-World",
      configName: "linux-x64-large",
      level: "INFO",
      function_request_id: context.awsRequestId,
    });
    expect(records.filter((r) => r.message === "webhook delivery").map((r) => r.outcome)).toEqual([
      "accepted",
      "duplicate",
      "rejected",
      "ignored",
      "rejected",
      "failed",
    ]);
    expect(records.some((r) => r.message === "webhook delivery failed" && r.level === "ERROR")).toBe(true);

    // One EMF document per invocation, each with its outcome's metric.
    const emf = records.filter((r) => r._aws !== undefined);
    const metricNames = emf.map((r) =>
      (r._aws as { CloudWatchMetrics: { Metrics: { Name: string }[] }[] }).CloudWatchMetrics[0]!.Metrics.map(
        (m) => m.Name,
      ),
    );
    expect(metricNames).toEqual([
      ["WebhookAccepted"],
      ["WebhookDuplicate"],
      ["WebhookRejected"],
      ["WebhookIgnored"],
      ["WebhookRejected"],
      ["WebhookFailed"],
    ]);
    expect(emf[0]).toMatchObject({ WebhookAccepted: 1 });
  });
});
