/**
 * The sandbox's AWS side, driven by the real SDK v3 clients: each fake must serialize, parse and
 * behave like the service (visibility, redrive, MD5, idempotent CreateFleet, partial fleets,
 * throttling, error classes, pagination), or every test built on it tests the wrong thing.
 */
import { createHash } from "node:crypto";
import {
  ConditionalCheckFailedException,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb";
import {
  CreateFleetCommand,
  type CreateFleetCommandInput,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  paginateDescribeInstances,
  RebootInstancesCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from "@aws-sdk/client-ec2";
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import {
  DeleteParametersCommand,
  GetParameterCommand,
  GetParametersCommand,
  PutParameterCommand,
  paginateGetParametersByPath,
  SSMClient,
} from "@aws-sdk/client-ssm";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { JOBS_TABLE } from "../lambda/shared/tables";
import { describeAlarms } from "../scripts/lib/cloudwatch-alarms";
import { EC2_THROTTLE, type Sandbox, startSandbox } from "./sandbox";
import { sampleMs, seededRandom } from "./sandbox/ec2-boot";
import { md5OfMessageAttributes, sqsModelErrors } from "./sandbox/sqs";

let sandbox: Sandbox;
let dynamo: DynamoDBClient;
let sqs: SQSClient;
let ssm: SSMClient;
let ec2: EC2Client;

/** Clients as a test would build them: endpoint and credentials from the sandbox, no retries. */
function config(endpoint: string) {
  return { region: sandbox.region, endpoint, credentials: sandbox.credentials, maxAttempts: 1 };
}

async function errorOf(
  promise: Promise<unknown>,
): Promise<Error & { $metadata?: { httpStatusCode?: number }; Code?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected the call to fail");
}

const openHandles = (type: string) => process.getActiveResourcesInfo().filter((r) => r === type).length;

/**
 * The count of open handles of `type` once it is down to `expected`, or after 200 ms: libuv
 * releases a closed handle on a later turn of the event loop.
 */
async function settled(type: string, expected: number): Promise<number> {
  for (let i = 0; i < 20 && openHandles(type) > expected; i++) await new Promise((r) => setTimeout(r, 10));
  return openHandles(type);
}

beforeAll(async () => {
  sandbox = await startSandbox();
  dynamo = new DynamoDBClient(config(sandbox.endpoints.dynamodb));
  sqs = new SQSClient(config(sandbox.endpoints.sqs));
  ssm = new SSMClient(config(sandbox.endpoints.ssm));
  ec2 = new EC2Client(config(sandbox.endpoints.ec2));
});

afterAll(async () => {
  dynamo.destroy();
  sqs.destroy();
  ssm.destroy();
  ec2.destroy();
  await sandbox.close();
});

beforeEach(() => sandbox.reset());

describe("environment", () => {
  it("points clients built from the environment at the sandbox, and restores the environment", async () => {
    const before = process.env.AWS_ENDPOINT_URL_SSM;
    const restore = sandbox.useEnv({ EXTRA_SETTING: "x" });
    try {
      expect(process.env.AWS_ENDPOINT_URL_SSM).toBe(sandbox.endpoints.ssm);
      expect(process.env.EXTRA_SETTING).toBe("x");
      sandbox.ssm.put("/env/probe", "v");
      const fromEnv = new SSMClient({});
      const { Parameter } = await fromEnv.send(new GetParameterCommand({ Name: "/env/probe" }));
      fromEnv.destroy();
      expect(Parameter?.Value).toBe("v");
      expect(sandbox.callsTo("ssm", "GetParameter")).toHaveLength(1);
    } finally {
      restore();
    }
    expect(process.env.AWS_ENDPOINT_URL_SSM).toBe(before);
    expect(process.env.EXTRA_SETTING).toBeUndefined();
  });

  it("composes the GitHub fake on request, on the same faults and call record", async () => {
    expect(sandbox.github).toBeUndefined();
    expect(sandbox.env.GITHUB_API_URL).toBeUndefined();
    const servers = openHandles("TCPServerWrap");
    const withGitHub = await startSandbox({ github: { flavour: "ghes" } });
    try {
      expect(withGitHub.env.GITHUB_API_URL).toBe(withGitHub.github?.url);
      expect(withGitHub.env.GITHUB_API_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/api\/v3$/);
      expect(withGitHub.github?.faults).toBe(withGitHub.faults);
      const response = await fetch(`${withGitHub.env.GITHUB_API_URL}/no/such/route`);
      expect(response.status).toBe(404);
      expect(withGitHub.callsTo("github")).toHaveLength(1);
    } finally {
      await withGitHub.close();
    }
    expect(await settled("TCPServerWrap", servers)).toBe(servers);
  });

  it("closes without leaving a server or socket open", async () => {
    const [servers, sockets] = [openHandles("TCPServerWrap"), openHandles("TCPSocketWrap")];
    const other = await startSandbox();
    const client = new SQSClient(config(other.endpoints.sqs));
    const { url } = other.createQueue("probe");
    await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "x" }));
    await client.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 0 }));
    client.destroy();
    await other.close();
    expect(await settled("TCPServerWrap", servers)).toBe(servers);
    expect(await settled("TCPSocketWrap", sockets)).toBeLessThanOrEqual(sockets);
  });
});

