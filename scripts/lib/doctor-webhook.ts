/**
 * `npm run doctor`'s webhook secret check: a round trip that proves the secret matches on both sides.
 *
 * GitHub never returns an App webhook's secret and has no "ping" endpoint for Apps (only redelivery
 * of a past delivery). So: (1) the doctor signs a `ping` event with the stack's secret and posts it to
 * the stack's webhook URL, which answers `pong` only if it verifies with that same secret: the
 * deployed webhook holds the stack's secret, and the URL is reachable; (2) GitHub's side is the
 * newest delivery the webhook judged: accepted (2xx) means GitHub signs with that secret too, refused
 * with 401 means it signs with another. A ping changes nothing in the fleet, which is why it is
 * sent rather than a past `workflow_job` redelivered.
 */
import { randomUUID } from "node:crypto";
import { sign } from "@octokit/webhooks-methods";
import { type Check, fail, pass, warn } from "./doctor-check";
import type { Delivery } from "./doctor-github";
import { formatDuration } from "./explain";

export interface PingAnswer {
  status: number;
  body: string;
}

/** Posts a `ping` signed with `secret` to the webhook, as GitHub would. */
export async function pingWebhook(url: string, secret: string, fetchImpl: typeof fetch): Promise<PingAnswer> {
  const body = JSON.stringify({ zen: "Checked by npm run doctor.", hook_id: 0 });
  const response = await fetchImpl(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "user-agent": "runner-fleet-doctor",
      "x-github-event": "ping",
      "x-github-delivery": randomUUID(),
      "x-hub-signature-256": await sign(secret, body),
    },
    body,
    signal: AbortSignal.timeout(30_000),
  });
  return { status: response.status, body: (await response.text()).slice(0, 300) };
}

const isPong = (answer: PingAnswer) => {
  try {
    return answer.status === 200 && (JSON.parse(answer.body) as { status?: string }).status === "pong";
  } catch {
    return false;
  }
};

/** The webhook's side: it verifies the stack's secret. Undefined when it does. */
function webhookSide(answer: PingAnswer | Error, url: string, logs: string): Check | undefined {
  const name = "webhook secret";
  if (answer instanceof Error)
    return fail(
      name,
      `cannot reach ${url}: ${answer.message}`,
      "check `pulumi stack output webhookUrl` and this machine's network",
    );
  if (answer.status === 401)
    return fail(
      name,
      "the deployed webhook refuses a ping signed with the stack's secret",
      "run `pulumi up`: the webhook's secret parameter is not the stack's current secret",
    );
  if (!isPong(answer))
    return fail(
      name,
      `the webhook answered HTTP ${answer.status} to a signed ping: ${answer.body}`,
      `see its log: ${logs}`,
    );
  return undefined;
}

/**
 * Both sides of the secret; `deliveries` (newest first) is GitHub's record, or undefined where the
 * tool cannot read it (token mode).
 */
export function secretCheck(
  answer: PingAnswer | Error,
  deliveries: Delivery[] | undefined,
  context: { webhookUrl: string; prefix: string; now: Date },
): Check {
  const name = "webhook secret";
  const logs = `aws logs tail /aws/lambda/${context.prefix}-webhook --since 1h`;
  const refused = webhookSide(answer, context.webhookUrl, logs);
  if (refused) return refused;
  const ours = "the webhook verifies the stack's secret (a signed ping answered pong)";
  if (!deliveries) return pass(name, ours);
  // The newest delivery the webhook judged: a 2xx (verified) or a 401 (refused); 5xx and network
  // failures say nothing about the signature.
  const judged = deliveries.find(
    (d) => (d.status_code >= 200 && d.status_code < 300) || d.status_code === 401,
  );
  if (!judged)
    return warn(
      name,
      `${ours}; GitHub's own signature is not proven yet: no delivery has reached it`,
      "the next delivery proves it; `npm run setup:github-app -- set-webhook` sets the stack's secret on the App again",
    );
  const when = `${formatDuration((context.now.getTime() - Date.parse(judged.delivered_at)) / 1000)} ago`;
  if (judged.status_code === 401)
    return fail(
      name,
      `GitHub signs with another secret: its latest delivery (${judged.event}, ${when}) was refused with 401`,
      "npm run setup:github-app -- set-webhook",
    );
  return pass(name, `${ours} and accepted GitHub's latest signed delivery (${judged.event}, ${when})`);
}
