/**
 * `npm run status`: reads the jobs ledger (and the hand-off reports) with the Lambdas' own adapters
 * and prints the fleet summary (with the stopped pools, ./pool-report.ts) or one job explained
 * (./explain.ts). The CLI is scripts/fleet-status.ts.
 */
import { listHandoffReports } from "../../lambda/adapters/handoff";
import { listActiveJobs, listJobsByState } from "../../lambda/adapters/job-queries";
import { getJob } from "../../lambda/adapters/jobs-table";
import { getUnmatchedDelivery } from "../../lambda/adapters/unmatched-deliveries";
import { JOB_STATES, type JobRecord, type JobState, TERMINAL_STATES } from "../../lambda/shared/job";
import type { LabelRoute } from "../../lambda/shared/label-config";
import { ConfigError } from "../../src/config/errors";
import { type StackConfig, stackConfigSchema } from "../../src/config/schema";
import { stackConfigOf } from "./deployed-stack";
import { explainJob, type FleetLimits, type HandoffLookup } from "./explain";
import { activeCounts, fleetReport, renderReport } from "./fleet-summary";
import { type JobRef, parseJobRef } from "./job-ref";
import { type PoolSources, readPools, stackConfigHasPool } from "./pool-read";
import { renderPools } from "./pool-report";
import { PROJECT, type Pulumi } from "./pulumi";
import {
  describeUnmatched,
  listUnmatchedDeliveries,
  renderUnmatched,
  unmatchedLines,
} from "./unmatched-report";

