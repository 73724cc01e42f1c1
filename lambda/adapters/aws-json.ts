/**
 * AWS's JSON protocol (awsJson1_0 / awsJson1_1), spoken directly: how the Lambdas call DynamoDB, SQS
 * and SSM. Each call is one POST of the operation's input as JSON with an `X-Amz-Target` header, the
 * request the SDK client would send, signed with the SDK's own SigV4 signer and credential chain,
 * and retried by the SDK's own standard retry strategy and error classification. Errors get the
 * SDK's names (SQS: from the query code in `x-amzn-query-error`); the User-Agent names runner-fleet.
 *
 * Why not the SDK clients: the webhook must answer its first delivery within its cold-start budget
 * (docs/performance.md), and a client's runtime (schemas, middleware stack, endpoint rule set) costs
 * more CPU on first use than the webhook's whole handler. For these three services the request is
 * the input as JSON and the answer is the output as JSON, so the SDK's types still describe both:
 * inputs and outputs here are the SDK's `…Input`/`…Output` shapes (blob members would be base64 and
 * timestamps epoch seconds on the wire; nothing here sends or reads either). EC2 (XML) keeps its
 * SDK client.
 *
 * What the SDK would add and these services do not need here: endpoint discovery, FIPS/dual-stack
 * endpoints (set AWS_ENDPOINT_URL_<SERVICE> for those), clock-skew correction (Lambda's clock is
 * synchronized), response CRC32 checks (TLS covers integrity).
 */
import { createHash, createHmac } from "node:crypto";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";
import { platform, release } from "node:os";
import { defaultProvider } from "@aws-sdk/credential-provider-node";
import {
  isServerError,
  isThrottlingError,
  isTransientError,
  StandardRetryStrategy,
} from "@smithy/core/retry";
import { SignatureV4 } from "@smithy/signature-v4";
import type { AwsCredentialIdentityProvider, RetryErrorType } from "@smithy/types";
import { version } from "../../package.json";
import { settings } from "../shared/settings";

/** One JSON-protocol service: how it is signed, addressed and targeted. */
export interface JsonServiceSpec {
  /** SigV4 service name and the AWS_ENDPOINT_URL_<SERVICE> suffix, e.g. "dynamodb". */
  signingName: string;
  /** X-Amz-Target prefix, e.g. "DynamoDB_20120810". */
  targetPrefix: string;
  jsonVersion: "1.0" | "1.1";
  /**
   * Extra headers the SDK sends for this service. SQS's `x-amzn-query-mode: true` marks it
   * awsQueryCompatible, as the SDK marks it: its errors are then named as the SDK names them.
   */
  headers?: Record<string, string>;
}

/** Operation name → [input, output], from the SDK's own model types. */
export type OperationMap = Record<string, [object, object]>;

export type JsonServiceCall<Ops extends OperationMap> = <Op extends keyof Ops & string>(
  operation: Op,
  input: Ops[Op][0],
) => Promise<Ops[Op][1]>;

/**
 * An error answer, shaped like the SDK's service exceptions: `name` is the error code (e.g.
 * ConditionalCheckFailedException), `$metadata.httpStatusCode` the status. Error members of the
 * answer (DynamoDB's `Item` on a failed condition, say) are kept on the error.
 */
export class AwsServiceError extends Error {
  readonly $metadata: { httpStatusCode: number; requestId?: string };
  readonly $fault: "client" | "server";
  [member: string]: unknown;

  constructor(code: string, message: string, status: number, members: Record<string, unknown> = {}) {
    super(message);
    Object.assign(this, members);
    this.name = code;
    this.$metadata = { httpStatusCode: status, requestId: members.requestId as string | undefined };
    this.$fault = status >= 500 ? "server" : "client";
  }
}

/** Whether `error` is the service error `code` (an SDK error or an AwsServiceError alike). */
export function isServiceError(error: unknown, code: string): boolean {
  return error instanceof Error && error.name === code;
}

/**
 * The awsQueryCompatible services' modelled errors whose query code is not their name: code → the
 * error's name, as the SDK finds it (the error shape whose awsQueryError trait has that code). From
 * @aws-sdk/client-sqs's model; test/aws-json.test.ts checks every SQS error against the SDK, and the
 * sandbox's SQS fake answers with these codes.
 */