describe("DynamoDB (dynalite)", () => {
  it("creates the jobs and hand-off tables with the stack's keys and indexes", async () => {
    const tables = await sandbox.createTables("keys");
    expect(tables).toEqual({ jobs: "keys-jobs", handoff: "keys-handoff", pool: "keys-pool" });
    const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: tables.jobs }));
    expect(Table?.KeySchema).toEqual([{ AttributeName: "jobId", KeyType: "HASH" }]);
    const indexes = Object.fromEntries(
      (Table?.GlobalSecondaryIndexes ?? []).map((i) => [
        i.IndexName,
        i.KeySchema?.map((k) => k.AttributeName),
      ]),
    );
    for (const index of JOBS_TABLE.indexes) {
      expect(indexes[index.name]).toEqual([index.hashKey, index.rangeKey].filter(Boolean));
    }
    // Same prefix again keeps the tables instead of failing.
    await expect(sandbox.createTables("keys")).resolves.toEqual(tables);
  });

  it("supports conditional writes, ReturnValues, GSI queries and Select COUNT as the ledger uses them", async () => {
    const { jobs } = await sandbox.createTables("ledger");
    const put = (jobId: string, state: string, extra: Record<string, { S: string }> = {}) =>
      dynamo.send(
        new PutItemCommand({
          TableName: jobs,
          Item: {
            jobId: { S: jobId },
            state: { S: state },
            updatedAt: { S: `2026-01-01T00:00:0${jobId}Z` },
            ...extra,
          },
          ConditionExpression: "attribute_not_exists(jobId)",
        }),
      );
    await put("1", "queued");
    await put("2", "queued");
    await put("3", "launched", { instanceId: { S: "i-03" } });
    const duplicate = await errorOf(put("1", "queued"));
    expect(duplicate).toBeInstanceOf(ConditionalCheckFailedException);

    const { Attributes } = await dynamo.send(
      new UpdateItemCommand({
        TableName: jobs,
        Key: { jobId: { S: "2" } },
        UpdateExpression: "SET #s = :to, instanceId = :i ADD attempts :one",
        ConditionExpression: "#s IN (:q, :l)",
        ExpressionAttributeNames: { "#s": "state" },
        ExpressionAttributeValues: {
          ":to": { S: "launching" },
          ":i": { S: "i-02" },
          ":one": { N: "1" },
          ":q": { S: "queued" },
          ":l": { S: "launched" },
        },
        ReturnValues: "ALL_NEW",
      }),
    );
    expect(Attributes).toMatchObject({
      state: { S: "launching" },
      attempts: { N: "1" },
      instanceId: { S: "i-02" },
    });

    const count = await dynamo.send(
      new QueryCommand({
        TableName: jobs,
        IndexName: "byState",
        KeyConditionExpression: "#s = :s AND updatedAt < :before",
        ExpressionAttributeNames: { "#s": "state" },
        ExpressionAttributeValues: { ":s": { S: "queued" }, ":before": { S: "2026-01-01T00:00:09Z" } },
        Select: "COUNT",
      }),
    );
    expect(count.Count).toBe(1);
    expect(count.Items).toBeUndefined();

    const byInstance = await dynamo.send(
      new QueryCommand({
        TableName: jobs,
        IndexName: "byInstance",
        KeyConditionExpression: "instanceId = :i",
        ExpressionAttributeValues: { ":i": { S: "i-02" } },
      }),
    );
    expect(byInstance.Items?.map((i) => i.jobId?.S)).toEqual(["2"]);
    expect(sandbox.callsTo("dynamodb", "PutItem").map((c) => c.errorCode)).toEqual([
      undefined,
      undefined,
      undefined,
      "ConditionalCheckFailedException",
    ]);
  });

  it("injects faults in front of dynalite, and reset() empties the tables", async () => {
    const { jobs } = await sandbox.createTables("faults");
    await dynamo.send(new PutItemCommand({ TableName: jobs, Item: { jobId: { S: "a" } } }));
    sandbox.faults.fail(
      "dynamodb",
      "GetItem",
      { code: "ProvisionedThroughputExceededException" },
      { times: 1 },
    );
    const error = await errorOf(
      dynamo.send(new GetItemCommand({ TableName: jobs, Key: { jobId: { S: "a" } } })),
    );
    expect(error.name).toBe("ProvisionedThroughputExceededException");
    const { Item } = await dynamo.send(new GetItemCommand({ TableName: jobs, Key: { jobId: { S: "a" } } }));
    expect(Item?.jobId?.S).toBe("a");

    await sandbox.reset();
    const after = await dynamo.send(new GetItemCommand({ TableName: jobs, Key: { jobId: { S: "a" } } }));
    expect(after.Item).toBeUndefined();
    expect(sandbox.calls).toHaveLength(1);
  });
});

