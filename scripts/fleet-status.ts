/**
 * `npm run status [-- --job ID] [-- --json]`: the on-call's "why is my job stuck?" (README
 * "Operator tools"). Reads the stack's jobs table with your AWS credentials; table names come from
 * the stack outputs (or --table / --handoff-table), limits from the stack config.
 */
import { parseArgs } from "node:util";
import { resolveSources, runStatus } from "./lib/fleet-status";
import { pulumiCli } from "./lib/pulumi";

const USAGE = `usage: npm run status -- [--job ID] [--json] [--stack NAME] [--table NAME] [--handoff-table NAME] [--no-pulumi]`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      job: { type: "string" },
      json: { type: "boolean", default: false },
      stack: { type: "string" },
      table: { type: "string" },
      "handoff-table": { type: "string" },
      "no-pulumi": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const pulumi = values["no-pulumi"] ? undefined : pulumiCli({ stack: values.stack });
  if (pulumi && !process.env.AWS_REGION && !process.env.AWS_DEFAULT_REGION) {
    // The stack's region, unless the environment names one.
    const region = await pulumi.configGet("aws:region").catch(() => undefined);
    if (region) process.env.AWS_REGION = region;
  }
  const sources = await resolveSources(
    { table: values.table, handoffTable: values["handoff-table"] },
    pulumi,
  );
  await runStatus({ job: values.job, json: values.json }, sources, (line) => console.log(line));
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`status: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
