/**
 * `npm run status`: reads the jobs ledger (and the hand-off reports) with the Lambdas' own adapters
 * and prints the fleet summary or one job explained (./explain.ts). The CLI is scripts/fleet-status.ts.
 */
import { listHandoffReports } from "../../lambda/adapters/handoff";
import { listActiveJobs, listJobsByState } from "../../lambda/adapters/job-queries";
import { getJob } from "../../lambda/adapters/jobs-table";
import { JOB_STATES, type JobRecord, type JobState, TERMINAL_STATES } from "../../lambda/shared/job";
import { stackConfigSchema } from "../../src/config/schema";
import {
  activeCounts,
  explainJob,
  type FleetLimits,
  fleetReport,
  type HandoffLookup,
  renderReport,
} from "./explain";
import { PROJECT, type Pulumi } from "./pulumi";

export interface StatusSources {
  jobsTable: string;
  /** Without it, hand-off reports are not read (and the explanation says so). */
  handoffTable?: string;
  /** Limits from the stack config (without the active counts, which are read from the ledger). */
  limits: FleetLimits;
  /** What could not be resolved, said on the output. */
  notes: string[];
}

/** Of the terminal states (kept for the TTL, 30 days by default), only the newest items are read. */
export const TERMINAL_SAMPLE = 200;

/** Every non-terminal job, and the newest terminal ones. */
export async function readJobs(table: string): Promise<{ jobs: JobRecord[]; sampled: JobState[] }> {
  const sampled: JobState[] = [];
  const lists = await Promise.all(
    JOB_STATES.map(async (state) => {
      if (!TERMINAL_STATES.includes(state)) return listJobsByState(state, { table, limit: 100_000 });
      const newest = await listJobsByState(state, { table, limit: TERMINAL_SAMPLE, newestFirst: true });
      if (newest.length >= TERMINAL_SAMPLE) sampled.push(state);
      return newest;
    }),
  );
  return { jobs: lists.flat(), sampled };
}

/** The stack config's limits and label configs, with the schema's defaults (what the program deploys). */
export function limitsFromConfig(
  config: Record<string, { value?: string; objectValue?: unknown }>,
): FleetLimits {
  const read = (name: string): unknown => {
    const entry = config[`${PROJECT}:${name}`];
    if (!entry) return undefined;
    if (entry.objectValue !== undefined) return entry.objectValue;
    return entry.value === undefined ? undefined : JSON.parse(entry.value);
  };
  const limits = stackConfigSchema.shape.limits.parse(read("limits") ?? {});
  const labelConfigs = stackConfigSchema.shape.labelConfigs.parse(read("labelConfigs") ?? {});
  return {
    maxRunnersTotal: limits.maxRunnersTotal,
    queueTimeoutMinutes: limits.queueTimeoutMinutes,
    maxRuntimeMinutes: limits.maxRuntimeMinutes,
    idleTimeoutMinutes: limits.idleTimeoutMinutes,
    configs: Object.fromEntries(
      Object.entries(labelConfigs).map(([name, l]) => [
        name,
        {
          maxRunners: l.maxRunners,
          spotPolicy: l.spotPolicy,
          spotFailuresBeforeOnDemand: l.spotFailuresBeforeOnDemand,
        },
      ]),
    ),
  };
}

/** Table names from the flags or the stack outputs; limits from the stack config, when readable. */
export async function resolveSources(
  flags: { table?: string; handoffTable?: string },
  pulumi: Pulumi | undefined,
): Promise<StatusSources> {
  const notes: string[] = [];
  let outputs: Record<string, unknown> = {};
  let limits: FleetLimits = {};
  if (pulumi) {
    if (!flags.table) {
      outputs = await pulumi.stackOutputs().catch((error: Error) => {
        notes.push(`stack outputs not read: ${error.message}`);
        return {};
      });
    }
    try {
      limits = limitsFromConfig(await pulumi.configAll());
    } catch (error) {
      notes.push(`limits unknown: stack config not read (${(error as Error).message})`);
    }
  } else {
    notes.push("limits unknown: no stack config read");
  }
  const jobsTable = flags.table ?? (outputs.jobsTableName as string | undefined);
  if (!jobsTable)
    throw new Error(
      `no jobs table: pass --table NAME or run where \`pulumi stack output\` works\n${notes.join("\n")}`,
    );
  const handoffTable = flags.handoffTable ?? (outputs.handoffTableName as string | undefined);
  if (!handoffTable) notes.push("hand-off reports not read: no hand-off table name (--handoff-table)");
  return { jobsTable, handoffTable, limits, notes };
}

async function handoffOf(job: JobRecord, sources: StatusSources, notes: string[]): Promise<HandoffLookup> {
  if (!job.instanceId || !sources.handoffTable) return undefined;
  try {
    const reports = await listHandoffReports(sources.handoffTable);
    return reports.find((r) => r.instanceId === job.instanceId) ?? null;
  } catch (error) {
    notes.push(`hand-off reports not readable: ${(error as Error).name}: ${(error as Error).message}`);
    return undefined;
  }
}

export interface StatusOptions {
  job?: string;
  json?: boolean;
  now?: Date;
}

/** Prints the fleet summary, or one job explained, to `out` (one call per line). */
export async function runStatus(
  options: StatusOptions,
  sources: StatusSources,
  out: (line: string) => void,
): Promise<void> {
  const now = options.now ?? new Date();
  const notes = [...sources.notes];
  if (options.job) {
    // One job: only the active ones besides it (its limits), not the whole ledger.
    const limits = { ...sources.limits, active: activeCounts(await listActiveJobs(sources.jobsTable)) };
    const job = await getJob(options.job, sources.jobsTable);
    if (!job?.state) {
      const lines = [
        `job ${options.job} is not in the ledger: GitHub never sent it, it was not routed to a config ` +
          "(its labels match none, or it lacks self-hosted), or its item expired.",
      ];
      if (options.json) out(JSON.stringify({ jobId: options.job, found: false, explanation: lines, notes }));
      else for (const line of [...lines, ...notes]) out(line);
      return;
    }
    const handoff = await handoffOf(job, sources, notes);
    const explanation = explainJob(job, now, limits, handoff);
    if (options.json)
      out(JSON.stringify({ jobId: job.jobId, found: true, job, handoff, explanation, notes }));
    else for (const line of [...explanation, ...notes.map((n) => `note: ${n}`)]) out(line);
    return;
  }
  const { jobs, sampled } = await readJobs(sources.jobsTable);
  const limits = { ...sources.limits, active: activeCounts(jobs) };
  const report = fleetReport(jobs, now, limits, { sampled });
  if (options.json) out(JSON.stringify({ ...report, notes }));
  else
    for (const line of [
      ...renderReport(report),
      ...(notes.length ? ["", ...notes.map((n) => `note: ${n}`)] : []),
    ])
      out(line);
}
