/**
 * The SQS launch queue: the webhook and the reconciler enqueue job ids; the launcher consumes them in
 * batches and delays a message it cannot serve yet (limits, throttling) by changing its visibility.
 */
import type { LaunchMessage } from "../shared/job";
import { settings } from "../shared/settings";
import { sqs } from "./sqs";

/**
 * Enqueues launch requests, 10 per SendMessageBatch. Throws if any entry failed, naming the jobs, so
 * the caller can answer with a retryable error rather than lose a job silently.
 */
export async function enqueueLaunches(
  messages: LaunchMessage[],
  options: { queueUrl?: string; delaySeconds?: number } = {},
): Promise<void> {
  const queueUrl = options.queueUrl ?? settings().launchQueueUrl;
  for (let start = 0; start < messages.length; start += 10) {
    const chunk = messages.slice(start, start + 10);
    const { Failed } = await sqs("SendMessageBatch", {
      QueueUrl: queueUrl,
      Entries: chunk.map((message, i) => ({
        Id: String(i),
        MessageBody: JSON.stringify(message),
        DelaySeconds: options.delaySeconds,
      })),
    });
    if (Failed?.length) {
      const jobs = Failed.map((f) => chunk[Number(f.Id)]?.jobId).join(", ");
      throw new Error(`SQS refused launch messages for jobs ${jobs}: ${Failed[0]?.Code ?? "unknown"}`);
    }
  }
}

/** Hides a received message for `seconds` more (max 12 h), e.g. to back off a throttled launch. */
export async function delayMessage(
  receiptHandle: string,
  seconds: number,
  queueUrl = settings().launchQueueUrl,
) {
  await sqs("ChangeMessageVisibility", {
    QueueUrl: queueUrl,
    ReceiptHandle: receiptHandle,
    VisibilityTimeout: Math.max(0, Math.min(43_200, Math.round(seconds))),
  });
}