describe("SQS", () => {
  it("sends and receives with correct MD5 digests of body and attributes", async () => {
    const { url } = sandbox.createQueue("md5");
    const sent = await sqs.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: "héllo wörld",
        MessageAttributes: { kind: { DataType: "String", StringValue: "launch" } },
      }),
    );
    // The SDK already rejected a wrong body digest; check the attribute digest against AWS's example.
    expect(sent.MD5OfMessageAttributes).toBe(
      md5OfMessageAttributes({ kind: { DataType: "String", StringValue: "launch" } }),
    );
    const { Messages } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MessageAttributeNames: ["All"],
        MessageSystemAttributeNames: ["All"],
      }),
    );
    expect(Messages).toHaveLength(1);
    expect(Messages?.[0]).toMatchObject({ MessageId: sent.MessageId, Body: "héllo wörld" });
    expect(Messages?.[0]?.MessageAttributes?.kind?.StringValue).toBe("launch");
    expect(Messages?.[0]?.Attributes?.ApproximateReceiveCount).toBe("1");
  });

  it("digests message attributes the way SQS documents", () => {
    // Independent check of the encoding: name, type, transport byte 1, value; all length-prefixed.
    const expected = (() => {
      const lp = (s: string) => {
        const b = Buffer.from(s);
        const l = Buffer.alloc(4);
        l.writeUInt32BE(b.length);
        return [l, b];
      };
      const bytes = Buffer.concat([
        ...lp("a"),
        ...lp("Number"),
        Buffer.from([1]),
        ...lp("1"),
        ...lp("b"),
        ...lp("String"),
        Buffer.from([1]),
        ...lp("x"),
      ]);
      return createHash("md5").update(bytes).digest("hex");
    })();
    expect(
      md5OfMessageAttributes({
        b: { DataType: "String", StringValue: "x" },
        a: { DataType: "Number", StringValue: "1" },
      }),
    ).toBe(expected);
  });

  it("hides a received message for its visibility timeout and counts receives", async () => {
    const { url } = sandbox.createQueue("visibility");
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "job-1" }));
    const first = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, VisibilityTimeout: 30 }));
    expect(first.Messages).toHaveLength(1);
    expect((await sqs.send(new ReceiveMessageCommand({ QueueUrl: url }))).Messages ?? []).toHaveLength(0);
    const attributes = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["All"] }),
    );
    expect(attributes.Attributes).toMatchObject({
      ApproximateNumberOfMessages: "0",
      ApproximateNumberOfMessagesNotVisible: "1",
    });

    sandbox.clock.advance(30_000);
    const second = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MessageSystemAttributeNames: ["ApproximateReceiveCount"] }),
    );
    expect(second.Messages?.[0]?.Attributes?.ApproximateReceiveCount).toBe("2");
    expect(second.Messages?.[0]?.ReceiptHandle).not.toBe(first.Messages?.[0]?.ReceiptHandle);

    // A stale receipt handle cannot extend the new receive; the current one can, and 0 releases it.
    const stale = await errorOf(
      sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: url,
          ReceiptHandle: first.Messages![0]!.ReceiptHandle!,
          VisibilityTimeout: 60,
        }),
      ),
    );
    expect(stale.name).toBe("MessageNotInflight");
    await sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: url,
        ReceiptHandle: second.Messages![0]!.ReceiptHandle!,
        VisibilityTimeout: 0,
      }),
    );
    const third = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url }));
    await sqs.send(
      new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: third.Messages![0]!.ReceiptHandle! }),
    );
    expect(sandbox.sqs.messages(url)).toEqual([]);
    const invalid = await errorOf(
      sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: "bogus" })),
    );
    expect(invalid.name).toBe("ReceiptHandleIsInvalid");
  });

  it("delays messages by DelaySeconds", async () => {
    const { url } = sandbox.createQueue("delay");
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: [
          { Id: "a", MessageBody: "later", DelaySeconds: 5 },
          { Id: "b", MessageBody: "now" },
        ],
      }),
    );
    const now = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }));
    expect(now.Messages?.map((m) => m.Body)).toEqual(["now"]);
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ["ApproximateNumberOfMessagesDelayed"],
      }),
    );
    expect(Attributes).toEqual({ ApproximateNumberOfMessagesDelayed: "1" });
    sandbox.clock.advance(5_000);
    const later = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }));
    expect(later.Messages?.map((m) => m.Body)).toEqual(["later"]);
  });

  it("moves a message to the DLQ after maxReceiveCount receives", async () => {
    const queue = sandbox.createQueue("redrive", { dlq: { maxReceiveCount: 2 } });
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: "poison" }));
    for (let i = 0; i < 2; i++) {
      expect(
        (await sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.url, VisibilityTimeout: 1 }))).Messages,
      ).toHaveLength(1);
      sandbox.clock.advance(1_000);
    }
    expect((await sqs.send(new ReceiveMessageCommand({ QueueUrl: queue.url }))).Messages ?? []).toHaveLength(
      0,
    );
    expect(sandbox.sqs.messages(queue.url)).toEqual([]);
    expect(sandbox.sqs.messages(queue.dlqUrl!).map((m) => m.body)).toEqual(["poison"]);
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queue.url, AttributeNames: ["RedrivePolicy"] }),
    );
    expect(JSON.parse(Attributes!.RedrivePolicy!)).toEqual({
      deadLetterTargetArn: queue.dlqArn,
      maxReceiveCount: 2,
    });
    for (const RedrivePolicy of [
      "{not json",
      JSON.stringify({ deadLetterTargetArn: "arn:aws:sqs:x:1:none", maxReceiveCount: 1 }),
    ]) {
      const bad = await errorOf(
        sqs.send(new CreateQueueCommand({ QueueName: "bad-redrive", Attributes: { RedrivePolicy } })),
      );
      expect(bad.name).toBe("InvalidAttributeValue");
    }
  });

  it("long-polls until a message arrives", async () => {
    const { url } = sandbox.createQueue("longpoll");
    const started = Date.now();
    const receiving = sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 5 }));
    setTimeout(() => sandbox.sqs.send(url, "late"), 150);
    const { Messages } = await receiving;
    expect(Messages?.map((m) => m.Body)).toEqual(["late"]);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("an inline batch fault without a condition fails every entry of the call, not the call", async () => {
    const { url } = sandbox.createQueue("inline-batch");
    const fault = { code: "InternalError", status: 500, inline: true };
    sandbox.faults.fail("sqs", "SendMessageBatch", fault, { times: 1 });
    const entries = [0, 1, 2].map((i) => ({ Id: String(i), MessageBody: `m${i}` }));
    const first = await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries }));
    expect(first.Failed?.map((f) => f.Id)).toEqual(["0", "1", "2"]);
    expect(first.Successful ?? []).toEqual([]);
    // `times` counts calls: the next batch goes through.
    const second = await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries }));
    expect(second.Successful?.map((e) => e.Id)).toEqual(["0", "1", "2"]);
  });

  it("batches: limits, per-entry failures, batch delete, purge", async () => {
    const { url } = sandbox.createQueue("batch");
    const entries = Array.from({ length: 11 }, (_, i) => ({ Id: String(i), MessageBody: `m${i}` }));
    expect(
      (await errorOf(sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries })))).name,
    ).toBe("TooManyEntriesInBatchRequest");
    sandbox.faults.fail(
      "sqs",
      "SendMessageBatch",
      { code: "InternalError", status: 500, inline: true },
      {
        when: (r) => r.part?.Id === "3",
      },
    );
    const sent = await sqs.send(
      new SendMessageBatchCommand({ QueueUrl: url, Entries: entries.slice(0, 10) }),
    );
    expect(sent.Successful).toHaveLength(9);
    expect(sent.Failed).toEqual([
      { Id: "3", SenderFault: false, Code: "InternalError", Message: "InternalError" },
    ]);

    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }),
    );
    expect(Messages).toHaveLength(9);
    const deleted = await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: url,
        Entries: Messages.slice(0, 4).map((m, i) => ({ Id: `d${i}`, ReceiptHandle: m.ReceiptHandle! })),
      }),
    );
    expect(deleted.Successful).toHaveLength(4);
    expect(sandbox.sqs.messages(url)).toHaveLength(5);
    await sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
    expect(sandbox.sqs.messages(url)).toHaveLength(0);
    expect((await errorOf(sqs.send(new PurgeQueueCommand({ QueueUrl: url })))).name).toBe(
      "PurgeQueueInProgress",
    );
  });

  it("raises QueueDoesNotExist and the throttling error as SDK exceptions", async () => {
    const missing = await errorOf(sqs.send(new GetQueueUrlCommand({ QueueName: "nope" })));
    expect(missing.name).toBe("QueueDoesNotExist");
    expect(missing.$metadata?.httpStatusCode).toBe(400);
    const { url } = sandbox.createQueue("throttled");
    sandbox.faults.throttle("sqs", "SendMessage", { burst: 2, perSecond: 0 });
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "1" }));
    await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "2" }));
    const throttled = await errorOf(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "3" })));
    expect(throttled.name).toBe("RequestThrottled");
    expect(sandbox.callsTo("sqs", "SendMessage").map((c) => c.status)).toEqual([200, 200, 403]);
    // The SDK takes Code and Type from the x-amzn-query-error header, which real SQS sends.
    expect(missing).toMatchObject({ Code: "AWS.SimpleQueueService.NonExistentQueue", Type: "Sender" });
    expect(throttled).toMatchObject({ Code: "RequestThrottled", Type: "Sender" });
  });

  it("answers every error SQS's model declares with its query code and status, as real SQS does", async () => {
    const { url } = sandbox.createQueue("errors");
    const modelled = await sqsModelErrors();
    expect(modelled.length).toBeGreaterThan(20);
    for (const { name, code, status } of modelled) {
      sandbox.faults.fail("sqs", "GetQueueAttributes", { code: name }, { times: 1 });
      const error = await errorOf(sqs.send(new GetQueueAttributesCommand({ QueueUrl: url })));
      expect({ name: error.name, code: error.Code, status: error.$metadata?.httpStatusCode }).toEqual({
        name,
        code,
        status,
      });
    }
    sandbox.faults.fail("sqs", "GetQueueAttributes", { code: "InternalError" }, { times: 1 });
    const internal = await errorOf(sqs.send(new GetQueueAttributesCommand({ QueueUrl: url })));
    expect(internal).toMatchObject({ name: "InternalError", Code: "InternalError", Type: "Receiver" });
  });

  it("builds SQS events from real receives and settles them like the event source mapping", async () => {
    const { url, arn } = sandbox.createQueue("event");
    for (const body of ["a", "b", "c"]) sandbox.sqs.send(url, body);
    const event = sandbox.sqs.event(url, 10, { visibilityTimeout: 60 });
    expect(event.Records.map((r) => r.body).sort()).toEqual(["a", "b", "c"]);
    expect(event.Records[0]).toMatchObject({
      eventSource: "aws:sqs",
      eventSourceARN: arn,
      attributes: { ApproximateReceiveCount: "1" },
    });
    const failed = event.Records.find((r) => r.body === "b")!;
    const deleted = sandbox.sqs.settle(url, event.Records, {
      batchItemFailures: [{ itemIdentifier: failed.messageId }],
    });
    expect(deleted).toHaveLength(2);
    expect(sandbox.sqs.messages(url).map((m) => [m.body, m.inFlight])).toEqual([["b", true]]);
    // The handle in the event is a real one: the SDK can extend it.
    await sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: url,
        ReceiptHandle: failed.receiptHandle,
        VisibilityTimeout: 0,
      }),
    );
    expect(sandbox.sqs.messages(url)[0]?.visible).toBe(true);
  });
});

