/**
 * The JSON-protocol client (lambda/adapters/aws-json.ts) against the sandbox: the request the SDK
 * would send (target, JSON body, a SigV4 signature AWS accepts, a user agent), the SDK's error names
 * (SQS's query codes included), and retries exactly where the SDK's standard mode retries.
 */
import type { IncomingHttpHeaders } from "node:http";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AwsServiceError, isServiceError } from "../lambda/adapters/aws-json";
import { dynamodb, isConditionalCheckFailed } from "../lambda/adapters/dynamodb";
import { listJobsByState } from "../lambda/adapters/job-queries";
import { createJob, getJob, transitionJob } from "../lambda/adapters/jobs-table";
import { enqueueLaunches } from "../lambda/adapters/launch-queue";
import { sqs } from "../lambda/adapters/sqs";
import { ssm } from "../lambda/adapters/ssm";
import { forgetSecrets, readSecret } from "../lambda/adapters/ssm-secrets";
import { version } from "../package.json";
import { type SigV4Proxy, startSigV4Proxy } from "./bootstrap/sigv4-proxy";
import { jobRecord } from "./lifecycle-support";
import { type Sandbox, startSandbox } from "./sandbox";
import { listen, type RequestHandler } from "./sandbox/http";
import { sqsModelErrors } from "./sandbox/sqs";

let sandbox: Sandbox;
let restoreEnv: () => void;
let jobsTable: string;

beforeAll(async () => {
  sandbox = await startSandbox();
  jobsTable = (await sandbox.createTables()).jobs;
  restoreEnv = sandbox.useEnv({ JOBS_TABLE: jobsTable });
});

afterAll(async () => {
  restoreEnv?.();
  await sandbox?.close();
});

beforeEach(async () => {
  await sandbox.reset();
  forgetSecrets();
});

