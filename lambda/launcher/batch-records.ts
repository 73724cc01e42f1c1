/**
 * A launch message as it goes through the launcher's steps, and what becomes of it. Each step returns
 * the records it finished (`Settled`) and passes the rest on; the entry (index.ts) turns the records
 * every step settled into the batch response, once.
 *
 * Why not Powertools' batch utility (@aws-lambda-powertools/batch): it hands each record to a
 * handler on its own and records that record's success or failure. The launcher's work is across
 * records: one limits check and one GitHub budget grant for the batch, one CreateFleet for every job
 * of a label config, and a failed record comes back after a delay of its own (ChangeMessageVisibility)
 * rather than the queue's visibility timeout. A per-record handler would only wrap these results.
 */
import type { SQSRecord } from "aws-lambda";
import type { JobRecord, LaunchMessage } from "../shared/job";
import type { LabelConfig } from "../shared/label-config";

/** DynamoDB and EC2 calls in flight per invocation. */
export const IO_CONCURRENCY = 16;

/** What becomes of one message: acknowledged, or back to the queue after a delay. */
export type Outcome = { kind: "done" } | { kind: "retry"; delaySeconds: number };

/** A record a step finished with, and its outcome. */
export interface Settled {
  record: SQSRecord;
  outcome: Outcome;
}

/** One message per job (the entry drops malformed messages and duplicates). */
export interface LaunchEntry {
  record: SQSRecord;
  message: LaunchMessage;
}

/** An entry whose job is queued and may launch: its job item and label config. */
export interface Candidate extends LaunchEntry {
  job: JobRecord;
  config: LabelConfig;
}

/** The records a step finished, and the candidates it passes on. */
export interface StepResult {
  settled: Settled[];
  next: Candidate[];
}

/** The message is acknowledged: its job launched, ended, or is someone else's. */
export const done = (entry: { record: SQSRecord }): Settled => ({
  record: entry.record,
  outcome: { kind: "done" },
});

/** The message comes back after `delaySeconds` for another try. */
export const retryAfter = (entry: { record: SQSRecord }, delaySeconds: number): Settled => ({
  record: entry.record,
  outcome: { kind: "retry", delaySeconds },
});

export const configOf = (c: Candidate): string => c.config.name;