describe("SSM", () => {
  it("keeps SecureString values opaque unless read WithDecryption, and versions overwrites", async () => {
    await ssm.send(new PutParameterCommand({ Name: "/fleet/secret", Value: "s3cr3t", Type: "SecureString" }));
    const plain = await ssm.send(new GetParameterCommand({ Name: "/fleet/secret" }));
    expect(plain.Parameter?.Value).not.toContain("s3cr3t");
    const decrypted = await ssm.send(
      new GetParameterCommand({ Name: "/fleet/secret", WithDecryption: true }),
    );
    expect(decrypted.Parameter).toMatchObject({ Value: "s3cr3t", Type: "SecureString", Version: 1 });

    const exists = await errorOf(
      ssm.send(new PutParameterCommand({ Name: "/fleet/secret", Value: "x", Type: "SecureString" })),
    );
    expect(exists.name).toBe("ParameterAlreadyExists");
    const { Version } = await ssm.send(
      new PutParameterCommand({ Name: "/fleet/secret", Value: "rotated", Overwrite: true }),
    );
    expect(Version).toBe(2);
    expect(sandbox.ssm.get("/fleet/secret")).toBe("rotated");
  });

  it("raises ParameterNotFound, and reports unknown names in GetParameters/DeleteParameters", async () => {
    const missing = await errorOf(ssm.send(new GetParameterCommand({ Name: "/nope" })));
    expect(missing.name).toBe("ParameterNotFound");
    sandbox.ssm.put("/a", "1");
    const got = await ssm.send(new GetParametersCommand({ Names: ["/a", "/b"] }));
    expect(got.Parameters?.map((p) => p.Name)).toEqual(["/a"]);
    expect(got.InvalidParameters).toEqual(["/b"]);
    const deleted = await ssm.send(new DeleteParametersCommand({ Names: ["/a", "/b"] }));
    expect(deleted).toMatchObject({ DeletedParameters: ["/a"], InvalidParameters: ["/b"] });
  });

  it("lists a path, recursively or not, across pages", async () => {
    for (let i = 0; i < 7; i++) sandbox.ssm.put(`/fleet/configs/c${i}`, `{"n":${i}}`);
    sandbox.ssm.put("/fleet/configs/nested/deep", "d");
    sandbox.ssm.put("/fleet/other", "o");
    const names = async (recursive: boolean) => {
      const found: string[] = [];
      for await (const page of paginateGetParametersByPath(
        { client: ssm, pageSize: 3 },
        { Path: "/fleet/configs", Recursive: recursive },
      )) {
        expect(page.Parameters?.length ?? 0).toBeLessThanOrEqual(3);
        found.push(...(page.Parameters ?? []).map((p) => p.Name!));
      }
      return found;
    };
    expect(await names(false)).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `/fleet/configs/c${i}`));
    expect(await names(true)).toContain("/fleet/configs/nested/deep");
    expect(sandbox.callsTo("ssm", "GetParametersByPath").length).toBeGreaterThanOrEqual(6);
  });

  it("answers an injected throttle and latency", async () => {
    sandbox.ssm.put("/slow", "v");
    sandbox.faults.latency("ssm", "GetParameter", 120);
    const started = Date.now();
    await ssm.send(new GetParameterCommand({ Name: "/slow" }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(110);
    sandbox.faults.clear();
    sandbox.faults.throttle("ssm", "*", { burst: 1, perSecond: 0 });
    await ssm.send(new GetParameterCommand({ Name: "/slow" }));
    expect((await errorOf(ssm.send(new GetParameterCommand({ Name: "/slow" })))).name).toBe(
      "ThrottlingException",
    );
  });
});