export interface StatusSources {
  jobsTable: string;
  /** Without it, hand-off reports are not read (and the explanation says so). */
  handoffTable?: string;
  /** Limits from the stack config (without the active counts, which are read from the ledger). */
  limits: FleetLimits;
  /** The label configs' labels, for the closest config of an unmatched delivery (unknown: undefined). */
  routes?: LabelRoute[];
  /** Where the stopped pools are read; without it they are not shown. */
  pools?: PoolSources;
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

/** The limits `explain` uses, from the stack config's limits and label configs. */
export function limitsOf(config: Pick<StackConfig, "limits" | "labelConfigs">): FleetLimits {
  const { limits, labelConfigs } = config;
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

/** The label configs' names and labels, as the webhook routes by them. */
export const routesOf = (config: Pick<StackConfig, "labelConfigs">): LabelRoute[] =>
  Object.entries(config.labelConfigs).map(([name, l]) => ({ name, labels: l.labels }));

/**
 * The limits of `pulumi config --json`'s limits and label configs alone, with the schema's defaults
 * (what the program deploys). The tool itself validates the whole config (stackConfigOf).
 */
export function limitsFromConfig(
  config: Record<string, { value?: string; objectValue?: unknown }>,
): FleetLimits {
  const read = (name: string): unknown => {
    const entry = config[`${PROJECT}:${name}`];
    if (!entry) return undefined;
    if (entry.objectValue !== undefined) return entry.objectValue;
    return entry.value === undefined ? undefined : JSON.parse(entry.value);
  };
  return limitsOf({
    limits: stackConfigSchema.shape.limits.parse(read("limits") ?? {}),
    labelConfigs: stackConfigSchema.shape.labelConfigs.parse(read("labelConfigs") ?? {}),
  });
}

/** What the summary uses of the stack config, and the stack's name. */
interface ConfigParts extends Pick<StatusSources, "limits" | "routes"> {
  stack?: string;
  /** Whether the stack config gives a label config a pool. */
  pooled?: boolean;
}

/** Limits and routes from the stack config; what went wrong reading it goes to `notes`, in plain words. */
async function readConfigParts(pulumi: Pulumi, notes: string[]): Promise<ConfigParts> {
  let stack: string | undefined;
  try {
    stack = pulumi.stack ?? (await pulumi.stackName());
    const config = stackConfigOf(await pulumi.configAll(), stack);
    return { limits: limitsOf(config), routes: routesOf(config), stack, pooled: stackConfigHasPool(config) };
  } catch (error) {
    const why =
      error instanceof ConfigError ? error.message : `stack config not read (${(error as Error).message})`;
    notes.push(`limits and label configs unknown: ${why}`);
    return { limits: {}, stack };
  }
}

/** The pool table of the stack outputs, when there is one to read (a stack deployed before pools has none). */
function poolSourcesOf(
  outputs: Record<string, unknown>,
  parts: ConfigParts,
  region: string | undefined,
  notes: string[],
): PoolSources | undefined {
  const table = outputs.poolTableName as string | undefined;
  const labelConfigPath = outputs.labelConfigParameterPath as string | undefined;
  if (table && labelConfigPath && parts.stack && region)
    return { table, stackName: parts.stack, region, labelConfigPath };
  if (parts.pooled)
    notes.push(
      "stopped pools not read: no pool table or label config path in the stack outputs (`pulumi up` exports them)",
    );
  return undefined;
}

/** Table names from the flags or the stack outputs; limits from the stack config, when readable. */
export async function resolveSources(
  flags: { table?: string; handoffTable?: string; region?: string },
  pulumi: Pulumi | undefined,
): Promise<StatusSources> {
  const notes: string[] = [];
  let outputs: Record<string, unknown> = {};
  let fromConfig: ConfigParts = { limits: {} };
  if (pulumi) {
    if (!flags.table) {
      outputs = await pulumi.stackOutputs().catch((error: Error) => {
        notes.push(`stack outputs not read: ${error.message}`);
        return {};
      });
    }
    fromConfig = await readConfigParts(pulumi, notes);
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
  const { limits, routes } = fromConfig;
  const pools = poolSourcesOf(outputs, fromConfig, flags.region, notes);
  return { jobsTable, handoffTable, limits, routes, pools, notes };
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
  /** A job id or the job's URL on GitHub (job-ref.ts). */
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
  const call = { options, sources, out, now: options.now ?? new Date() };
  if (options.job) await statusOfJob(parseJobRef(options.job), call);
  else await fleetSummary(call);
}

/** One run of the tool: what it was asked, from where, where it prints, and its now. */
interface StatusCall {
  options: StatusOptions;
  sources: StatusSources;
  out: (line: string) => void;
  now: Date;
}

async function statusOfJob(ref: JobRef, { options, sources, out, now }: StatusCall): Promise<void> {
  const notes = [...sources.notes];
  // One job: only the active ones besides it (its limits), not the whole ledger.
  const limits = { ...sources.limits, active: activeCounts(await listActiveJobs(sources.jobsTable)) };
  const job = await getJob(ref.jobId, sources.jobsTable);
  if (!job?.state) {
    const unmatched = await getUnmatchedDelivery(ref.jobId, sources.jobsTable, now);
    const lines = unmatched
      ? describeUnmatched(unmatchedLines([unmatched], sources.routes, now)[0]!)
      : [
          `job ${ref.jobId} is not in the ledger: GitHub never sent it, it was not routed to a config ` +
            "(its labels match none, or it lacks self-hosted), or its item expired.",
        ];
    if (options.json)
      out(JSON.stringify({ jobId: ref.jobId, found: false, unmatched, explanation: lines, notes }));
    else for (const line of [...lines, ...notes]) out(line);
    return;
  }
  if (ref.repo && ref.repo.toLowerCase() !== job.repo.toLowerCase())
    notes.push(`the URL names ${ref.repo}, but the ledger's job ${job.jobId} is in ${job.repo}`);
  const handoff = await handoffOf(job, sources, notes);
  const explanation = explainJob(job, now, limits, handoff);
  if (options.json) out(JSON.stringify({ jobId: job.jobId, found: true, job, handoff, explanation, notes }));
  else for (const line of [...explanation, ...notes.map((n) => `note: ${n}`)]) out(line);
}

async function fleetSummary({ options, sources, out, now }: StatusCall): Promise<void> {
  const notes = [...sources.notes];
  const [{ jobs, sampled }, unmatched, pools] = await Promise.all([
    readJobs(sources.jobsTable),
    listUnmatchedDeliveries(sources.jobsTable, now).catch((error: Error) => {
      notes.push(`unmatched deliveries not read: ${error.name}: ${error.message}`);
      return [];
    }),
    sources.pools &&
      readPools(sources.pools, now).catch((error: Error) => {
        notes.push(`stopped pools not read: ${error.name}: ${error.message}`);
        return undefined;
      }),
  ]);
  const limits = { ...sources.limits, active: activeCounts(jobs) };
  const report = fleetReport(jobs, now, limits, { sampled });
  const unmatchedReport = unmatchedLines(unmatched, sources.routes, now);
  const poolLines = pools ? renderPools(pools) : [];
  if (options.json) out(JSON.stringify({ ...report, pools, unmatched: unmatchedReport, notes }));
  else
    for (const line of [
      ...renderReport(report),
      ...(poolLines.length ? ["", ...poolLines] : []),
      "",
      ...renderUnmatched(unmatchedReport),
      ...(notes.length ? ["", ...notes.map((n) => `note: ${n}`)] : []),
    ])
      out(line);
}
