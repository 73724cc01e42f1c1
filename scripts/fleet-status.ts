/**
 * `npm run status [-- --job ID|URL] [-- --json] [-- --watch]`: the on-call's "why is my job stuck?"
 * (docs/on-call.md). Reads the stack's jobs table with your AWS credentials; table names come from
 * the stack outputs (or --table / --handoff-table), limits and label configs from the stack config.
 * The command line is scripts/lib/status-cli.ts.
 */
import { statusCli } from "./lib/status-cli";

statusCli(process.argv.slice(2), {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
  // Redraw in place on a terminal; a pipe gets every draw, one after the other.
  clear: process.stdout.isTTY ? () => process.stdout.write("\x1b[2J\x1b[H") : undefined,
}).then((code) => {
  process.exitCode = code;
});
