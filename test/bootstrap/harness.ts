/**
 * The harness of the runner instance bootstrap (runner/bootstrap.sh as renderBootstrap renders it),
 * run for real under bash: a fake IMDSv2 on loopback, the sandbox's DynamoDB behind a proxy that
 * verifies every request's SigV4 signature with the AWS SDK's signer, and a fake runner `run.sh`
 * (bin/) acting out a scenario. Used by test/bootstrap.test.ts and the benchmark (scripts/bench).
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmod, copyFile, mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import * as path from "node:path";
import { DynamoDBClient, GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { handoffKeyFor } from "../../lambda/shared/tables";
import { type BootstrapParams, renderBootstrap } from "../../src/components/runner-bootstrap";
import { randomHex } from "../sandbox/http";
import { type Sandbox, startSandbox } from "../sandbox/index";
import { type FakeImds, type ImdsCredentials, startFakeImds } from "./fake-imds";
import { type SigV4Proxy, startSigV4Proxy } from "./sigv4-proxy";

/**
 * The fakes the bootstrap calls: the runner's run.sh, the user switch, shutdown, the AWS CLI,
 * systemctl and the warm-up's file reader.
 */
export const BIN = path.join(__dirname, "bin");

export type Scenario =
  | "job"
  | "no-job"
  | "crash"
  | "interrupted-job"
  | "endless-job"
  | "forged-events"
  | "swapped-events"
  | "swapped-events-job";

export interface RunOptions {
  scenario: Scenario;
  /** The JIT config the launcher writes; null: it never writes one. */
  jitConfig?: string | null;
  /** The launcher writes its hand-off (over any marker) this long after the bootstrap starts. */
  writeHandoffAfterMs?: number;
  /** The item starts as the reconciler's warm-up marker for a pool member: `warmup`, no JIT config. */
  warmupMarker?: boolean;
  /** Directories the warm-up reads besides the runner's (never the test machine's own). */
  warmPaths?: string[];
  /**
   * Boots the instance of an earlier run again, as after StartInstances: the copy of the bootstrap
   * that run installed (with that run's `params`), with the unit's RF_BOOT=restart, on the same
   * instance id and directories. Its state directory is kept (a real stop empties /run): leftovers
   * there must not matter.
   */
  restartOf?: RunResult;
  /** Sends the bootstrap SIGTERM, as a system stop does, when its log first shows this text. */
  termOn?: string;
  params?: Partial<BootstrapParams>;
  spotNotice?: boolean;
  rejectSignatures?: boolean;
  /** Use the production user switch (setpriv) instead of the recording fake. */
  realUserSwitch?: boolean;
  /** Kills the bootstrap (its process group) if it still runs after this long: for a test of a hang. */
  killAfterMs?: number;
}

export interface RunResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  item: Record<string, unknown> | undefined;
  instanceId: string;
  root: string;
  /** Where the bootstrap puts its copy (RF_LIB_DIR: /var/lib/runner-fleet on an instance). */
  libDir: string;
  /** Where it writes its systemd unit (RF_UNIT_DIR: /etc/systemd/system on an instance). */
  unitDir: string;
  jitConfig: string;
  log: (name: string) => Promise<string | undefined>;
  imds: FakeImds;
  /** Milliseconds from spawning the bootstrap to the fake run.sh's first line. */
  msToRunnerExec?: number;
  /** The bootstrap hung and was killed after `killAfterMs`. */
  killed: boolean;
}

export interface BootstrapHarness {
  sandbox: Sandbox;
  /** The hand-off table. */
  table: string;
  /** The sandbox's DynamoDB, unsigned. */
  dynamoUrl: string;
  /** What the bootstrap talks to: checks each request's signature, then forwards it to the sandbox. */
  proxy: SigV4Proxy;
  /** Runs the bootstrap once, from a fresh instance (its own id, IMDS and directories) or a restarted one. */
  run(options: RunOptions): Promise<RunResult>;
  close(): Promise<void>;
}

/**
 * Starts the sandbox (its hand-off table) and the SigV4 proxy: the instance signs with `credentials`,
 * its role's from IMDS, and the proxy checks them before the sandbox.
 */
