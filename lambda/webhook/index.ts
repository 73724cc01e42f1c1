/**
 * The webhook Lambda (API Gateway HTTP API, payload 2.0): reads a GitHub `workflow_job` delivery
 * off the event, hands it to the use case (record-delivery.ts: verify, route, record, enqueue), and
 * answers with its outcome in milliseconds (core/webhook-response.ts), logged and counted.
 */
import { Buffer } from "node:buffer";
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import { METRIC_OF, type Outcome, statusCodeOf, toResponse } from "../core/webhook-response";
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
  const body = event.isBase64Encoded
    ? Buffer.from(event.body ?? "", "base64").toString("utf8")
    : (event.body ?? "");
  if (!body) return { status: "rejected", code: 401, reason: "empty body cannot be verified" };
  return recordDelivery({
    body,
    signature,
    event: headers["x-github-event"],
    deliveryId: headers["x-github-delivery"],
  });
}

/** API Gateway v2 lower-cases header names; other sources may not. */
function lowerCaseKeys(headers: APIGatewayProxyEventV2["headers"] | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value !== undefined) result[name.toLowerCase()] = value;
  }
  return result;
}
