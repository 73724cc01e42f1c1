/**
 * `npm run doctor [-- --json] [-- --stack NAME] [-- --region REGION]`: after `pulumi up` and the App
 * setup, checks the stack, its GitHub App and its AWS side, each ✔/!/✖ with its fix (exit 1 when one
 * fails). The checks are scripts/lib/doctor*.ts.
 */
import { doctorCli } from "./lib/doctor";

doctorCli(process.argv.slice(2), {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
}).then((code) => {
  process.exitCode = code;
});