describe("EC2", () => {
  const fleet = (overrides: Partial<CreateFleetCommandInput> = {}): CreateFleetCommandInput => ({
    Type: "instant",
    LaunchTemplateConfigs: [
      {
        LaunchTemplateSpecification: { LaunchTemplateId: "lt-0abc", Version: "$Latest" },
        Overrides: [
          { InstanceType: "m7i.large", SubnetId: "subnet-a" },
          { InstanceType: "m7i.large", SubnetId: "subnet-b" },
          { InstanceType: "m6i.large", SubnetId: "subnet-a" },
        ],
      },
    ],
    TargetCapacitySpecification: { TotalTargetCapacity: 2, DefaultTargetCapacityType: "spot" },
    SpotOptions: { AllocationStrategy: "capacity-optimized" },
    TagSpecifications: [
      { ResourceType: "instance", Tags: [{ Key: "runner-fleet:config", Value: "linux-x64" }] },
    ],
    ...overrides,
  });

  beforeEach(() => {
    sandbox.ec2.addSubnet("subnet-a", "us-east-1a");
    sandbox.ec2.addSubnet("subnet-b", "us-east-1b");
  });

  it("fills an instant spot fleet and answers like AWS", async () => {
    const result = await ec2.send(new CreateFleetCommand(fleet()));
    expect(result.FleetId).toMatch(/^fleet-/);
    expect(result.Errors ?? []).toEqual([]);
    expect(result.Instances).toHaveLength(1);
    const [group] = result.Instances!;
    expect(group).toMatchObject({
      Lifecycle: "spot",
      InstanceType: "m7i.large",
      LaunchTemplateAndOverrides: {
        LaunchTemplateSpecification: { LaunchTemplateId: "lt-0abc", Version: "$Latest" },
        Overrides: { InstanceType: "m7i.large", SubnetId: "subnet-a" },
      },
    });
    expect(group?.InstanceIds).toHaveLength(2);
    for (const id of group!.InstanceIds!) expect(id).toMatch(/^i-0[0-9a-f]{16}$/);
    const instances = sandbox.ec2.instances();
    expect(
      instances.map((i) => [
        i.market,
        i.instanceType,
        i.subnetId,
        i.availabilityZone,
        i.tags["runner-fleet:config"],
      ]),
    ).toEqual([
      ["spot", "m7i.large", "subnet-a", "us-east-1a", "linux-x64"],
      ["spot", "m7i.large", "subnet-a", "us-east-1a", "linux-x64"],
    ]);
  });

  it("reports a pool without capacity in errorSet and fills from the other overrides", async () => {
    sandbox.faults.fail("ec2", "CreateFleet", "InsufficientInstanceCapacity", {
      when: (r) => r.part?.instanceType === "m7i.large" && r.part.lifecycle === "spot",
    });
    const partial = await ec2.send(new CreateFleetCommand(fleet()));
    expect(
      partial.Errors?.map((e) => [
        e.ErrorCode,
        e.Lifecycle,
        e.LaunchTemplateAndOverrides?.Overrides?.SubnetId,
      ]),
    ).toEqual([
      ["InsufficientInstanceCapacity", "spot", "subnet-a"],
      ["InsufficientInstanceCapacity", "spot", "subnet-b"],
    ]);
    expect(partial.Errors?.[0]?.ErrorMessage).toMatch(/Spot capacity/);
    expect(partial.Instances?.map((g) => [g.InstanceType, g.InstanceIds?.length])).toEqual([
      ["m6i.large", 2],
    ]);
    expect(sandbox.callsTo("ec2", "CreateFleet")[0]?.status).toBe(200);

    // No spot capacity anywhere: no instance, only errors; on-demand still fills.
    sandbox.faults.clear();
    sandbox.faults.fail("ec2", "CreateFleet", "InsufficientInstanceCapacity", {
      when: (r) => r.part?.lifecycle === "spot",
    });
    const none = await ec2.send(new CreateFleetCommand(fleet()));
    expect(none.Instances ?? []).toEqual([]);
    expect(none.Errors).toHaveLength(3);
    const onDemand = await ec2.send(
      new CreateFleetCommand(
        fleet({
          TargetCapacitySpecification: { TotalTargetCapacity: 1, DefaultTargetCapacityType: "on-demand" },
        }),
      ),
    );
    expect(onDemand.Instances?.[0]?.Lifecycle).toBe("on-demand");
    expect(sandbox.ec2.instance(onDemand.Instances![0]!.InstanceIds![0]!)?.market).toBe("on-demand");
  });

  it("counts an injected failure's times per request", async () => {
    sandbox.faults.fail("ec2", "CreateFleet", "InsufficientInstanceCapacity", { times: 1 });
    const first = await ec2.send(new CreateFleetCommand(fleet()));
    expect(first.Errors).toHaveLength(3);
    const second = await ec2.send(new CreateFleetCommand(fleet()));
    expect(second.Errors ?? []).toEqual([]);
    expect(second.Instances?.[0]?.InstanceIds).toHaveLength(2);
  });

  it("answers a repeated ClientToken with the first answer and launches nothing new", async () => {
    const first = await ec2.send(new CreateFleetCommand(fleet({ ClientToken: "job-42-attempt-1" })));
    const again = await ec2.send(new CreateFleetCommand(fleet({ ClientToken: "job-42-attempt-1" })));
    expect(again.FleetId).toBe(first.FleetId);
    expect(again.Instances?.[0]?.InstanceIds).toEqual(first.Instances?.[0]?.InstanceIds);
    expect(sandbox.ec2.instances()).toHaveLength(2);
    const mismatch = await errorOf(
      ec2.send(
        new CreateFleetCommand(
          fleet({
            ClientToken: "job-42-attempt-1",
            TargetCapacitySpecification: { TotalTargetCapacity: 5, DefaultTargetCapacityType: "spot" },
          }),
        ),
      ),
    );
    expect(mismatch.name).toBe("IdempotentParameterMismatch");
  });

  it("describes instances by tag and state across pages, and terminates them", async () => {
    for (let i = 0; i < 12; i++) sandbox.ec2.addInstance({ tags: { fleet: i < 9 ? "mine" : "other" } });
    const mine: string[] = [];
    for await (const page of paginateDescribeInstances(
      { client: ec2, pageSize: 5 },
      {
        Filters: [
          { Name: "tag:fleet", Values: ["mine"] },
          { Name: "instance-state-name", Values: ["pending", "running"] },
        ],
      },
    )) {
      const ids = (page.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId!);
      expect(ids.length).toBeLessThanOrEqual(5);
      mine.push(...ids);
    }
    expect(mine).toHaveLength(9);
    expect(sandbox.callsTo("ec2", "DescribeInstances")).toHaveLength(2);

    const terminated = await ec2.send(new TerminateInstancesCommand({ InstanceIds: mine.slice(0, 2) }));
    expect(
      terminated.TerminatingInstances?.map((t) => [t.PreviousState?.Name, t.CurrentState?.Name]),
    ).toEqual([
      ["running", "shutting-down"],
      ["running", "shutting-down"],
    ]);
    const described = await ec2.send(new DescribeInstancesCommand({ InstanceIds: mine.slice(0, 2) }));
    const states = described.Reservations?.flatMap((r) => r.Instances ?? []).map((i) => i.State?.Name);
    expect(states).toEqual(["terminated", "terminated"]);
    sandbox.clock.advance(3_600_001);
    expect(sandbox.ec2.instances()).toHaveLength(10);

    const missing = await errorOf(
      ec2.send(new DescribeInstancesCommand({ InstanceIds: ["i-0123456789abcdef0"] })),
    );
    expect(missing.name).toBe("InvalidInstanceID.NotFound");
    const badFilter = await errorOf(
      ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: "state", Values: ["x"] }] })),
    );
    expect(badFilter.name).toBe("InvalidParameterValue");
  });

  it("runs spot instances with RunInstances and tags them", async () => {
    const run = await ec2.send(
      new RunInstancesCommand({
        ImageId: "ami-0123",
        InstanceType: "c7g.large",
        MinCount: 2,
        MaxCount: 2,
        SubnetId: "subnet-b",
        InstanceMarketOptions: { MarketType: "spot" },
      }),
    );
    const ids = run.Instances!.map((i) => i.InstanceId!);
    expect(
      run.Instances?.map((i) => [i.State?.Name, i.InstanceLifecycle, i.Placement?.AvailabilityZone]),
    ).toEqual([
      ["pending", "spot", "us-east-1b"],
      ["pending", "spot", "us-east-1b"],
    ]);
    await ec2.send(new CreateTagsCommand({ Resources: ids, Tags: [{ Key: "job", Value: "7" }] }));
    const described = await ec2.send(
      new DescribeInstancesCommand({
        Filters: [
          { Name: "tag:job", Values: ["?"] },
          { Name: "instance-lifecycle", Values: ["spot"] },
        ],
      }),
    );
    const found = described.Reservations?.flatMap((r) => r.Instances ?? []);
    expect(found?.map((i) => i.InstanceId).sort()).toEqual([...ids].sort());
    expect(found?.[0]?.Tags).toEqual([{ Key: "job", Value: "7" }]);
    expect(found?.[0]?.LaunchTime).toBeInstanceOf(Date);
  });

  it("throttles mutating calls with EC2's token bucket, as RequestLimitExceeded (HTTP 503)", async () => {
    const id = sandbox.ec2.addInstance();
    sandbox.clock.freeze(); // count tokens exactly: no refill while the 50 calls run
    sandbox.faults.throttle("ec2", "mutating", EC2_THROTTLE.mutating);
    const tag = () => ec2.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: "k", Value: "v" }] }));
    for (let i = 0; i < 50; i++) await tag();
    const throttled = await errorOf(tag());
    expect(throttled.name).toBe("RequestLimitExceeded");
    expect(throttled.$metadata?.httpStatusCode).toBe(503);
    // Describe calls draw from another bucket.
    await ec2.send(new DescribeInstancesCommand({}));
    sandbox.clock.advance(1_000); // 5 tokens back
    for (let i = 0; i < 5; i++) await tag();
    expect((await errorOf(tag())).name).toBe("RequestLimitExceeded");
  });

  it("lets the SDK's retry ride over a transient injected error", async () => {
    sandbox.faults.fail("ec2", "DescribeInstances", { code: "RequestLimitExceeded" }, { times: 1 });
    const retrying = new EC2Client({ ...config(sandbox.endpoints.ec2), maxAttempts: 3 });
    await retrying.send(new DescribeInstancesCommand({}));
    retrying.destroy();
    expect(sandbox.callsTo("ec2", "DescribeInstances").map((c) => c.errorCode)).toEqual([
      "RequestLimitExceeded",
      undefined,
    ]);
  });

  it("finds, deregisters and deletes the fleet's images and snapshots", async () => {
    const snapshot = sandbox.ec2.addSnapshot({ tags: { "runner-fleet:stack": "dev" } });
    const image = sandbox.ec2.addImage({
      name: "runner-x64",
      snapshotIds: [snapshot],
      tags: { "runner-fleet:stack": "dev" },
    });
    sandbox.ec2.addImage({ name: "someone-else" });
    const tagged = [{ Name: "tag:runner-fleet:stack", Values: ["dev"] }];
    const images = await ec2.send(new DescribeImagesCommand({ Owners: ["self"], Filters: tagged }));
    expect(
      images.Images?.map((i) => [i.ImageId, i.Name, i.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId]),
    ).toEqual([[image, "runner-x64", snapshot]]);
    const inUse = await errorOf(ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshot })));
    expect(inUse.name).toBe("InvalidSnapshot.InUse");
    await ec2.send(new DeregisterImageCommand({ ImageId: image }));
    const snapshots = await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ["self"], Filters: tagged }));
    expect(snapshots.Snapshots?.map((s) => s.SnapshotId)).toEqual([snapshot]);
    await ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshot }));
    expect(sandbox.ec2.snapshots()).toEqual([]);
    expect((await errorOf(ec2.send(new DeregisterImageCommand({ ImageId: image })))).name).toBe(
      "InvalidAMIID.NotFound",
    );
  });

  it("answers DryRun and unknown actions with EC2's errors", async () => {
    const dryRun = await errorOf(
      ec2.send(new TerminateInstancesCommand({ InstanceIds: ["i-0123456789abcdef0"], DryRun: true })),
    );
    expect(dryRun.name).toBe("DryRunOperation");
    const unknown = await errorOf(
      ec2.send(new RebootInstancesCommand({ InstanceIds: ["i-0123456789abcdef0"] })),
    );
    expect(unknown.name).toBe("InvalidAction");
  });
});

