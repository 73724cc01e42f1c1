/**
 * The jobs table's items for `queued` deliveries whose labels matched no label config (reserved keys
 * `#unmatched#<job id>`, shared/reserved-keys.ts), kept a day for `npm run status`. The webhook
 * writes them; listing them (a Scan) is the operator tool's, in scripts/lib/unmatched-report.ts, so
 * the webhook's role needs no Scan.
 */
import { marshall } from "@aws-sdk/util-dynamodb";
import { RESERVED_KEYS } from "../shared/reserved-keys";
import { settings } from "../shared/settings";
import { dynamodb, getItem, marshallOptions } from "./dynamodb";

/** A `workflow_job` delivery whose labels matched no label config. */
export interface UnmatchedDelivery {
  jobId: string;
  /** The job's `runs-on` labels as GitHub sent them. */
  labels: string[];
  owner: string;
  /** `owner/name`. */
  repo: string;
  /** The run's and the job's pages on GitHub. */
  runUrl?: string;
  jobUrl?: string;
  deliveredAt: string;
  deliveryId?: string;
}

/** Long enough for the on-call to see it, short enough that the table never gathers them. */
export const UNMATCHED_TTL_SECONDS = 24 * 3600;
// The payload is the sender's: every field is cut to size, so an item stays a few hundred bytes.
const MAX_LABELS = 20;
const MAX_TEXT = 256;
const MAX_URL = 512;

const cut = (text: string | undefined, max: number) => (text === undefined ? undefined : text.slice(0, max));

/**
 * Records a delivery that matched no config (the webhook answered "ignored"), under
 * `#unmatched#<job id>` for UNMATCHED_TTL_SECONDS: a later delivery of the same job replaces it. No
 * `state`: it is in no index, so nothing that reads jobs ever sees it.
 */
export async function recordUnmatchedDelivery(
  delivery: UnmatchedDelivery,
  table = settings().jobsTable,
): Promise<void> {
  const deliveredAt = Date.parse(delivery.deliveredAt);
  const at = Number.isNaN(deliveredAt) ? Date.now() : deliveredAt;
  const item = {
    jobId: RESERVED_KEYS.unmatched(delivery.jobId.slice(0, 40)),
    labels: delivery.labels.slice(0, MAX_LABELS).map((label) => label.slice(0, 100)),
    owner: cut(delivery.owner, MAX_TEXT),
    repo: cut(delivery.repo, MAX_TEXT),
    runUrl: cut(delivery.runUrl, MAX_URL),
    jobUrl: cut(delivery.jobUrl, MAX_URL),
    deliveredAt: new Date(at).toISOString(),
    deliveryId: cut(delivery.deliveryId, 100),
    expiresAt: Math.floor(at / 1000) + UNMATCHED_TTL_SECONDS,
  };
  await dynamodb("PutItem", { TableName: table, Item: marshall(item, marshallOptions) });
}

/** One job's unmatched delivery, if one was recorded and has not expired. */
export async function getUnmatchedDelivery(
  jobId: string,
  table = settings().jobsTable,
  now = new Date(),
): Promise<UnmatchedDelivery | undefined> {
  const item = await getItem<UnmatchedDelivery & { expiresAt: number }>(table, {
    jobId: RESERVED_KEYS.unmatched(jobId),
  });
  if (!item || item.expiresAt * 1000 <= now.getTime()) return undefined;
  const { expiresAt: _ttl, ...delivery } = item;
  return { ...delivery, jobId };
}