describe("SSM", () => {
  it("reads and decrypts a SecureString with a signed GetParameter", async () => {
    sandbox.ssm.put("/rf/test/secret", "s3cr3t value", { type: "SecureString" });
    expect(await readSecret("/rf/test/secret")).toBe("s3cr3t value");
    const [call] = sandbox.callsTo("ssm", "GetParameter");
    expect(call?.params).toMatchObject({ Name: "/rf/test/secret", WithDecryption: true });
    expect(call?.status).toBe(200);
  });

  it("names a missing parameter as the SDK does and does not retry it", async () => {
    const error = await ssm("GetParameter", { Name: "/rf/test/missing" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsServiceError);
    expect(isServiceError(error, "ParameterNotFound")).toBe(true);
    expect((error as AwsServiceError).$metadata.httpStatusCode).toBe(400);
    expect(sandbox.callsTo("ssm", "GetParameter")).toHaveLength(1);
  });

  it("retries a throttled or 5xx answer, up to three attempts", async () => {
    sandbox.ssm.put("/rf/test/secret", "v", { type: "SecureString" });
    sandbox.faults.fail("ssm", "GetParameter", { code: "ThrottlingException", status: 400 }, { times: 1 });
    sandbox.faults.fail("ssm", "GetParameter", { code: "InternalServerError", status: 500 }, { times: 1 });
    expect(await readSecret("/rf/test/secret")).toBe("v");
    expect(sandbox.callsTo("ssm", "GetParameter")).toHaveLength(3);

    forgetSecrets();
    sandbox.faults.fail("ssm", "GetParameter", { code: "InternalServerError", status: 500 });
    await expect(readSecret("/rf/test/secret")).rejects.toMatchObject({ name: "InternalServerError" });
    expect(sandbox.callsTo("ssm", "GetParameter")).toHaveLength(6);
  });

  it("does not cache a failed secret read: the next call asks again", async () => {
    await expect(readSecret("/rf/test/later")).rejects.toMatchObject({ name: "ParameterNotFound" });
    sandbox.ssm.put("/rf/test/later", "now here", { type: "SecureString" });
    expect(await readSecret("/rf/test/later")).toBe("now here");
  });
});

describe("DynamoDB", () => {
  let proxy: SigV4Proxy;
  let restoreEndpoint: () => void;

  beforeAll(async () => {
    // A proxy that recomputes every signature from the request as received, as AWS does.
    const env = sandbox.env;
    proxy = await startSigV4Proxy({
      target: env.AWS_ENDPOINT_URL_DYNAMODB!,
      credentials: {
        AccessKeyId: env.AWS_ACCESS_KEY_ID!,
        SecretAccessKey: env.AWS_SECRET_ACCESS_KEY!,
        Token: env.AWS_SESSION_TOKEN!,
      },
      region: env.AWS_REGION!,
    });
    restoreEndpoint = sandbox.useEnv({ JOBS_TABLE: jobsTable, AWS_ENDPOINT_URL_DYNAMODB: proxy.url });
  });

  afterAll(async () => {
    restoreEndpoint?.();
    await proxy?.close();
  });

  it("signs every call as AWS checks it, session token included", async () => {
    const job = jobRecord("9001");
    expect(await createJob(job)).toBe(true);
    expect(await transitionJob("9001", "launching")).toMatchObject({ state: "launching" });
    expect(await listJobsByState("launching")).toEqual([expect.objectContaining({ jobId: "9001" })]);
    expect(await getJob("9001")).toMatchObject({ jobId: "9001", state: "launching" });
    expect(proxy.records.map((r) => r.target)).toEqual([
      "DynamoDB_20120810.PutItem",
      "DynamoDB_20120810.UpdateItem",
      "DynamoDB_20120810.Query",
      "DynamoDB_20120810.GetItem",
    ]);
    for (const record of proxy.records) {
      expect(record.problem).toBeUndefined();
      expect(record.signedHeaders).toEqual(expect.arrayContaining(["x-amz-target", "x-amz-security-token"]));
    }
  });

  it("names a failed condition ConditionalCheckFailedException", async () => {
    await createJob(jobRecord("9002"));
    const error = await dynamodb("PutItem", {
      TableName: jobsTable,
      Item: { jobId: { S: "9002" } },
      ConditionExpression: "attribute_not_exists(jobId)",
    }).catch((e: unknown) => e);
    expect(isConditionalCheckFailed(error)).toBe(true);
    expect(error).toMatchObject({ $fault: "client", $metadata: { httpStatusCode: 400 } });
    expect(await createJob(jobRecord("9002"))).toBe(false);
  });

  it("answers a validation error at once, without retrying it", async () => {
    const before = proxy.records.length;
    await expect(
      dynamodb("GetItem", { TableName: jobsTable, Key: { nope: { S: "x" } } }),
    ).rejects.toMatchObject({ name: "ValidationException", $fault: "client" });
    expect(proxy.records.length - before).toBe(1);
  });
});

describe("network failures", () => {
  it("retries a refused connection like the SDK, then throws the network error", async () => {
    const restore = sandbox.useEnv({
      LAUNCH_QUEUE_URL: "http://127.0.0.1:9/000000000000/q",
      AWS_ENDPOINT_URL_SQS: "http://127.0.0.1:9",
    });
    try {
      await expect(enqueueLaunches([{ jobId: "1", configName: "c" }])).rejects.toMatchObject({
        code: "ECONNREFUSED",
      });
    } finally {
      restore();
    }
  });

  it("retries a request whose connection is reset before any answer, as when an idle socket is dropped", async () => {
    let requests = 0;
    await withRawSsmEndpoint(
      (req, res) => {
        req.resume();
        // The first request dies with its connection, the way a reused keep-alive socket the
        // server just closed does; the second is answered.
        if (++requests === 1) return void req.socket.destroy();
        res.writeHead(200, { "content-type": "application/x-amz-json-1.1" });
        res.end(JSON.stringify({ Parameter: { Name: "/x", Value: "v" } }));
      },
      async () => {
        await expect(ssm("GetParameter", { Name: "/x" })).resolves.toMatchObject({
          Parameter: { Value: "v" },
        });
        expect(requests).toBe(2);
      },
    );
  });
});

describe("error answers from something other than the service's JSON body", () => {
  it("takes the code from X-Amzn-ErrorType, and a bare status when there is none", async () => {
    const answers = [
      {
        status: 400,
        headers: { "x-amzn-errortype": "AccessDeniedException:http://internal.amazon.com/" },
        body: "{}",
      },
      { status: 403, headers: {}, body: "<html>Forbidden</html>" },
    ];
    await withRawSsmEndpoint(
      (req, res) => {
        req.resume();
        const answer = answers.shift()!;
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body);
      },
      async () => {
        await expect(ssm("GetParameter", { Name: "/x" })).rejects.toMatchObject({
          name: "AccessDeniedException",
          $metadata: { httpStatusCode: 400 },
        });
        await expect(ssm("GetParameter", { Name: "/x" })).rejects.toMatchObject({
          name: "HTTP403",
          $fault: "client",
        });
      },
    );
  });
});

