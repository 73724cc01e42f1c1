/**
 * `npm run demo`: runner-fleet end to end on this machine, no AWS or GitHub account (README
 * "Everyday commands"). Everything runs against the local sandbox and exits by itself.
 */
import { runDemo } from "./lib/demo";

runDemo().catch((error: unknown) => {
  console.error(`demo: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
});
