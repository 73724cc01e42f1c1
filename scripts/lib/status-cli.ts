/**
 * `npm run status`'s command line (scripts/fleet-status.ts runs it): flags, the region, one report
 * or a redraw every N seconds (`--watch`), and AWS's failures said as what to do (aws-session.ts).
 * Everything the terminal and the clock do comes in as `deps`, so tests drive it in-process.
 */
import { setTimeout as delay } from "node:timers/promises";
import { parseArgs } from "node:util";
import { explainAwsError, useRegion } from "./aws-session";
import { resolveSources, runStatus, type StatusSources } from "./fleet-status";
import { type Pulumi, pulumiCli } from "./pulumi";

export const STATUS_USAGE = `usage: npm run status -- [--job ID|URL] [--json] [--watch [--interval S] [--count N]]
       [--region REGION] [--stack NAME] [--table NAME] [--handoff-table NAME] [--no-pulumi]
  --job       a job id, or its URL (https://HOST/OWNER/REPO/actions/runs/RUN/job/JOB)
  --watch     redraw every --interval seconds (default 10) until Ctrl-C (or --count redraws)
  --region    the stack's region (default: AWS_REGION, the stack's aws:region, the profile's region)`;

export interface StatusCliDeps {
  out: (line: string) => void;
  err: (line: string) => void;
  /** The Pulumi CLI for `--stack` (default: the real one). */
  pulumi?: (stack: string | undefined) => Pulumi;
  env?: Record<string, string | undefined>;
  /** Waits between redraws (default: a timer). */
  sleep?: (ms: number) => Promise<void>;
  /** Clears the screen before a redraw; default: none (the CLI passes one when stdout is a terminal). */
  clear?: () => void;
}

function positive(name: string, text: string | undefined, fallback?: number): number | undefined {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`--${name} ${text}: expected a whole number of at least 1`);
  return n;
}

function parseStatusArgs(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      job: { type: "string" },
      json: { type: "boolean", default: false },
      watch: { type: "boolean", default: false },
      interval: { type: "string" },
      count: { type: "string" },
      region: { type: "string" },
      stack: { type: "string" },
      table: { type: "string" },
      "handoff-table": { type: "string" },
      "no-pulumi": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  return {
    ...values,
    intervalSeconds: positive("interval", values.interval, 10)!,
    count: positive("count", values.count),
  };
}

/** Runs the tool; returns its exit code. */
export async function statusCli(argv: string[], deps: StatusCliDeps): Promise<number> {
  const env = deps.env ?? process.env;
  let what: string | undefined;
  try {
    const args = parseStatusArgs(argv);
    if (args.help) {
      deps.out(STATUS_USAGE);
      return 0;
    }
    const pulumi = args["no-pulumi"]
      ? undefined
      : (deps.pulumi ?? ((stack) => pulumiCli({ stack })))(args.stack);
    const named = args.region || env.AWS_REGION || env.AWS_DEFAULT_REGION;
    // The stack's own region, unless the flag or the environment names one.
    const stackRegion = named ? undefined : await pulumi?.configGet("aws:region").catch(() => undefined);
    const region = useRegion({ flag: args.region, stackRegion }, env);
    const sources = await resolveSources(
      { table: args.table, handoffTable: args["handoff-table"], region },
      pulumi,
    );
    what = `the jobs table ${sources.jobsTable}`;
    const draw = () => report(args, sources);
    if (!args.watch) {
      for (const line of await draw()) deps.out(line);
      return 0;
    }
    await watch(draw, { ...args, deps, explain: (error) => explainAwsError(error, env, what) });
    return 0;
  } catch (error) {
    deps.err(`status: ${explainAwsError(error, env, what) ?? (error as Error).message ?? String(error)}`);
    return 1;
  }
}

async function report(options: { job?: string; json?: boolean }, sources: StatusSources): Promise<string[]> {
  const lines: string[] = [];
  await runStatus({ job: options.job, json: options.json }, sources, (line) => lines.push(line));
  return lines;
}

/**
 * Draws, then again every `intervalSeconds`, `count` times (default: until the process is stopped).
 * A failed draw is shown and retried at the next one: a network blip must not end the watch.
 */
async function watch(
  draw: () => Promise<string[]>,
  options: {
    intervalSeconds: number;
    count?: number;
    json?: boolean;
    deps: StatusCliDeps;
    explain: (error: unknown) => string | undefined;
  },
): Promise<void> {
  const { deps, intervalSeconds } = options;
  const sleep = deps.sleep ?? ((ms: number) => delay(ms).then(() => undefined));
  for (let n = 0; options.count === undefined || n < options.count; n++) {
    if (n > 0) await sleep(intervalSeconds * 1000);
    let lines: string[];
    try {
      lines = await draw();
    } catch (error) {
      const message = options.explain(error) ?? (error as Error).message;
      lines = options.json
        ? [JSON.stringify({ error: message })]
        : [`status: ${message}`, `(tried again in ${intervalSeconds} s)`];
    }
    // JSON: one object per line, a stream for a pipe; text: the screen redrawn.
    if (!options.json) deps.clear?.();
    for (const line of lines) deps.out(line);
    if (!options.json)
      deps.out(`\n(every ${intervalSeconds} s, Ctrl-C stops; at ${new Date().toISOString()})`);
  }
}