export const QUERY_ERROR_NAMES: Record<string, Record<string, string>> = {
  sqs: {
    "AWS.SimpleQueueService.BatchEntryIdsNotDistinct": "BatchEntryIdsNotDistinct",
    "AWS.SimpleQueueService.BatchRequestTooLong": "BatchRequestTooLong",
    "AWS.SimpleQueueService.EmptyBatchRequest": "EmptyBatchRequest",
    "AWS.SimpleQueueService.InvalidBatchEntryId": "InvalidBatchEntryId",
    "AWS.SimpleQueueService.MessageNotInflight": "MessageNotInflight",
    "AWS.SimpleQueueService.NonExistentQueue": "QueueDoesNotExist",
    "AWS.SimpleQueueService.PurgeQueueInProgress": "PurgeQueueInProgress",
    "AWS.SimpleQueueService.QueueDeletedRecently": "QueueDeletedRecently",
    "AWS.SimpleQueueService.TooManyEntriesInBatchRequest": "TooManyEntriesInBatchRequest",
    "AWS.SimpleQueueService.UnsupportedOperation": "UnsupportedOperation",
    "KMS.AccessDeniedException": "KmsAccessDenied",
    "KMS.DisabledException": "KmsDisabled",
    "KMS.InvalidKeyUsageException": "KmsInvalidKeyUsage",
    "KMS.InvalidStateException": "KmsInvalidState",
    "KMS.NotFoundException": "KmsNotFound",
    "KMS.OptInRequired": "KmsOptInRequired",
    "KMS.ThrottlingException": "KmsThrottled",
    QueueAlreadyExists: "QueueNameExists",
  },
};

/** The SDK's standard mode: 3 attempts, jittered backoff, a shared retry quota per process. */
const retryStrategy = new StandardRetryStrategy(3);
const TIMEOUT_MS = 10_000;

// The SDK's default credential chain. In the Lambda bundles it is only the environment provider
// (scripts/build-lambdas.mjs): Lambda hands a function its role's credentials there. The operator
// scripts that reuse these adapters get the whole chain (profiles, SSO), refreshed as it expires.
let credentials: AwsCredentialIdentityProvider | undefined;
const signers = new Map<string, SignatureV4>();

/** A function that calls `spec`'s operations; see the module comment. */
export function jsonService<Ops extends OperationMap>(spec: JsonServiceSpec): JsonServiceCall<Ops> {
  return async (operation, input) => {
    const body = JSON.stringify(input);
    let token = await retryStrategy.acquireInitialRetryToken(spec.signingName);
    for (;;) {
      try {
        const output = await callOnce(spec, operation, body);
        retryStrategy.recordSuccess(token);
        return output as Ops[typeof operation][1];
      } catch (error) {
        const errorType = retryErrorType(error as Error);
        // Throws the original error when the strategy has no retry left for it.
        token = await retryStrategy
          .refreshRetryTokenForRetry(token, { errorType })
          .catch(() => Promise.reject(error));
      }
    }
  };
}

/** How the SDK's retry middleware classifies an error for its strategy. */
function retryErrorType(error: Error): RetryErrorType {
  const e = error as Parameters<typeof isThrottlingError>[0];
  if (isThrottlingError(e)) return "THROTTLING";
  if (isTransientError(e)) return "TRANSIENT";
  if (isServerError(e)) return "SERVER_ERROR";
  return "CLIENT_ERROR";
}

/** The endpoint the SDK would use: AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL, else regional. */
function endpointOf(spec: JsonServiceSpec): URL {
  const s = settings();
  const override = s.awsEndpointUrl(spec.signingName);
  if (override) return new URL(override);
  const region = s.awsRegion;
  return new URL(
    `https://${spec.signingName}.${region}.amazonaws.com${region.startsWith("cn-") ? ".cn" : ""}`,
  );
}

async function callOnce(spec: JsonServiceSpec, operation: string, body: string): Promise<unknown> {
  const url = endpointOf(spec);
  let signer = signers.get(spec.signingName);
  if (!signer) {
    credentials ??= defaultProvider();
    signer = new SignatureV4({
      service: spec.signingName,
      region: settings().awsRegion,
      credentials,
      sha256: Sha256,
    });
    signers.set(spec.signingName, signer);
  }
  const signed = await signer.sign({
    method: "POST",
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    path: url.pathname,
    query: {},
    headers: {
      host: url.host,
      "content-type": `application/x-amz-json-${spec.jsonVersion}`,
      "x-amz-target": `${spec.targetPrefix}.${operation}`,
      "content-length": String(Buffer.byteLength(body)),
      ...userAgentHeaders(spec.signingName),
      ...spec.headers,
    },
    body,
  });
  const answer = await post(url, signed.headers, body, `${spec.targetPrefix}.${operation}`);
  let parsed: Record<string, unknown> = {};
  try {
    const json: unknown = answer.text ? JSON.parse(answer.text) : {};
    if (json && typeof json === "object") parsed = json as Record<string, unknown>;
  } catch {
    // Not JSON: an error page from something in between; the status still tells what happened.
  }
  if (answer.status >= 200 && answer.status < 300) return parsed;
  throw serviceError(spec, operation, answer.status, answer.headers, parsed);
}

