/**
 * Launcher Lambda (SQS launch queue → EC2 + GitHub), with partial batch responses: parses the
 * batch's messages, launches their jobs (launch-batch.ts, where the steps and crash points are
 * described), and answers with the messages to try again, each delayed as its step decided.
 */
import type { SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import pMap from "p-map";
import { delayMessage } from "../adapters/launch-queue";
import type { LaunchMessage } from "../shared/job";
import { logger, metrics } from "../shared/telemetry";
import { IO_CONCURRENCY, type LaunchEntry, type Settled } from "./batch-records";
import { shareGitHubHolds } from "./github-grants";
import { launchBatch } from "./launch-batch";

shareGitHubHolds();

export async function handler(event: SQSEvent): Promise<SQSBatchResponse> {
  let settled: Settled[];
  try {
    settled = await launchBatch(entriesOf(event.Records));
  } finally {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  }
  // A message no step settled (malformed, a duplicate) is acknowledged like a done one.
  const retries = settled.flatMap(({ record, outcome }) =>
    outcome.kind === "retry" ? [{ record, delaySeconds: outcome.delaySeconds }] : [],
  );
  await pMap(
    retries,
    async ({ record, delaySeconds }) => {
      try {
        await delayMessage(record.receiptHandle, delaySeconds);
      } catch (error) {
        // The message still comes back, after the queue's visibility timeout.
        logger.warn("could not delay a launch message", {
          messageId: record.messageId,
          error: String(error),
        });
      }
    },
    { concurrency: IO_CONCURRENCY },
  );
  const retried = new Set(retries.map((r) => r.record.messageId));
  return {
    batchItemFailures: event.Records.filter((r) => retried.has(r.messageId)).map((r) => ({
      itemIdentifier: r.messageId,
    })),
  };
}

/** One entry per job: a duplicate message is acknowledged (its job is handled once), a malformed one dropped. */
function entriesOf(records: SQSRecord[]): LaunchEntry[] {
  const entries: LaunchEntry[] = [];
  const seen = new Set<string>();
  for (const record of records) {
    const message = parseMessage(record.body);
    if (!message) logger.error("dropping a malformed launch message", { messageId: record.messageId });
    else if (!seen.has(message.jobId)) {
      seen.add(message.jobId);
      entries.push({ record, message });
    }
  }
  return entries;
}

function parseMessage(body: string): LaunchMessage | undefined {
  try {
    const value = JSON.parse(body) as Partial<LaunchMessage>;
    if (typeof value.jobId === "string" && typeof value.configName === "string") {
      return { jobId: value.jobId, configName: value.configName };
    }
  } catch {
    // fall through
  }
  return undefined;
}
