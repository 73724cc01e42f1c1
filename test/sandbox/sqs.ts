/**
 * SQS over its AWS JSON protocol (what @aws-sdk/client-sqs 3.11xx sends: awsJson1_0,
 * `X-Amz-Target: AmazonSQS.<Op>`, `x-amzn-query-mode: true`), with real standard-queue semantics:
 * visibility timeouts, per-message and queue delays, receive counts, redrive to a DLQ after
 * maxReceiveCount, MD5 digests of bodies and message attributes (the SDK verifies them), long polling.
 */
import { createHash, randomUUID } from "node:crypto";
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import { QUERY_ERROR_NAMES } from "../../lambda/adapters/aws-json";
import type { FaultError, Faults } from "./faults";
import { ACCOUNT_ID, ApiError, type Clock, type LocalServer, listen } from "./http";
import { check, jsonRpcHandler } from "./json-rpc";

interface MessageAttributeValue {
  DataType: string;
  StringValue?: string;
  BinaryValue?: string;
}

interface Message {
  id: string;
  body: string;
  md5: string;
  messageAttributes: Record<string, MessageAttributeValue>;
  sentAt: number;
  /** Epoch ms from which the message can be received (delay or visibility timeout). */
  visibleAt: number;
  receiveCount: number;
  firstReceiveAt?: number;
  /** Every receipt handle issued for it; the last one is current. */
  handles: string[];
}

interface Queue {
  name: string;
  url: string;
  arn: string;
  createdAt: number;
  attributes: Record<string, string>;
  /** Insertion order; a received message moves to the end, so visible ones are found early. */
  messages: Map<string, Message>;
  lastPurgeAt?: number;
  waiters: Set<() => void>;
}

export interface QueueMessage {
  messageId: string;
  body: string;
  receiveCount: number;
  /** Receivable now (not delayed, not in flight). */
  visible: boolean;
  /** Received and its visibility timeout not over. */
  inFlight: boolean;
  visibleAt: number;
  sentAt: number;
}

const DEFAULT_ATTRIBUTES: Record<string, string> = {
  DelaySeconds: "0",
  MaximumMessageSize: "262144",
  MessageRetentionPeriod: "345600",
  ReceiveMessageWaitTimeSeconds: "0",
  VisibilityTimeout: "30",
};

/**
 * The awsQueryError codes that are not the error's name (the client's table, which
 * test/aws-json.test.ts checks against the SDK's model of SQS): name → code. SQS sends the code and
 * fault of every JSON error in `x-amzn-query-error: Code;Sender`.
 */
const QUERY_CODES: Record<string, string> = Object.fromEntries(
  Object.entries(QUERY_ERROR_NAMES.sqs!).map(([code, name]) => [name, code]),
);

/** Statuses other than 400: SQS's model's (httpError), and the unmodelled server errors'. */
const STATUS: Record<string, number> = {
  InternalError: 500,
  ServiceUnavailable: 503,
  InvalidAddress: 404,
  InvalidSecurity: 403,
  KmsOptInRequired: 403,
  OverLimit: 403,
  PurgeQueueInProgress: 403,
  ReceiptHandleIsInvalid: 404,
  RequestThrottled: 403,
  ResourceNotFoundException: 404,
};
const THROTTLE: FaultError = { code: "RequestThrottled", message: "Request is throttled." };
/** Every error SQS's model declares, with its awsQueryError code and status, from the SDK's schemas. */
export async function sqsModelErrors(): Promise<{ name: string; code: string; status: number }[]> {
  await import("@aws-sdk/client-sqs"); // registers its schemas
  const { NormalizedSchema, TypeRegistry } = await import("@smithy/core/schema");
  const errors: { name: string; code: string; status: number }[] = [];
  TypeRegistry.for("com.amazonaws.sqs").find((schema) => {
    const shape = NormalizedSchema.of(schema);
    const traits = shape.getMergedTraits();
    const name = shape.getName() ?? "";
    const [code, status] = (traits.awsQueryError as [string, number] | undefined) ?? [name, traits.httpError];
    if (traits.error) errors.push({ name, code, status: Number(status ?? 400) });
    return false;
  });
  return errors;
}

