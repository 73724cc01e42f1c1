/**
 * The webhook Lambda (API Gateway HTTP API, payload 2.0): reads a GitHub `workflow_job` delivery
 * off the event, hands it to the use case (record-delivery.ts: verify, route, record, enqueue), and
 * answers with its outcome in milliseconds (core/webhook-response.ts), logged and counted.
 */
import { Buffer } from "node:buffer";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { METRIC_OF, type Outcome, statusCodeOf, toResponse } from "../core/webhook-response";
import { MAX_BODY_BYTES } from "../core/workflow-job-payload";
import { logger, MetricUnit, metrics } from "../shared/telemetry";
import { recordDelivery } from "./record-delivery";

const SIGNATURE = /^sha256=[0-9a-f]{64}$/;

export async function handler(
  event: APIGatewayProxyEventV2,
  context?: Context,
): Promise<APIGatewayProxyStructuredResultV2> {
  const started = Date.now();
  if (context) logger.addContext(context);
  const headers = lowerCaseKeys(event.headers);
  logger.appendKeys({ deliveryId: headers["x-github-delivery"], githubEvent: headers["x-github-event"] });
  let outcome: Outcome;
  try {
    outcome = await receive(event, headers);
  } catch (error) {
    logger.error("webhook delivery failed", error as Error);
    outcome = { status: "failed", reason: "internal error; GitHub may redeliver" };
  }
  try {
    const { status, ...details } = outcome;
    const statusCode = statusCodeOf(outcome);
    logger.info("webhook delivery", {
      outcome: status,
      ...details,
      statusCode,
      durationMs: Date.now() - started,
    });
    metrics.addMetric(METRIC_OF[status], MetricUnit.Count, 1);
    metrics.publishStoredMetrics();
  } finally {
    logger.resetKeys();
  }
  return toResponse(outcome);
}

async function receive(event: APIGatewayProxyEventV2, headers: Record<string, string>): Promise<Outcome> {
  const signature = headers["x-hub-signature-256"];
  if (!signature) return { status: "rejected", code: 401, reason: "missing X-Hub-Signature-256" };
  if (!SIGNATURE.test(signature)) return { status: "rejected", code: 401, reason: "malformed signature" };
  const bytes = boundedBody(event);
  if (!bytes) return { status: "rejected", code: 400, reason: `body larger than ${MAX_BODY_BYTES} bytes` };
  if (bytes.length === 0) return { status: "rejected", code: 401, reason: "empty body cannot be verified" };
  return recordDelivery({
    bytes,
    signature,
    event: headers["x-github-event"],
    deliveryId: headers["x-github-delivery"],
  });
}

/**
 * The body's bytes as GitHub signed them (base64-decoded when API Gateway encoded them), or undefined
 * when over MAX_BODY_BYTES: judged from the text's length first, so a huge body is neither decoded
 * nor hashed.
 */
function boundedBody(event: APIGatewayProxyEventV2): Buffer | undefined {
  const body = event.body ?? "";
  // Base64 takes 4 characters per 3 bytes; UTF-8 at least one byte per character.
  const longest = event.isBase64Encoded ? Math.ceil(MAX_BODY_BYTES / 3) * 4 : MAX_BODY_BYTES;
  if (body.length > longest) return undefined;
  const bytes = Buffer.from(body, event.isBase64Encoded ? "base64" : "utf8");
  return bytes.length > MAX_BODY_BYTES ? undefined : bytes;
}

/**
 * Header names lower-cased (API Gateway v2 does so; other sources may not). Names that differ only in
 * case are joined with a comma, as API Gateway joins a repeated header, so two signatures never pass
 * as one.
 */
function lowerCaseKeys(headers: APIGatewayProxyEventV2["headers"] | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    const key = name.toLowerCase();
    result[key] = key in result ? `${result[key]},${value}` : value;
  }
  return result;
}