describe("EC2 boots, stops and starts on the sandbox clock", () => {
  const BOOT = {
    launchPendingMs: 5_000,
    firstBootMs: 10_000,
    startPendingMs: 4_000,
    restartBootMs: 7_000,
    resumePendingMs: 3_000,
    resumeMs: 2_000,
    stoppingMs: 15_000,
    hibernatingMs: 30_000,
    shutdownMs: 20_000,
  };
  let booting: Sandbox;
  let client: EC2Client;
  beforeAll(async () => {
    booting = await startSandbox({ ec2: { boot: BOOT } });
    client = new EC2Client(config(booting.endpoints.ec2));
  });
  afterAll(async () => {
    client.destroy();
    await booting.close();
  });
  beforeEach(async () => {
    await booting.reset();
    booting.clock.freeze(); // only advance() moves time: every transition lands exactly
  });

  const stateOf = async (id: string) => {
    const described = await client.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    return described.Reservations?.[0]?.Instances?.[0];
  };
  const launch = async (extra: Partial<ConstructorParameters<typeof RunInstancesCommand>[0]> = {}) => {
    const run = await client.send(
      new RunInstancesCommand({ InstanceType: "m7i.xlarge", MinCount: 1, MaxCount: 1, ...extra }),
    );
    return run.Instances![0]!.InstanceId!;
  };

  it("is pending, then running, and records when its OS reaches the user data", async () => {
    const launchedAt = booting.clock.now();
    const id = await launch();
    expect((await stateOf(id))?.State?.Name).toBe("pending");
    booting.clock.advance(4_999);
    expect((await stateOf(id))?.State?.Name).toBe("pending");
    booting.clock.advance(1);
    expect((await stateOf(id))?.State?.Name).toBe("running");
    expect(booting.ec2.instance(id)?.boots).toEqual([
      {
        kind: "launch",
        requestedAt: launchedAt,
        runningAt: launchedAt + 5_000,
        readyAt: launchedAt + 15_000,
      },
    ]);
  });

  it("stops, refuses a start while stopping, then starts and boots its OS again", async () => {
    const id = await launch();
    booting.clock.advance(15_000);
    const stopping = await client.send(new StopInstancesCommand({ InstanceIds: [id] }));
    expect(stopping.StoppingInstances?.map((i) => [i.PreviousState?.Name, i.CurrentState?.Name])).toEqual([
      ["running", "stopping"],
    ]);
    const early = await errorOf(client.send(new StartInstancesCommand({ InstanceIds: [id] })));
    expect(early.name).toBe("IncorrectInstanceState");
    booting.clock.advance(15_000);
    const stopped = await stateOf(id);
    expect([stopped?.State?.Name, stopped?.StateReason?.Code]).toEqual([
      "stopped",
      "Client.UserInitiatedShutdown",
    ]);
    // Stopping it again changes nothing; an instance that is not running cannot be stopped.
    const again = await client.send(new StopInstancesCommand({ InstanceIds: [id] }));
    expect(again.StoppingInstances?.[0]?.CurrentState?.Name).toBe("stopped");

    booting.clock.advance(60_000);
    const startedAt = booting.clock.now();
    const started = await client.send(new StartInstancesCommand({ InstanceIds: [id] }));
    expect(started.StartingInstances?.map((i) => [i.PreviousState?.Name, i.CurrentState?.Name])).toEqual([
      ["stopped", "pending"],
    ]);
    // LaunchTime is when the instance was last started.
    expect((await stateOf(id))?.LaunchTime?.getTime()).toBe(startedAt);
    booting.clock.advance(4_000);
    expect((await stateOf(id))?.State?.Name).toBe("running");
    expect(booting.ec2.instance(id)?.boots.at(-1)).toEqual({
      kind: "start",
      requestedAt: startedAt,
      runningAt: startedAt + 4_000,
      readyAt: startedAt + 11_000,
    });
  });

  it("hibernates only an on-demand instance launched for it, and resumes it on start", async () => {
    const plain = await launch();
    const spot = await launch({ InstanceMarketOptions: { MarketType: "spot" } });
    const hibernating = await launch({ HibernationOptions: { Configured: true } });
    booting.clock.advance(15_000);
    expect((await stateOf(hibernating))?.HibernationOptions?.Configured).toBe(true);
    const notEnabled = await errorOf(
      client.send(new StopInstancesCommand({ InstanceIds: [plain], Hibernate: true })),
    );
    expect(notEnabled.name).toBe("UnsupportedOperation");
    const oneTimeSpot = await errorOf(client.send(new StopInstancesCommand({ InstanceIds: [spot] })));
    expect(oneTimeSpot.name).toBe("UnsupportedOperation");
    // A refused instance in the call leaves the others as they were.
    await errorOf(client.send(new StopInstancesCommand({ InstanceIds: [plain, spot] })));
    expect((await stateOf(plain))?.State?.Name).toBe("running");

    await client.send(new StopInstancesCommand({ InstanceIds: [hibernating], Hibernate: true }));
    booting.clock.advance(29_999);
    expect((await stateOf(hibernating))?.State?.Name).toBe("stopping");
    booting.clock.advance(1);
    const hibernated = await stateOf(hibernating);
    expect([hibernated?.State?.Name, hibernated?.StateReason?.Code]).toEqual([
      "stopped",
      "Client.UserInitiatedHibernate",
    ]);
    const resumedAt = booting.clock.now();
    await client.send(new StartInstancesCommand({ InstanceIds: [hibernating] }));
    expect(booting.ec2.instance(hibernating)?.boots.at(-1)).toEqual({
      kind: "resume",
      requestedAt: resumedAt,
      runningAt: resumedAt + 3_000,
      readyAt: resumedAt + 5_000,
    });
  });

  it("fails a start for capacity with the instance left stopped, and never starts a terminated one", async () => {
    const id = await launch();
    booting.clock.advance(15_000);
    await client.send(new StopInstancesCommand({ InstanceIds: [id] }));
    booting.clock.advance(15_000);
    booting.faults.fail("ec2", "StartInstances", "InsufficientInstanceCapacity", {
      when: (r) => (r.params as { InstanceId?: string[] }).InstanceId?.includes(id) ?? false,
      times: 1,
    });
    const noCapacity = await errorOf(client.send(new StartInstancesCommand({ InstanceIds: [id] })));
    expect(noCapacity.name).toBe("InsufficientInstanceCapacity");
    expect((await stateOf(id))?.State?.Name).toBe("stopped");
    await client.send(new StartInstancesCommand({ InstanceIds: [id] }));
    expect((await stateOf(id))?.State?.Name).toBe("pending");

    await client.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    expect((await stateOf(id))?.State?.Name).toBe("shutting-down");
    booting.clock.advance(20_000);
    expect((await stateOf(id))?.State?.Name).toBe("terminated");
    const gone = await errorOf(client.send(new StartInstancesCommand({ InstanceIds: [id] })));
    expect(gone.name).toBe("IncorrectInstanceState");
  });

  it("gives fleet instances their template's hibernation, and stops one whose OS shuts down", async () => {
    booting.ec2.configureLaunchTemplate("lt-0pool", { hibernation: true });
    const fleet = await client.send(
      new CreateFleetCommand({
        Type: "instant",
        LaunchTemplateConfigs: [
          {
            LaunchTemplateSpecification: { LaunchTemplateId: "lt-0pool", Version: "$Latest" },
            Overrides: [{ InstanceType: "m7i.xlarge", SubnetId: "subnet-a" }],
          },
        ],
        TargetCapacitySpecification: { TotalTargetCapacity: 1, DefaultTargetCapacityType: "on-demand" },
      }),
    );
    const id = fleet.Instances![0]!.InstanceIds![0]!;
    expect(booting.ec2.instance(id)?.hibernation).toBe(true);
    booting.clock.advance(15_000);
    booting.ec2.osShutdown(id);
    booting.clock.advance(15_000);
    expect(booting.ec2.instances({ state: "stopped" }).map((i) => [i.instanceId, i.stateReason])).toEqual([
      [id, "Client.InstanceInitiatedShutdown"],
    ]);
  });

  it("draws a modeled duration around its median and 90th percentile", () => {
    // Seeded: the draws, and so this test, are the same every run.
    const random = seededRandom(42);
    const draws = Array.from({ length: 4_000 }, () => sampleMs({ p50: 5_000, p90: 8_000 }, random)).sort(
      (a, b) => a - b,
    );
    expect(draws[2_000]! / 5_000).toBeCloseTo(1, 1);
    expect(draws[3_600]! / 8_000).toBeCloseTo(1, 1);
    expect(sampleMs(1_234, random)).toBe(1_234);
  });
});