/** An SQS error, with the status SQS gives it. */
const sqsError = (code: string, message: string) => new ApiError(code, message, STATUS[code]);
/** No code fails a batch entry by itself: only rules with `inline: true` do (the others fail the call). */
const BATCH_INLINE_CODES: ReadonlySet<string> = new Set<string>();
const MAX_BODY_BYTES = 262_144;

const md5 = (data: string | Buffer) => createHash("md5").update(data).digest("hex");

/** SQS's digest of message attributes: sorted by name, each length-prefixed (big-endian u32). */
export function md5OfMessageAttributes(attributes: Record<string, MessageAttributeValue>): string {
  const parts: Buffer[] = [];
  const lengthPrefixed = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    parts.push(length, bytes);
  };
  for (const name of Object.keys(attributes).sort()) {
    const value = attributes[name]!;
    lengthPrefixed(Buffer.from(name, "utf8"));
    lengthPrefixed(Buffer.from(value.DataType, "utf8"));
    if (value.BinaryValue !== undefined) {
      parts.push(Buffer.from([2]));
      lengthPrefixed(Buffer.from(value.BinaryValue, "base64"));
    } else {
      parts.push(Buffer.from([1]));
      lengthPrefixed(Buffer.from(value.StringValue ?? "", "utf8"));
    }
  }
  return md5(Buffer.concat(parts));
}

/** The system attributes of a message (ReceiveMessage's AttributeNames; all of them in Lambda's records). */
const systemAttributes = (message: Message) => ({
  SenderId: ACCOUNT_ID,
  SentTimestamp: String(message.sentAt),
  ApproximateReceiveCount: String(message.receiveCount),
  ApproximateFirstReceiveTimestamp: String(message.firstReceiveAt ?? message.sentAt),
});

/** Receivable now, received and within its visibility timeout, or not yet delivered (delay). */
const stateOf = (message: Message, now: number): "visible" | "inFlight" | "delayed" =>
  message.visibleAt <= now ? "visible" : message.receiveCount > 0 ? "inFlight" : "delayed";

export interface SqsFakeOptions {
  faults: Faults;
  clock: Clock;
  region: string;
}

export type SqsFake = Awaited<ReturnType<typeof startSqsFake>>;

