/**
 * Scenario 5: the runner instance's user data (src/runner-bootstrap.ts renderBootstrap over
 * runner/bootstrap.sh) under bash, from its start to the exec of `run.sh`, the hand-off item already
 * written. The same harness as test/bootstrap.test.ts: a fake IMDSv2, the sandbox's DynamoDB (with
 * its modeled latency) behind the SigV4-verifying proxy, and the fake runner `run.sh`, which records
 * when it was started. Median of `runs`.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { handoffKeyFor } from "../../lambda/shared/tables";
import { renderBootstrap } from "../../src/runner-bootstrap";
import { startFakeImds } from "../../test/bootstrap/fake-imds";
import { startSigV4Proxy } from "../../test/bootstrap/sigv4-proxy";
import { randomHex } from "../../test/sandbox/http";
import { startSandbox } from "../../test/sandbox/index";
import { median, round } from "./scenarios";
import { MODEL } from "./world";

const REGION = "us-east-1";
const ROLE_ID = "AROABENCHRUNNERROLE01";

export async function bootstrapMs(runs = 5): Promise<number> {
  const bin = join(process.cwd(), "test", "bootstrap", "bin");
  const credentials = {
    AccessKeyId: "ASIABENCHINSTANCE001",
    SecretAccessKey: `secret-${randomBytes(12).toString("hex")}`,
    Token: `token-${randomBytes(24).toString("base64url")}`,
  };
  const sandbox = await startSandbox({ region: REGION });
  sandbox.faults.latency("dynamodb", "*", MODEL.dynamodbMs);
  const table = (await sandbox.createTables("bench-boot")).handoff;
  const proxy = await startSigV4Proxy({ target: sandbox.endpoints.dynamodb, credentials, region: REGION });
  const ddb = new DynamoDBClient({
    endpoint: sandbox.endpoints.dynamodb,
    region: REGION,
    credentials: sandbox.credentials,
  });
  const times: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      const instanceId = `i-${randomHex(17)}`;
      const imds = await startFakeImds({ instanceId, roleName: "rf-runner-role", credentials });
      const root = await mkdtemp(join(tmpdir(), "rf-bench-boot-"));
      try {
        const runnerDir = join(root, "runner");
        const logDir = join(root, "log");
        await mkdir(runnerDir);
        await mkdir(logDir);
        await copyFile(join(bin, "run.sh"), join(runnerDir, "run.sh"));
        await writeFile(join(runnerDir, "scenario"), "job");
        const script = renderBootstrap({
          region: REGION,
          handoffTable: table,
          runnerRoleId: ROLE_ID,
          runnerUser: userInfo().username,
          runnerDir,
          idleTimeoutSeconds: 30,
          maxRuntimeSeconds: 120,
          handoffWaitSeconds: 5,
        });
        const scriptPath = join(root, "bootstrap.sh");
        await writeFile(scriptPath, script, { mode: 0o700 });
        await ddb.send(
          new PutItemCommand({
            TableName: table,
            Item: marshall({
              handoffKey: handoffKeyFor(ROLE_ID, instanceId),
              instanceId,
              jobId: String(4242 + i),
              jitConfig: `JIT-${randomBytes(32).toString("base64url")}`,
              createdAt: new Date().toISOString(),
              expiresAt: Math.floor(Date.now() / 1000) + 900,
            }),
          }),
        );
        const spawnedUs = BigInt(Date.now()) * 1000n;
        const child = spawn("bash", [scriptPath], {
          env: {
            PATH: process.env.PATH,
            HOME: process.env.HOME,
            RF_IMDS_ENDPOINT: imds.url,
            RF_DYNAMODB_ENDPOINT: proxy.url,
            RF_STATE_DIR: join(root, "state"),
            RF_SHUTDOWN_CMD: `${bin}/shutdown -h now`,
            RF_TEST_LOG: logDir,
            RF_TEST_DYNAMODB: sandbox.endpoints.dynamodb,
            RF_RUN_AS: `${bin}/run-as`,
          },
          stdio: "ignore",
        });
        const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
        const started = await readFile(join(logDir, "run-started-us"), "utf8").catch(() => undefined);
        if (!started) throw new Error(`the bootstrap never started run.sh (exit ${code})`);
        times.push(Number(BigInt(started.trim()) - spawnedUs) / 1000);
      } finally {
        await imds.close();
        await rm(root, { recursive: true, force: true });
      }
    }
  } finally {
    ddb.destroy();
    await proxy.close();
    await sandbox.close();
  }
  return round(median(times));
}