/** Runs `body` with SSM calls going to a bare loopback server that answers with `handler`. */
const withRawSsmEndpoint = (handler: RequestHandler, body: (url: string) => Promise<void>) =>
  withRawEndpoint("SSM", handler, body);

/** Runs `body` with `service`'s calls going to a bare loopback server that answers with `handler`. */
async function withRawEndpoint(
  service: "SSM" | "SQS",
  handler: RequestHandler,
  body: (url: string) => Promise<void>,
): Promise<void> {
  const server = await listen(handler);
  const restore = sandbox.useEnv({ [`AWS_ENDPOINT_URL_${service}`]: server.url });
  try {
    await body(server.url);
  } finally {
    restore();
    await server.close();
  }
}

describe("SQS errors", () => {
  interface Answer {
    status: number;
    queryError?: string;
    body: Record<string, unknown>;
  }
  /** What a caller may look at: the SDK's error and ours must agree on all of it. */
  const shapeOf = (error: unknown) => {
    const e = error as AwsServiceError;
    return { name: e.name, fault: e.$fault, status: e.$metadata?.httpStatusCode, Code: e.Code, Type: e.Type };
  };

  it("are named as the SDK names them: the code in x-amzn-query-error, the model's name for it", async () => {
    const { SQSClient, SendMessageBatchCommand } = await import("@aws-sdk/client-sqs");
    const answers: Answer[] = (await sqsModelErrors()).map(({ name, code, status }) => ({
      status,
      queryError: `${code};Sender`,
      body: { __type: `com.amazonaws.sqs#${name}`, message: `${name} happened` },
    }));
    answers.push(
      // Not in the model: the SDK names it by the header's code, not by __type.
      {
        status: 400,
        queryError: "AccessDenied;Sender",
        body: { __type: "com.amazon.coral.service#AccessDeniedException", message: "denied" },
      },
      {
        status: 500,
        queryError: "InternalError;Receiver",
        body: { __type: "com.amazonaws.sqs#InternalError" },
      },
      // A query code with no header (as some emulators answer), and a header with no __type.
      { status: 400, body: { __type: "AWS.SimpleQueueService.NonExistentQueue", message: "no queue" } },
      { status: 400, queryError: "KMS.ThrottlingException;Sender", body: { message: "slow down" } },
    );
    let answer = answers[0]!;
    await withRawEndpoint(
      "SQS",
      (req, res) => {
        req.resume();
        const headers = answer.queryError ? { "x-amzn-query-error": answer.queryError } : {};
        res.writeHead(answer.status, { "content-type": "application/x-amz-json-1.0", ...headers });
        res.end(JSON.stringify(answer.body));
      },
      async (url) => {
        const client = new SQSClient({ region: sandbox.env.AWS_REGION!, endpoint: url, maxAttempts: 1 });
        const batch = { QueueUrl: `${url}/000000000000/q`, Entries: [{ Id: "0", MessageBody: "x" }] };
        for (answer of answers) {
          const viaSdk = await client.send(new SendMessageBatchCommand(batch)).catch((e: unknown) => e);
          const viaClient = await sqs("SendMessageBatch", batch).catch((e: unknown) => e);
          expect(shapeOf(viaClient), JSON.stringify(answer)).toEqual(shapeOf(viaSdk));
        }
        client.destroy();
      },
    );
  });
});

