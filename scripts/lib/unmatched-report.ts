/**
 * `npm run status`'s view of the deliveries whose labels matched no label config (recorded by the
 * webhook for a day): each with the config it most likely meant and how its labels differ, so a
 * mistyped `runs-on` label is visible instead of a job that waits on GitHub for no stated reason.
 */
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { dynamodb } from "../../lambda/adapters/dynamodb";
import type { UnmatchedDelivery } from "../../lambda/adapters/unmatched-deliveries";
import {
  describeSuggestion,
  type LabelSuggestion,
  suggestLabelConfig,
} from "../../lambda/core/label-suggestion";
import type { LabelRoute } from "../../lambda/shared/label-config";
import { UNMATCHED_PREFIX } from "../../lambda/shared/reserved-keys";
import { REQUIRED_LABEL } from "../../src/config/schema";
import { formatDuration } from "./explain";

export interface UnmatchedLine extends UnmatchedDelivery {
  ageSeconds: number;
  /** Undefined when the stack's label configs were not read. */
  suggestion?: LabelSuggestion;
}

export function unmatchedLines(
  deliveries: UnmatchedDelivery[],
  routes: readonly LabelRoute[] | undefined,
  now: Date,
): UnmatchedLine[] {
  return deliveries.map((delivery) => ({
    ...delivery,
    ageSeconds: Math.max(0, Math.round((now.getTime() - Date.parse(delivery.deliveredAt)) / 1000)),
    ...(routes ? { suggestion: suggestLabelConfig(delivery.labels, routes, REQUIRED_LABEL) } : {}),
  }));
}

/** One delivery: what it asked for, the closest config, where to see it on GitHub. */
export function describeUnmatched(line: UnmatchedLine): string[] {
  return [
    `${line.jobId} ${line.repo} ${formatDuration(line.ageSeconds)} ago: runs-on [${line.labels.join(", ")}] matched no label config`,
    `  ${suggestionText(line)}`,
    ...((line.jobUrl ?? line.runUrl) ? [`  ${line.jobUrl ?? line.runUrl}`] : []),
  ];
}

function suggestionText(line: UnmatchedLine): string {
  return !("suggestion" in line)
    ? "closest config: unknown (the stack's label configs were not read)"
    : describeSuggestion(line.suggestion);
}

export function renderUnmatched(lines: UnmatchedLine[]): string[] {
  const out = ["deliveries that matched no label config (kept 24 h):"];
  if (lines.length === 0) out.push("  none");
  for (const line of lines) out.push(...describeUnmatched(line).map((text) => `  ${text}`));
  return out;
}

/**
 * The unexpired unmatched deliveries, newest first (at most `limit`). A Scan, filtered by key prefix:
 * the items are in no index by design, and only the operator's `npm run status` reads them.
 */
export async function listUnmatchedDeliveries(
  table: string,
  now = new Date(),
  limit = 50,
): Promise<UnmatchedDelivery[]> {
  const found: UnmatchedDelivery[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamodb("Scan", {
      TableName: table,
      FilterExpression: "begins_with(jobId, :prefix) AND expiresAt > :now",
      ExpressionAttributeValues: marshall({
        ":prefix": UNMATCHED_PREFIX,
        ":now": Math.floor(now.getTime() / 1000),
      }),
      ExclusiveStartKey: start as never,
    });
    for (const raw of page.Items ?? []) {
      const {
        jobId,
        expiresAt: _ttl,
        ...rest
      } = unmarshall(raw) as UnmatchedDelivery & { expiresAt: number };
      found.push({ ...rest, jobId: jobId.slice(UNMATCHED_PREFIX.length) });
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return found.sort((a, b) => b.deliveredAt.localeCompare(a.deliveredAt)).slice(0, limit);
}