describe("CloudWatch alarms", () => {
  it("describes metric and composite alarms by prefix across pages, with CloudWatch's errors", async () => {
    const restore = sandbox.useEnv();
    try {
      for (let i = 0; i < 120; i++) sandbox.cloudwatch.putAlarm(`stack-a-${String(i).padStart(3, "0")}`);
      sandbox.cloudwatch.putAlarm("stack-a-dlq", { state: "ALARM", reason: "Threshold Crossed: 1 > 0" });
      sandbox.cloudwatch.putAlarm("stack-a-combined", { type: "CompositeAlarm", state: "ALARM" });
      sandbox.cloudwatch.putAlarm("stack-b-other", { state: "ALARM" });
      const alarms = await describeAlarms("stack-a-");
      expect(alarms).toHaveLength(122);
      expect(alarms.filter((a) => a.state === "ALARM").map((a) => [a.name, a.reason])).toEqual([
        ["stack-a-dlq", "Threshold Crossed: 1 > 0"],
        ["stack-a-combined", "Threshold Crossed: no datapoints were breaching the threshold"],
      ]);
      expect(alarms[0]!.since).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(sandbox.callsTo("cloudwatch", "DescribeAlarms")).toHaveLength(2);

      // Unsigned is fine for the fake: what is checked here is the error's wire shape.
      const response = await fetch(sandbox.endpoints.cloudwatch, {
        method: "POST",
        headers: {
          "content-type": "application/x-amz-json-1.0",
          "x-amz-target": "GraniteServiceVersion20100801.DescribeAlarms",
        },
        body: JSON.stringify({ AlarmNames: ["x"], AlarmNamePrefix: "x" }),
      });
      expect(response.status).toBe(400);
      expect(response.headers.get("x-amzn-query-error")).toBe("InvalidParameterCombination;Sender");
      expect(await response.json()).toMatchObject({ __type: "InvalidParameterCombination" });
    } finally {
      restore();
    }
  });
});
