/**
 * The fleet summary of `npm run status`, pure: jobs per state and config, active runners against
 * the limits, the oldest waiting jobs (each with its explanation's main line, ./explain.ts) and the
 * recent failures.
 */
import {
  ACTIVE_STATES,
  JOB_STATES,
  type JobRecord,
  type JobState,
  queuedSince,
} from "../../lambda/shared/job";
import { explainJob, type FleetLimits, formatDuration, secondsSince } from "./explain";

export interface JobLine {
  jobId: string;
  state: JobState;
  configName: string;
  repo: string;
  ageSeconds: number;
  /** The explanation's main line (or the reason of a failure). */
  summary: string;
}

export interface FleetReport {
  generatedAt: string;
  /** Jobs per state and config, of the items read (terminal states: the newest only, see `sampled`). */
  counts: Partial<Record<JobState, Record<string, number>>>;
  /** States of which only the newest items were read: their counts are lower bounds. */
  sampled: JobState[];
  active: {
    total: number;
    limit?: number;
    byConfig: { configName: string; active: number; limit?: number }[];
  };
  /** Oldest queued and launching jobs first. */
  waiting: JobLine[];
  /** Failed and timed-out jobs, newest first. */
  recentFailures: JobLine[];
}

/** Active jobs per config from the items read (what the launcher's limits count). */
export function activeCounts(jobs: Pick<JobRecord, "state" | "configName">[]): {
  total: number;
  byConfig: Record<string, number>;
} {
  const byConfig: Record<string, number> = {};
  let total = 0;
  for (const job of jobs) {
    if (!ACTIVE_STATES.includes(job.state)) continue;
    byConfig[job.configName] = (byConfig[job.configName] ?? 0) + 1;
    total++;
  }
  return { total, byConfig };
}

export function fleetReport(
  jobs: JobRecord[],
  now: Date,
  limits: FleetLimits = {},
  options: { sampled?: JobState[]; top?: number } = {},
): FleetReport {
  const top = options.top ?? 10;
  const counts: FleetReport["counts"] = {};
  for (const job of jobs) {
    const byConfig = counts[job.state] ?? {};
    byConfig[job.configName] = (byConfig[job.configName] ?? 0) + 1;
    counts[job.state] = byConfig;
  }
  const active = limits.active ?? activeCounts(jobs);
  const withActive = { ...limits, active };
  const configNames = [
    ...new Set([...Object.keys(limits.configs ?? {}), ...Object.keys(active.byConfig)]),
  ].sort();
  const line = (job: JobRecord, since: string | undefined, summary: string): JobLine => ({
    jobId: job.jobId,
    state: job.state,
    configName: job.configName,
    repo: job.repo,
    ageSeconds: Math.round(secondsSince(since, now) ?? 0),
    summary,
  });
  const waiting = jobs
    .filter((j) => j.state === "queued" || j.state === "launching")
    .map((j) => line(j, queuedSince(j), explainJob(j, now, withActive)[1]!))
    .sort((a, b) => b.ageSeconds - a.ageSeconds)
    .slice(0, top);
  const recentFailures = jobs
    .filter((j) => j.state === "failed" || j.state === "timed-out")
    .map((j) => line(j, j.completedAt ?? j.updatedAt, j.reason ?? "no reason recorded"))
    .sort((a, b) => a.ageSeconds - b.ageSeconds)
    .slice(0, top);
  return {
    generatedAt: now.toISOString(),
    counts,
    sampled: options.sampled ?? [],
    active: {
      total: active.total,
      limit: limits.maxRunnersTotal,
      byConfig: configNames.map((configName) => ({
        configName,
        active: active.byConfig[configName] ?? 0,
        limit: limits.configs?.[configName]?.maxRunners,
      })),
    },
    waiting,
    recentFailures,
  };
}

/** The report as the terminal shows it. */
export function renderReport(report: FleetReport): string[] {
  const lines = [`runner-fleet status at ${report.generatedAt}`, "", "jobs by state:"];
  let any = false;
  for (const state of JOB_STATES) {
    const byConfig = report.counts[state];
    if (!byConfig) continue;
    any = true;
    const total = Object.values(byConfig).reduce((a, b) => a + b, 0);
    const detail = Object.entries(byConfig)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([config, n]) => `${config} ${n}`)
      .join(", ");
    const sampled = report.sampled.includes(state) ? "+ (newest only)" : "";
    lines.push(`  ${state.padEnd(12)} ${String(total)}${sampled}  (${detail})`);
  }
  if (!any) lines.push("  none");
  const limit = (n: number | undefined) => (n === undefined ? "?" : String(n));
  lines.push("", `active runners: ${report.active.total}/${limit(report.active.limit)}`);
  for (const c of report.active.byConfig) {
    const full = c.limit !== undefined && c.active >= c.limit ? "  (at its limit)" : "";
    lines.push(`  ${c.configName.padEnd(24)} ${c.active}/${limit(c.limit)}${full}`);
  }
  if (report.active.byConfig.some((c) => c.limit === undefined) || report.active.limit === undefined) {
    lines.push("  (? = limit unknown: the stack config was not read)");
  }
  lines.push("", "oldest waiting jobs:");
  if (report.waiting.length === 0) lines.push("  none");
  for (const j of report.waiting) {
    // A queued job's summary starts with its age; a launching one's with the launch's.
    const age = j.state === "queued" ? "" : ` queued ${formatDuration(j.ageSeconds)} ago,`;
    lines.push(`  ${j.jobId} ${j.repo} [${j.configName}]:${age} ${j.summary}`);
  }
  lines.push("", "recent failures:");
  if (report.recentFailures.length === 0) lines.push("  none");
  for (const j of report.recentFailures) {
    lines.push(
      `  ${j.jobId} ${j.repo} [${j.configName}] ${j.state} ${formatDuration(j.ageSeconds)} ago: ${j.summary}`,
    );
  }
  return lines;
}