export async function startSqsFake({ faults, clock, region }: SqsFakeOptions) {
  const queues = new Map<string, Queue>(); // by name
  const byArn = new Map<string, Queue>();
  const handles = new Map<string, { queue: Queue; messageId: string }>();
  let closed = false;
  let url = "";

  const queueByUrl = (queueUrl: unknown): Queue => {
    check(
      typeof queueUrl === "string" && queueUrl,
      "The request must contain the parameter QueueUrl.",
      "MissingParameter",
    );
    const name = queueUrl.slice(queueUrl.lastIndexOf("/") + 1);
    const queue = queues.get(name);
    if (!queue || queue.url !== queueUrl) {
      throw sqsError("QueueDoesNotExist", "The specified queue does not exist.");
    }
    return queue;
  };

  const intAttribute = (queue: Queue, name: string) => Number(queue.attributes[name]);

  const redriveOf = (queue: Queue): { dlq: Queue; maxReceiveCount: number } | undefined => {
    const policy = queue.attributes.RedrivePolicy;
    if (!policy) return undefined;
    const { deadLetterTargetArn, maxReceiveCount } = JSON.parse(policy) as {
      deadLetterTargetArn: string;
      maxReceiveCount: number | string;
    };
    const dlq = byArn.get(deadLetterTargetArn);
    return dlq ? { dlq, maxReceiveCount: Number(maxReceiveCount) } : undefined;
  };

  const validateAttributes = (attributes: Record<string, string>) => {
    for (const [name, value] of Object.entries(attributes)) {
      if (name === "VisibilityTimeout")
        check(
          Number(value) >= 0 && Number(value) <= 43_200,
          "Invalid value for the parameter VisibilityTimeout.",
          "InvalidAttributeValue",
        );
      if (name === "DelaySeconds")
        check(
          Number(value) >= 0 && Number(value) <= 900,
          "Invalid value for the parameter DelaySeconds.",
          "InvalidAttributeValue",
        );
      if (name === "RedrivePolicy") {
        let policy: { deadLetterTargetArn?: string; maxReceiveCount?: unknown } = {};
        try {
          policy = JSON.parse(value);
        } catch {}
        check(
          policy.deadLetterTargetArn && Number(policy.maxReceiveCount) >= 1,
          "Invalid value for the parameter RedrivePolicy.",
          "InvalidAttributeValue",
        );
        check(
          byArn.has(policy.deadLetterTargetArn!),
          "Dead-letter target does not exist.",
          "InvalidAttributeValue",
        );
      }
    }
  };

  const createQueue = (name: string, attributes: Record<string, string> = {}): Queue => {
    check(
      /^[A-Za-z0-9_-]{1,80}$/.test(name),
      "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
      "InvalidParameterValue",
    );
    validateAttributes(attributes);
    const existing = queues.get(name);
    if (existing) {
      const differs = Object.entries(attributes).some(([k, v]) => existing.attributes[k] !== v);
      if (differs)
        throw sqsError(
          "QueueNameExists",
          `A queue already exists with the same name and a different value for attribute(s)`,
        );
      return existing;
    }
    const queue: Queue = {
      name,
      url: `${url}/${ACCOUNT_ID}/${name}`,
      arn: `arn:aws:sqs:${region}:${ACCOUNT_ID}:${name}`,
      createdAt: clock.now(),
      attributes: { ...DEFAULT_ATTRIBUTES, ...attributes },
      messages: new Map(),
      waiters: new Set(),
    };
    queues.set(name, queue);
    byArn.set(queue.arn, queue);
    return queue;
  };

  const wake = (queue: Queue) => {
    for (const waiter of queue.waiters) waiter();
    queue.waiters.clear();
  };
  const unsubscribeClock = clock.onAdvance(() => {
    for (const queue of queues.values()) wake(queue);
  });

  const enqueue = (
    queue: Queue,
    body: unknown,
    delaySeconds: unknown,
    messageAttributes: Record<string, MessageAttributeValue> = {},
  ) => {
    check(
      typeof body === "string" && body.length > 0,
      "The request must contain the parameter MessageBody.",
      "MissingParameter",
    );
    check(
      Buffer.byteLength(body) <= MAX_BODY_BYTES,
      "One or more parameters are invalid. Reason: Message must be shorter than 262144 bytes.",
      "InvalidParameterValue",
    );
    const delay = delaySeconds ?? intAttribute(queue, "DelaySeconds");
    check(
      Number.isInteger(delay) && (delay as number) >= 0 && (delay as number) <= 900,
      "Value for parameter DelaySeconds is invalid. Reason: Must be >= 0 and <= 900.",
      "InvalidParameterValue",
    );
    const now = clock.now();
    const message: Message = {
      id: randomUUID(),
      body,
      md5: md5(body),
      messageAttributes,
      sentAt: now,
      visibleAt: now + (delay as number) * 1000,
      receiveCount: 0,
      handles: [],
    };
    queue.messages.set(message.id, message);
    wake(queue);
    const hasAttributes = Object.keys(messageAttributes).length > 0;
    return {
      MessageId: message.id,
      MD5OfMessageBody: message.md5,
      ...(hasAttributes ? { MD5OfMessageAttributes: md5OfMessageAttributes(messageAttributes) } : {}),
    };
  };

  const forget = (queue: Queue, message: Message) => {
    queue.messages.delete(message.id);
    for (const handle of message.handles) handles.delete(handle);
  };

  /** Receives up to `max` messages now; moves messages past maxReceiveCount to the DLQ first. */
  const receiveNow = (queue: Queue, max: number, visibilitySeconds: number): Message[] => {
    const now = clock.now();
    const redrive = redriveOf(queue);
    const received: Message[] = [];
    for (const message of queue.messages.values()) {
      if (received.length >= max) break;
      if (message.visibleAt > now) continue;
      if (redrive && message.receiveCount >= redrive.maxReceiveCount) {
        forget(queue, message);
        redrive.dlq.messages.set(message.id, {
          ...message,
          visibleAt: now,
          receiveCount: 0,
          firstReceiveAt: undefined,
          handles: [],
        });
        wake(redrive.dlq);
        continue;
      }
      received.push(message);
    }
    for (const message of received) {
      message.receiveCount++;
      message.firstReceiveAt ??= now;
      message.visibleAt = now + visibilitySeconds * 1000;
      const handle = Buffer.from(`${queue.name}/${message.id}/${randomUUID()}`).toString("base64");
      message.handles.push(handle);
      handles.set(handle, { queue, messageId: message.id });
      // Move to the end: the next receive finds visible messages without walking in-flight ones.
      queue.messages.delete(message.id);
      queue.messages.set(message.id, message);
    }
    return received;
  };

  const waitForChange = (queue: Queue, ms: number) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        queue.waiters.delete(done);
        resolve();
      };
      // Re-check at least every 100 ms: a visibility timeout or delay may end meanwhile.
      const timer = setTimeout(done, Math.min(ms, 100));
      queue.waiters.add(done);
    });

  const selectedAttributes = (names: string[] | undefined, message: Message) => {
    if (!names?.length) return undefined;
    const all: Record<string, string> = systemAttributes(message);
    const wanted = names.includes("All") ? Object.keys(all) : names.filter((n) => n in all);
    return Object.fromEntries(wanted.map((n) => [n, all[n]!]));
  };

  const selectedMessageAttributes = (names: string[] | undefined, message: Message) => {
    if (!names?.length) return undefined;
    const entries = Object.entries(message.messageAttributes).filter(([name]) =>
      names.some(
        (n) =>
          n === "All" || n === ".*" || n === name || (n.endsWith(".*") && name.startsWith(n.slice(0, -1))),
      ),
    );
    return entries.length ? Object.fromEntries(entries) : undefined;
  };

  const wireMessage = (message: Message, input: ReceiveInput) => {
    const attributes = selectedAttributes(
      [...(input.AttributeNames ?? []), ...(input.MessageSystemAttributeNames ?? [])],
      message,
    );
    const messageAttributes = selectedMessageAttributes(input.MessageAttributeNames, message);
    return {
      MessageId: message.id,
      ReceiptHandle: message.handles.at(-1),
      MD5OfBody: message.md5,
      Body: message.body,
      ...(attributes ? { Attributes: attributes } : {}),
      ...(messageAttributes
        ? {
            MessageAttributes: messageAttributes,
            MD5OfMessageAttributes: md5OfMessageAttributes(messageAttributes),
          }
        : {}),
    };
  };

  const visibilityOf = (queue: Queue, requested: unknown) => {
    const seconds = requested ?? intAttribute(queue, "VisibilityTimeout");
    check(
      Number.isInteger(seconds) && (seconds as number) >= 0 && (seconds as number) <= 43_200,
      "Value for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200.",
      "InvalidParameterValue",
    );
    return seconds as number;
  };

  const changeVisibility = (queue: Queue, receiptHandle: unknown, seconds: unknown) => {
    const entry = typeof receiptHandle === "string" ? handles.get(receiptHandle) : undefined;
    if (!entry || entry.queue !== queue)
      throw sqsError(
        "ReceiptHandleIsInvalid",
        `The input receipt handle "${receiptHandle}" is not a valid receipt handle.`,
      );
    const message = queue.messages.get(entry.messageId);
    const now = clock.now();
    if (!message || message.handles.at(-1) !== receiptHandle || message.visibleAt <= now) {
      throw sqsError(
        "MessageNotInflight",
        "Message does not exist or is not available for visibility timeout change.",
      );
    }
    check(
      Number.isInteger(seconds) && (seconds as number) >= 0 && (seconds as number) <= 43_200,
      "Value for parameter VisibilityTimeout is invalid.",
      "InvalidParameterValue",
    );
    message.visibleAt = now + (seconds as number) * 1000;
    if (seconds === 0) wake(queue);
  };

  const deleteMessage = (queue: Queue, receiptHandle: unknown) => {
    check(
      typeof receiptHandle === "string" && receiptHandle,
      "The request must contain the parameter ReceiptHandle.",
      "MissingParameter",
    );
    const entry = handles.get(receiptHandle);
    if (!entry) {
      let decoded = "";
      try {
        decoded = Buffer.from(receiptHandle, "base64").toString("utf8");
      } catch {}
      // A handle we issued for a message deleted since: SQS answers success.
      if (decoded.startsWith(`${queue.name}/`)) return;
      throw sqsError(
        "ReceiptHandleIsInvalid",
        `The input receipt handle "${receiptHandle}" is not a valid receipt handle.`,
      );
    }
    if (entry.queue !== queue)
      throw sqsError("ReceiptHandleIsInvalid", "The receipt handle does not belong to this queue.");
    const message = queue.messages.get(entry.messageId);
    if (message) forget(queue, message);
  };

  interface BatchEntry {
    Id: string;
  }
  /** Runs a batch: validates ids, applies per-entry injected failures (`inline: true`), collects results. */
  const batch = <E extends BatchEntry>(
    operation: string,
    params: { QueueUrl?: string; Entries?: E[] },
    each: (entry: E) => Record<string, unknown>,
  ) => {
    const entries = params.Entries ?? [];
    if (entries.length === 0)
      throw sqsError("EmptyBatchRequest", "There should be at least one entry in the request.");
    if (entries.length > 10)
      throw sqsError("TooManyEntriesInBatchRequest", "Maximum number of entries per request are 10.");
    if (new Set(entries.map((e) => e.Id)).size !== entries.length) {
      throw sqsError(
        "BatchEntryIdsNotDistinct",
        "Two or more batch entries in the request have the same Id.",
      );
    }
    const failureOf = faults.inlineFailures({ service: "sqs", operation, params }, BATCH_INLINE_CODES);
    const failedEntry = (Id: string, error: FaultError | ApiError) => ({
      Id,
      SenderFault: (error.status ?? 400) < 500,
      Code: error.code,
      Message: error.message ?? error.code,
    });
    const Successful: Record<string, unknown>[] = [];
    const Failed: Record<string, unknown>[] = [];
    for (const entry of entries) {
      const fault = failureOf({ ...entry } as Record<string, unknown>);
      if (fault) {
        Failed.push(failedEntry(entry.Id, fault));
        continue;
      }
      try {
        Successful.push({ Id: entry.Id, ...each(entry) });
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        Failed.push(failedEntry(entry.Id, error));
      }
    }
    return { Successful, Failed };
  };

  interface ReceiveInput {
    QueueUrl: string;
    MaxNumberOfMessages?: number;
    VisibilityTimeout?: number;
    WaitTimeSeconds?: number;
    AttributeNames?: string[];
    MessageSystemAttributeNames?: string[];
    MessageAttributeNames?: string[];
  }

  const operations = {
    CreateQueue: (p: { QueueName: string; Attributes?: Record<string, string> }) => ({
      QueueUrl: createQueue(p.QueueName, p.Attributes).url,
    }),
    GetQueueUrl: (p: { QueueName: string }) => {
      const queue = queues.get(p.QueueName);
      if (!queue) throw sqsError("QueueDoesNotExist", "The specified queue does not exist.");
      return { QueueUrl: queue.url };
    },
    ListQueues: (p: { QueueNamePrefix?: string }) => ({
      QueueUrls: [...queues.values()]
        .filter((q) => q.name.startsWith(p.QueueNamePrefix ?? ""))
        .map((q) => q.url),
    }),
    DeleteQueue: (p: { QueueUrl: string }) => {
      const queue = queueByUrl(p.QueueUrl);
      queues.delete(queue.name);
      byArn.delete(queue.arn);
      for (const message of queue.messages.values()) forget(queue, message);
      wake(queue);
      return {};
    },
    GetQueueAttributes: (p: { QueueUrl: string; AttributeNames?: string[] }) => {
      const queue = queueByUrl(p.QueueUrl);
      const now = clock.now();
      const count = { visible: 0, inFlight: 0, delayed: 0 };
      for (const message of queue.messages.values()) count[stateOf(message, now)]++;
      const all: Record<string, string> = {
        ...queue.attributes,
        QueueArn: queue.arn,
        CreatedTimestamp: String(Math.floor(queue.createdAt / 1000)),
        LastModifiedTimestamp: String(Math.floor(queue.createdAt / 1000)),
        ApproximateNumberOfMessages: String(count.visible),
        ApproximateNumberOfMessagesNotVisible: String(count.inFlight),
        ApproximateNumberOfMessagesDelayed: String(count.delayed),
      };
      const names = p.AttributeNames ?? [];
      const wanted = names.includes("All") ? Object.keys(all) : names.filter((n) => n in all);
      return { Attributes: Object.fromEntries(wanted.map((n) => [n, all[n]])) };
    },
    SetQueueAttributes: (p: { QueueUrl: string; Attributes: Record<string, string> }) => {
      const queue = queueByUrl(p.QueueUrl);
      validateAttributes(p.Attributes ?? {});
      Object.assign(queue.attributes, p.Attributes);
      return {};
    },
    PurgeQueue: (p: { QueueUrl: string }) => {
      const queue = queueByUrl(p.QueueUrl);
      const now = clock.now();
      if (queue.lastPurgeAt !== undefined && now - queue.lastPurgeAt < 60_000) {
        throw sqsError(
          "PurgeQueueInProgress",
          `Only one PurgeQueue operation on ${queue.name} is allowed every 60 seconds.`,
        );
      }
      queue.lastPurgeAt = now;
      for (const message of queue.messages.values()) forget(queue, message);
      return {};
    },
    SendMessage: (p: {
      QueueUrl: string;
      MessageBody: string;
      DelaySeconds?: number;
      MessageAttributes?: Record<string, MessageAttributeValue>;
    }) => enqueue(queueByUrl(p.QueueUrl), p.MessageBody, p.DelaySeconds, p.MessageAttributes),
    SendMessageBatch: (p: {
      QueueUrl: string;
      Entries: {
        Id: string;
        MessageBody: string;
        DelaySeconds?: number;
        MessageAttributes?: Record<string, MessageAttributeValue>;
      }[];
    }) => {
      const queue = queueByUrl(p.QueueUrl);
      const total = (p.Entries ?? []).reduce((sum, e) => sum + Buffer.byteLength(e.MessageBody ?? ""), 0);
      if (total > MAX_BODY_BYTES)
        throw sqsError("BatchRequestTooLong", "Batch requests cannot be longer than 262144 bytes.");
      return batch("SendMessageBatch", p, (e) =>
        enqueue(queue, e.MessageBody, e.DelaySeconds, e.MessageAttributes),
      );
    },
    ReceiveMessage: async (p: ReceiveInput) => {
      const queue = queueByUrl(p.QueueUrl);
      const max = p.MaxNumberOfMessages ?? 1;
      check(
        Number.isInteger(max) && max >= 1 && max <= 10,
        "Value for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.",
        "InvalidParameterValue",
      );
      const visibility = visibilityOf(queue, p.VisibilityTimeout);
      const wait = p.WaitTimeSeconds ?? intAttribute(queue, "ReceiveMessageWaitTimeSeconds");
      check(
        Number.isInteger(wait) && wait >= 0 && wait <= 20,
        "Value for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.",
        "InvalidParameterValue",
      );
      const deadline = Date.now() + wait * 1000;
      let received = receiveNow(queue, max, visibility);
      while (received.length === 0 && !closed && queues.get(queue.name) === queue && Date.now() < deadline) {
        await waitForChange(queue, deadline - Date.now());
        received = receiveNow(queue, max, visibility);
      }
      return { Messages: received.map((m) => wireMessage(m, p)) };
    },
    DeleteMessage: (p: { QueueUrl: string; ReceiptHandle: string }) => {
      deleteMessage(queueByUrl(p.QueueUrl), p.ReceiptHandle);
      return {};
    },
    DeleteMessageBatch: (p: { QueueUrl: string; Entries: { Id: string; ReceiptHandle: string }[] }) => {
      const queue = queueByUrl(p.QueueUrl);
      return batch("DeleteMessageBatch", p, (e) => {
        deleteMessage(queue, e.ReceiptHandle);
        return {};
      });
    },
    ChangeMessageVisibility: (p: { QueueUrl: string; ReceiptHandle: string; VisibilityTimeout: number }) => {
      changeVisibility(queueByUrl(p.QueueUrl), p.ReceiptHandle, p.VisibilityTimeout);
      return {};
    },
    ChangeMessageVisibilityBatch: (p: {
      QueueUrl: string;
      Entries: { Id: string; ReceiptHandle: string; VisibilityTimeout: number }[];
    }) => {
      const queue = queueByUrl(p.QueueUrl);
      return batch("ChangeMessageVisibilityBatch", p, (e) => {
        changeVisibility(queue, e.ReceiptHandle, e.VisibilityTimeout);
        return {};
      });
    },
  };

  const server: LocalServer = await listen(
    jsonRpcHandler({
      service: "sqs",
      targetPrefix: "AmazonSQS",
      contentType: "application/x-amz-json-1.0",
      faults,
      operations,
      throttleError: THROTTLE,
      statuses: STATUS,
      isMutating: (operation) => !/^(Get|List)/.test(operation),
      inlineCodes: (operation) => (operation.endsWith("Batch") ? BATCH_INLINE_CODES : undefined),
      renderError: (error) => ({
        body: { __type: `com.amazonaws.sqs#${error.code}`, message: error.message },
        headers: {
          "x-amzn-query-error": `${QUERY_CODES[error.code] ?? error.code};${error.status >= 500 ? "Receiver" : "Sender"}`,
        },
      }),
    }),
  );
  url = server.url;

  const toRecord = (queue: Queue, message: Message): SQSRecord => ({
    messageId: message.id,
    receiptHandle: message.handles.at(-1)!,
    body: message.body,
    attributes: systemAttributes(message),
    messageAttributes: Object.fromEntries(
      Object.entries(message.messageAttributes).map(([name, v]) => [
        name,
        {
          dataType: v.DataType,
          stringValue: v.StringValue,
          binaryValue: v.BinaryValue,
          stringListValues: [],
          binaryListValues: [],
        },
      ]),
    ),
    md5OfBody: message.md5,
    eventSource: "aws:sqs",
    eventSourceARN: queue.arn,
    awsRegion: region,
  });

  return {
    url,
    /** Creates a queue (idempotent for the same attributes) and returns its URL. */
    createQueue(name: string, attributes?: Record<string, string>): string {
      return createQueue(name, attributes).url;
    },
    queueArn(queueUrl: string): string {
      return queueByUrl(queueUrl).arn;
    },
    /** Every message in the queue now, in flight or not, oldest first. */
    messages(queueUrl: string): QueueMessage[] {
      const now = clock.now();
      return [...queueByUrl(queueUrl).messages.values()]
        .sort((a, b) => a.sentAt - b.sentAt)
        .map((m) => {
          const state = stateOf(m, now);
          return {
            messageId: m.id,
            body: m.body,
            receiveCount: m.receiveCount,
            visible: state === "visible",
            inFlight: state === "inFlight",
            visibleAt: m.visibleAt,
            sentAt: m.sentAt,
          };
        });
    },
    /** Sends one message without going through the wire (seeding). Returns its id. */
    send(queueUrl: string, body: string, options: { delaySeconds?: number } = {}): string {
      return enqueue(queueByUrl(queueUrl), body, options.delaySeconds).MessageId;
    },
    /**
     * Receives up to `max` messages exactly as ReceiveMessage would (receive count, visibility,
     * redrive), as the records Lambda's SQS event source would hand to a handler.
     */
    receive(queueUrl: string, max = 10, options: { visibilityTimeout?: number } = {}): SQSRecord[] {
      const queue = queueByUrl(queueUrl);
      return receiveNow(queue, max, visibilityOf(queue, options.visibilityTimeout)).map((m) =>
        toRecord(queue, m),
      );
    },
    /** `{ Records: receive(...) }`: an SQSEvent for a handler. */
    event(queueUrl: string, max = 10, options: { visibilityTimeout?: number } = {}): SQSEvent {
      return { Records: this.receive(queueUrl, max, options) };
    },
    /**
     * What Lambda's event source mapping does after the handler returns: deletes every record of
     * the batch except those reported in `batchItemFailures` (all of them stay if the handler threw:
     * pass `"threw"`). Returns the ids deleted.
     */
    settle(queueUrl: string, records: SQSRecord[], response?: SQSBatchResponse | "threw"): string[] {
      if (response === "threw") return [];
      const queue = queueByUrl(queueUrl);
      const failed = new Set(
        (response ?? { batchItemFailures: [] }).batchItemFailures.map((f) => f.itemIdentifier),
      );
      const deleted: string[] = [];
      for (const record of records) {
        if (failed.has(record.messageId)) continue;
        deleteMessage(queue, record.receiptHandle);
        deleted.push(record.messageId);
      }
      return deleted;
    },
    /** Empties every queue, keeping the queues. */
    reset(): void {
      for (const queue of queues.values()) {
        for (const message of queue.messages.values()) forget(queue, message);
        queue.lastPurgeAt = undefined;
      }
    },
    async close(): Promise<void> {
      closed = true;
      unsubscribeClock();
      for (const queue of queues.values()) wake(queue);
      await server.close();
    },
  };
}