/** An error answer as the SDK's error (@aws-sdk/core's AwsJsonRpcProtocol.handleError, sans schemas). */
function serviceError(
  spec: JsonServiceSpec,
  operation: string,
  status: number,
  headers: IncomingHttpHeaders,
  parsed: Record<string, unknown>,
): AwsServiceError {
  const { __type, message, Message, ...members } = parsed;
  const queryNames =
    spec.headers?.["x-amzn-query-mode"] === "true" ? QUERY_ERROR_NAMES[spec.signingName] : undefined;
  // An awsQueryCompatible service names the query code and fault in `x-amzn-query-error:
  // Code;Sender`; the SDK sets them on the body as Code and Type, before looking for a code.
  const queryError = queryNames && headerValue(headers, "x-amzn-query-error");
  if (queryError) [members.Code, members.Type] = queryError.split(";");
  const codeKey = Object.keys(members).find((key) => key.toLowerCase() === "code");
  const bodyCode = codeKey && members[codeKey];
  const errorType = headerValue(headers, "x-amzn-errortype");
  // Where the SDK looks, in its order: the body's `__type`, its `code` (any case), X-Amzn-ErrorType;
  // query-compatible: the code first. "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
  // or "ThrottlingException:http://…" → the name alone.
  const places = queryNames ? [bodyCode, errorType, __type] : [__type, bodyCode, errorType];
  const raw = places.find((v): v is string => typeof v === "string" && v !== "");
  const code = raw === undefined ? undefined : raw.split(",")[0]!.split(":")[0]!.split("#").pop();
  const name = code ? (queryNames?.[code] ?? code) : `HTTP${status}`;
  delete members.code;
  const errorMessage = (message ?? Message ?? `${operation} answered HTTP ${status}`) as string;
  return new AwsServiceError(name, errorMessage, status, {
    ...members,
    requestId: headerValue(headers, "x-amzn-requestid"),
  });
}

const headerValue = (headers: IncomingHttpHeaders, name: string) =>
  typeof headers[name] === "string" ? (headers[name] as string) : undefined;

/**
 * Who calls, in the SDK's user-agent format (ua/2.1): runner-fleet's own client, not the SDK, so that
 * AWS's logs and CloudTrail tell the two apart. Like the SDK, x-amz-user-agent carries the first part.
 */
function userAgentHeaders(service: string): Record<string, string> {
  const client = `runner-fleet/${version}`;
  const os = `${platform()}#${release()}`.replace(/[^!$%&'*+\-.^_`|~\w#]/g, "-");
  return {
    "user-agent": `${client} ua/2.1 os/${os} lang/js md/nodejs#${process.versions.node} api/${service} lib/aws-json`,
    "x-amz-user-agent": client,
  };
}

function post(
  url: URL,
  headers: Record<string, string>,
  body: string,
  target: string,
): Promise<{ status: number; text: string; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === "http:" ? httpRequest : httpsRequest;
    // Node's global agents keep connections alive, so a warm Lambda reuses its TLS session.
    const req = send(url, { method: "POST", headers, timeout: TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          text: Buffer.concat(chunks).toString("utf8"),
          headers: res.headers,
        }),
      );
      res.on("error", reject);
    });
    req.on("timeout", () =>
      req.destroy(
        Object.assign(new Error(`${target} timed out after ${TIMEOUT_MS} ms`), { code: "ETIMEDOUT" }),
      ),
    );
    req.on("error", reject);
    req.end(body);
  });
}

type Data = string | ArrayBuffer | ArrayBufferView;
const bytes = (data: Data) =>
  typeof data === "string"
    ? Buffer.from(data)
    : ArrayBuffer.isView(data)
      ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
      : Buffer.from(data);

/** SHA-256 / HMAC-SHA-256 for the signer, from node:crypto. */
class Sha256 {
  private hash;
  constructor(private readonly secret?: Data) {
    this.hash = this.fresh();
  }
  private fresh() {
    return this.secret === undefined ? createHash("sha256") : createHmac("sha256", bytes(this.secret));
  }
  update(data: Data): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {
    this.hash = this.fresh();
  }
}