describe("the same request as the SDK client", () => {
  it("names the caller in User-Agent and x-amz-user-agent, in the SDK's format and signed as it signs them", async () => {
    const { SSMClient, GetParameterCommand } = await import("@aws-sdk/client-ssm");
    const seen: IncomingHttpHeaders[] = [];
    await withRawSsmEndpoint(
      (req, res) => {
        seen.push(req.headers);
        req.resume();
        res.writeHead(200, { "content-type": "application/x-amz-json-1.1" });
        res.end(JSON.stringify({ Parameter: { Name: "/x", Value: "v" } }));
      },
      async (url) => {
        const client = new SSMClient({ region: sandbox.env.AWS_REGION!, endpoint: url, maxAttempts: 1 });
        await client.send(new GetParameterCommand({ Name: "/x" }));
        client.destroy();
        await ssm("GetParameter", { Name: "/x" });
      },
    );
    const [viaSdk, viaClient] = seen.map((headers) => ({
      agent: String(headers["user-agent"]).split(" "),
      amzAgent: headers["x-amz-user-agent"],
      signed: String(headers.authorization)
        .match(/SignedHeaders=([^,]+)/)?.[1]
        ?.split(";"),
    }));
    expect(viaClient?.agent[0]).toBe(`runner-fleet/${version}`);
    expect(viaClient?.amzAgent).toBe(`runner-fleet/${version}`);
    expect(viaClient?.agent).toContain("lib/aws-json");
    expect(viaClient?.agent).toContain("api/ssm");
    // The runtime's part reads as the SDK's: ua/2.1, os, lang, md/nodejs.
    const runtime = (agent: string[] = []) => agent.filter((part) => /^(ua|os|lang|md)\//.test(part));
    expect(runtime(viaClient?.agent)).toEqual(runtime(viaSdk?.agent));
    expect(runtime(viaClient?.agent)).toHaveLength(4);
    expect(viaSdk?.amzAgent).toMatch(/^aws-sdk-js\//);
    for (const request of [viaSdk, viaClient]) {
      expect(request?.signed).toContain("x-amz-user-agent");
      expect(request?.signed).not.toContain("user-agent");
    }
  });

  it("sends the body the SDK's own clients send for the same input, to the same operation", async () => {
    const { DynamoDBClient, UpdateItemCommand } = await import("@aws-sdk/client-dynamodb");
    const { SQSClient, SendMessageBatchCommand, CreateQueueCommand } = await import("@aws-sdk/client-sqs");
    const { SSMClient, GetParametersByPathCommand } = await import("@aws-sdk/client-ssm");
    const sdk = { region: sandbox.env.AWS_REGION!, credentials: sandbox.credentials, maxAttempts: 1 };
    const update = {
      TableName: jobsTable,
      Key: { jobId: { S: "4242" } },
      UpdateExpression: "SET #s = :s, #n = :n, #l = :l, #m = :m ADD #a :one REMOVE #r",
      ExpressionAttributeNames: {
        "#s": "state",
        "#n": "attempts",
        "#l": "labels",
        "#m": "meta",
        "#a": "x",
        "#r": "y",
      },
      ExpressionAttributeValues: {
        ":s": { S: "queued" },
        ":n": { N: "3" },
        ":l": { L: [{ S: "linux" }, { S: "x64" }] },
        ":m": { M: { ok: { BOOL: true }, none: { NULL: true }, tags: { SS: ["a", "b"] } } },
        ":one": { N: "1" },
      },
      ReturnValues: "ALL_NEW" as const,
    };
    const { QueueUrl } = await new SQSClient({ ...sdk, endpoint: sandbox.endpoints.sqs }).send(
      new CreateQueueCommand({ QueueName: "same-request" }),
    );
    const batch = { QueueUrl, Entries: [{ Id: "0", MessageBody: '{"jobId":"1"}', DelaySeconds: 5 }] };
    const byPath = { Path: "/rf", Recursive: true, MaxResults: 10 };

    await new DynamoDBClient({ ...sdk, endpoint: sandbox.endpoints.dynamodb }).send(
      new UpdateItemCommand(update),
    );
    await dynamodb("UpdateItem", update);
    await new SQSClient({ ...sdk, endpoint: sandbox.endpoints.sqs }).send(new SendMessageBatchCommand(batch));
    await sqs("SendMessageBatch", batch);
    await new SSMClient({ ...sdk, endpoint: sandbox.endpoints.ssm }).send(
      new GetParametersByPathCommand(byPath),
    );
    await ssm("GetParametersByPath", byPath);

    for (const [service, operation] of [
      ["dynamodb", "UpdateItem"],
      ["sqs", "SendMessageBatch"],
      ["ssm", "GetParametersByPath"],
    ] as const) {
      const [viaSdk, viaClient] = sandbox.callsTo(service, operation);
      expect(viaClient?.status).toBe(200);
      expect(viaClient?.params).toEqual(viaSdk?.params);
    }
  });
});
