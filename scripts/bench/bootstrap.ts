/**
 * Scenario 5: the runner instance's user data (src/components/runner-bootstrap.ts renderBootstrap over
 * runner/bootstrap.sh) under bash, from its start to the exec of `run.sh`, the hand-off item already
 * written. test/bootstrap.test.ts's harness (test/bootstrap/harness.ts): a fake IMDSv2, the sandbox's
 * DynamoDB (with its modeled latency) behind the SigV4-verifying proxy, and the fake runner `run.sh`,
 * which records when it was started. Median of `runs`.
 */
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { startBootstrapHarness } from "../../test/bootstrap/harness";
import { median, round } from "./scenarios";
import { MODEL } from "./world";

const REGION = "us-east-1";
const ROLE_ID = "AROABENCHRUNNERROLE01";

export async function bootstrapMs(runs = 5): Promise<number> {
  const credentials = {
    AccessKeyId: "ASIABENCHINSTANCE001",
    SecretAccessKey: `secret-${randomBytes(12).toString("hex")}`,
    Token: `token-${randomBytes(24).toString("base64url")}`,
  };
  const harness = await startBootstrapHarness({
    region: REGION,
    roleId: ROLE_ID,
    credentials,
    tablePrefix: "bench-boot",
  });
  harness.sandbox.faults.latency("dynamodb", "*", MODEL.dynamodbMs);
  const times: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const run = await harness.run({ scenario: "job" });
      try {
        if (run.msToRunnerExec === undefined)
          throw new Error(`the bootstrap never started run.sh (exit ${run.exitCode})`);
        times.push(run.msToRunnerExec);
      } finally {
        await rm(run.root, { recursive: true, force: true });
      }
    }
  } finally {
    await harness.close();
  }
  return round(median(times));
}
