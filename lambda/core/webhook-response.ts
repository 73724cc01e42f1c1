/**
 * What the webhook answers GitHub, per outcome. Any 2xx tells GitHub the delivery succeeded; a 5xx
 * marks it failed so it can be redelivered, which is why only our own failures answer 5xx. The body
 * names the outcome for whoever reads the delivery log in GitHub's UI; it never echoes the request
 * (what an outcome quotes of it, e.g. a job's labels, goes in `logged`: our log only).
 */
import type { APIGatewayProxyStructuredResultV2 } from "aws-lambda";

export type Outcome =
  /** 401: missing or wrong signature. 400: a signed body that is not a valid event. */
  | { status: "rejected"; code: 400 | 401; reason: string }
  | { status: "pong" }
  | { status: "ignored"; reason: string; logged?: Record<string, unknown> }
  /** A signed delivery for an owner, repository, host or installation this stack does not serve. */
  | { status: "not-served"; reason: string }
  /** The job was recorded and its launch enqueued. */
  | { status: "accepted"; jobId: string; configName: string; reason?: string }
  /** A state change or a note on the job was recorded. */
  | { status: "recorded"; jobId: string; reason?: string }
  /** Nothing to change: a redelivery, a duplicate, or news older than what the job already knows. */
  | { status: "duplicate"; jobId: string; reason: string }
  /** 503: an App-mode stack whose App is not set up yet cannot launch; the delivery stays failed, for redelivery. */
  | { status: "unavailable"; reason: string }
  /** Our side failed (SSM, DynamoDB, SQS, settings): GitHub should mark the delivery failed. */
  | { status: "failed"; reason: string };

/** The EMF metric (count, namespace RunnerFleet) each delivery adds, by outcome. */
export const METRIC_OF: Record<Outcome["status"], string> = {
  accepted: "WebhookAccepted",
  recorded: "WebhookRecorded",
  duplicate: "WebhookDuplicate",
  ignored: "WebhookIgnored",
  "not-served": "WebhookNotServed",
  pong: "WebhookPing",
  rejected: "WebhookRejected",
  unavailable: "WebhookUnavailable",
  failed: "WebhookFailed",
};

export function statusCodeOf(outcome: Outcome): number {
  switch (outcome.status) {
    case "rejected":
      return outcome.code;
    case "pong":
    case "recorded":
    case "duplicate":
      return 200;
    case "ignored":
    case "not-served":
    case "accepted": // the launch itself happens later, from the queue
      return 202;
    case "unavailable":
      return 503;
    case "failed":
      return 500;
  }
}

export function toResponse(outcome: Outcome): APIGatewayProxyStructuredResultV2 {
  const { code: _code, logged: _logged, ...body } = outcome as Outcome & { code?: number; logged?: unknown };
  return {
    statusCode: statusCodeOf(outcome),
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  };
}