export async function startBootstrapHarness(options: {
  region: string;
  roleId: string;
  credentials: ImdsCredentials;
  /** The tables' name prefix (the sandbox's default without). */
  tablePrefix?: string;
}): Promise<BootstrapHarness> {
  const { region, roleId, credentials } = options;
  const sandbox = await startSandbox({ region });
  const table = (await sandbox.createTables(options.tablePrefix)).handoff;
  const dynamoUrl = sandbox.endpoints.dynamodb;
  const ddb = new DynamoDBClient({ endpoint: dynamoUrl, region, credentials: sandbox.credentials });
  const proxy = await startSigV4Proxy({ target: dynamoUrl, credentials, region }).catch(async (error) => {
    ddb.destroy();
    await sandbox.close();
    throw error;
  });

  /** A new instance's directories and user data (rendered with the test's short limits). */
  async function newInstance(options: RunOptions) {
    const root = await mkdtemp(path.join(tmpdir(), "rf-bootstrap-"));
    const runnerDir = path.join(root, "runner");
    const logDir = path.join(root, "log");
    for (const dir of [runnerDir, logDir, path.join(root, "systemd")]) await mkdir(dir);
    await copyFile(path.join(BIN, "run.sh"), path.join(runnerDir, "run.sh"));
    const runnerUser = options.realUserSwitch ? "nobody" : userInfo().username;
    if (options.realUserSwitch) {
      // nobody must be able to reach and write the test's directories.
      for (const dir of [root, runnerDir, logDir]) await chmod(dir, 0o777);
    }
    const script = renderBootstrap({
      region,
      handoffTable: table,
      runnerRoleId: roleId,
      runnerUser,
      runnerDir,
      idleTimeoutSeconds: 30,
      maxRuntimeSeconds: 120,
      handoffWaitSeconds: 5,
      ...options.params,
    });
    const scriptPath = path.join(root, "bootstrap.sh");
    await writeFile(scriptPath, script, { mode: 0o700 });
    return { instanceId: `i-${randomHex(17)}`, root, runnerDir, logDir, command: ["bash", scriptPath] };
  }

  /** The instance of an earlier run, booted again: systemd runs the installed copy itself. */
  async function restartedInstance(previous: RunResult) {
    const { root, instanceId } = previous;
    const logDir = await mkdtemp(path.join(root, "log-restart-"));
    const command = [path.join(previous.libDir, "bootstrap.sh")];
    return { instanceId, root, runnerDir: path.join(root, "runner"), logDir, command };
  }

  async function run(options: RunOptions): Promise<RunResult> {
    const instance = options.restartOf
      ? await restartedInstance(options.restartOf)
      : await newInstance(options);
    const { instanceId, root, runnerDir, logDir } = instance;
    await writeFile(path.join(runnerDir, "scenario"), options.scenario);
    const libDir = path.join(root, "lib");
    const unitDir = path.join(root, "systemd");
    const jitConfig =
      options.jitConfig === null ? "" : (options.jitConfig ?? `JIT-${randomBytes(32).toString("base64url")}`);
    const imds = await startFakeImds({ instanceId, roleName: "rf-runner-role", credentials });
    if (options.spotNotice)
      imds.spotNotice = { action: "terminate", time: new Date(Date.now() + 120_000).toISOString() };

    const key = handoffKeyFor(roleId, instanceId);
    const writeItem = (fields: Record<string, string>) =>
      ddb.send(
        new PutItemCommand({
          TableName: table,
          Item: marshall({
            handoffKey: key,
            instanceId,
            ...fields,
            createdAt: new Date().toISOString(),
            expiresAt: Math.floor(Date.now() / 1000) + 900,
          }),
        }),
      );
    const writeHandoff = () => writeItem({ jobId: "4242", jitConfig });
    if (options.warmupMarker) await writeItem({ warmup: "pool" });
    let delayedWrite: Promise<unknown> | undefined;
    if (options.jitConfig !== null) {
      if (options.writeHandoffAfterMs) {
        delayedWrite = new Promise((resolve) => setTimeout(resolve, options.writeHandoffAfterMs)).then(
          writeHandoff,
        );
      } else {
        await writeHandoff();
      }
    }
    proxy.rejectAll = options.rejectSignatures ?? false;

    const env: NodeJS.ProcessEnv = {
      PATH: options.rejectSignatures ? `${BIN}:${process.env.PATH}` : process.env.PATH,
      HOME: process.env.HOME,
      RF_IMDS_ENDPOINT: imds.url,
      RF_DYNAMODB_ENDPOINT: proxy.url,
      RF_STATE_DIR: path.join(root, "state"),
      RF_SHUTDOWN_CMD: `${BIN}/shutdown -h now`,
      RF_LIB_DIR: libDir,
      RF_UNIT_DIR: unitDir,
      RF_SYSTEMCTL: `${BIN}/systemctl`,
      RF_WARM_PATHS: [runnerDir, ...(options.warmPaths ?? [])].join(" "),
      RF_WARM_READER: `${BIN}/warm-read`,
      ...(options.restartOf ? { RF_BOOT: "restart" } : {}),
      RF_TEST_LOG: logDir,
      RF_TEST_DYNAMODB: dynamoUrl,
      ...(options.realUserSwitch ? {} : { RF_RUN_AS: `${BIN}/run-as` }),
    };
    const spawnedUs = BigInt(Date.now()) * 1000n;
    // Its own process group, so that a hung bootstrap can be killed with whatever it waits on.
    const [file = "", ...args] = instance.command;
    const child = spawn(file, args, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let killed = false;
    const killTimer =
      options.killAfterMs === undefined
        ? undefined
        : setTimeout(() => {
            killed = true;
            try {
              if (child.pid) process.kill(-child.pid, "SIGKILL");
            } catch {} // gone already
          }, options.killAfterMs);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    let termSent = false;
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      if (options.termOn && !termSent && stderr.includes(options.termOn)) {
        termSent = true;
        child.kill("SIGTERM");
      }
    });
    const exitCode = await new Promise<number | null>((resolve) => child.on("close", resolve));
    clearTimeout(killTimer);
    await delayedWrite;
    await imds.close();
    const { Item } = await ddb.send(
      new GetItemCommand({ TableName: table, Key: marshall({ handoffKey: key }), ConsistentRead: true }),
    );
    const log = (name: string) => readFile(path.join(logDir, name), "utf8").catch(() => undefined);
    const startedUs = await log("run-started-us");
    return {
      exitCode,
      stdout,
      stderr,
      item: Item ? unmarshall(Item) : undefined,
      instanceId,
      root,
      libDir,
      unitDir,
      jitConfig,
      log,
      imds,
      msToRunnerExec: startedUs ? Number(BigInt(startedUs.trim()) - spawnedUs) / 1000 : undefined,
      killed,
    };
  }

  return {
    sandbox,
    table,
    dynamoUrl,
    proxy,
    run,
    async close() {
      await proxy.close();
      ddb.destroy();
      await sandbox.close();
    },
  };
}
