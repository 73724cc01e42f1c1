/**
 * The launcher's market overrides: which jobs of a batch must launch on-demand whatever their
 * config's spot policy says. Reads the spot breaker and re-run markers (adapters/reserved-items.ts)
 * and decides with core/lifecycle.ts marketOverride.
 */

import { getBreaker, getRetryMarker } from "../adapters/reserved-items";
import { marketOverride, type RetryMarker } from "../core/lifecycle";
import type { JobRecord, Market } from "../shared/job";
import type { LabelConfig } from "../shared/label-config";
import { settings } from "../shared/settings";

/**
 * For the launcher, before it builds a fleet request for `jobs` of `config`: the jobs that must launch
 * on-demand whatever the config's spot policy says (a re-run of an interrupted job; every job of a
 * spotPreferred config while its spot breaker is open), with the reason to record. One read of the
 * config's breaker, and one marker read per re-run workflow run (first attempts are never re-runs).
 */
export async function launchMarketOverrides(
  jobs: Pick<JobRecord, "jobId" | "repo" | "runId" | "runAttempt" | "configName">[],
  config: Pick<LabelConfig, "name" | "spotPolicy">,
  now: Date = new Date(),
  table = settings().jobsTable,
): Promise<Map<string, { market: Market; reason: string }>> {
  const overrides = new Map<string, { market: Market; reason: string }>();
  if (config.spotPolicy === "onDemandOnly" || jobs.length === 0) return overrides;
  const breaker = config.spotPolicy === "spotPreferred" ? await getBreaker(config.name, table) : undefined;
  const markers = new Map<string, Promise<RetryMarker | undefined>>();
  for (const job of jobs) {
    const runKey = `${job.repo}#${job.runId}`;
    if ((job.runAttempt ?? 1) > 1 && !markers.has(runKey))
      markers.set(runKey, getRetryMarker(job.repo, job.runId, table));
  }
  for (const job of jobs) {
    const retry = await markers.get(`${job.repo}#${job.runId}`);
    const override = marketOverride({ job, config, breaker, retry, now });
    if (override) overrides.set(job.jobId, override);
  }
  return overrides;
}
