/**
 * The runner instance bootstrap (runner/bootstrap.sh as renderBootstrap renders it), run for real
 * under bash: a fake IMDSv2 on loopback, the local DynamoDB behind a proxy that verifies every
 * request's SigV4 signature with the AWS SDK's signer, and a fake runner `run.sh` acting out a job,
 * no job, a crash, a spot interruption or an endless job; and a pool member's first boot (the warm-up)
 * and its boots after a start.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BOOTSTRAP_TEMPLATE,
  HANDOFF_INSTANCE_ATTRIBUTES,
  renderBootstrap,
} from "../src/components/runner-bootstrap";
import {
  BIN,
  type BootstrapHarness,
  type RunOptions,
  type RunResult,
  startBootstrapHarness,
} from "./bootstrap/harness";

const REGION = "eu-west-1";
const ROLE_ID = "AROATESTRUNNERROLE0001";
const CREDENTIALS = {
  AccessKeyId: "ASIATESTINSTANCEKEY1",
  SecretAccessKey: `secret-${randomBytes(12).toString("hex")}`,
  Token: `token-${randomBytes(24).toString("base64url")}`,
};
// CI installs shellcheck (.ci/run): there a missing shellcheck is a failure, not a skipped check.
const HAS_SHELLCHECK = spawnSync("shellcheck", ["--version"]).status === 0 || process.env.CI === "true";
const IS_ROOT = process.getuid?.() === 0;

let harness: BootstrapHarness;

beforeAll(async () => {
  // The instance signs with its role's credentials from IMDS; the proxy checks them before the sandbox.
  harness = await startBootstrapHarness({ region: REGION, roleId: ROLE_ID, credentials: CREDENTIALS });
});

afterAll(async () => {
  await harness?.close();
});

const runBootstrap = (options: RunOptions): Promise<RunResult> => harness.run(options);

/** Every file under `dir`, with its content. */
async function filesUnder(dir: string): Promise<{ file: string; content: string }[]> {
  const found: { file: string; content: string }[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await filesUnder(file)));
    else if (entry.isFile()) found.push({ file, content: await readFile(file, "utf8") });
  }
  return found;
}

/** The JIT config and the instance credentials appear nowhere but in the runner's own file. */
async function expectNoSecretLeaked(run: RunResult) {
  const secrets = [CREDENTIALS.SecretAccessKey, CREDENTIALS.Token, ...(run.jitConfig ? [run.jitConfig] : [])];
  const places = [
    { file: "stdout", content: run.stdout },
    { file: "stderr", content: run.stderr },
    ...(await filesUnder(run.root)).filter(
      ({ file }) => !file.endsWith(path.join("runner", "jitconfig.received")),
    ),
  ];
  for (const { file, content } of places) {
    for (const secret of secrets) expect(content.includes(secret), `secret found in ${file}`).toBe(false);
  }
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** The item holds only what the launcher or reconciler wrote and what the runner role may write. */
function expectOnlyInstanceAttributes(item: Record<string, unknown> | undefined) {
  const written = new Set<string>(["instanceId", "jobId", "createdAt", ...HANDOFF_INSTANCE_ATTRIBUTES]);
  expect(Object.keys(item ?? {}).filter((name) => !written.has(name))).toEqual([]);
}

describe("renderBootstrap", () => {
  const base = { region: REGION, handoffTable: "runner-fleet-handoff", runnerRoleId: ROLE_ID };

  it("fills in every value and leaves no placeholder", () => {
    const script = renderBootstrap({ ...base, idleTimeoutSeconds: 300 });
    expect(script).toContain(`REGION='${REGION}'`);
    expect(script).toContain(`RUNNER_ROLE_ID='${ROLE_ID}'`);
    expect(script).toContain("IDLE_TIMEOUT_SECONDS='300'");
    expect(script).toContain("MAX_RUNTIME_SECONDS='21600'");
    expect(script).toContain("RUNNER_DIR='/opt/actions-runner'");
    expect(script).toContain("WARMUP_SECONDS='600'");
    expect(script).toContain("STOP_WAIT_SECONDS='900'");
    expect(script).toContain(`DYNAMODB_ENDPOINT='https://dynamodb.${REGION}.amazonaws.com'`);
    expect(script).not.toMatch(/__RF_[A-Z_]+__/);
    expect(renderBootstrap({ ...base, region: "cn-north-1" })).toContain(
      "DYNAMODB_ENDPOINT='https://dynamodb.cn-north-1.amazonaws.com.cn'",
    );
    expect(Buffer.byteLength(script)).toBeLessThan(16_384);
  });

  it("refuses values that could escape their quotes or are not what they claim", () => {
    expect(() => renderBootstrap({ ...base, handoffTable: "t'; rm -rf / #" })).toThrow(/handoffTable/);
    expect(() => renderBootstrap({ ...base, region: "eu-west-1'" })).toThrow(/region/);
    expect(() => renderBootstrap({ ...base, runnerRoleId: "AROA$(id)" })).toThrow(/runnerRoleId/);
    expect(() => renderBootstrap({ ...base, runnerDir: "relative/dir" })).toThrow(/runnerDir/);
    expect(() => renderBootstrap({ ...base, idleTimeoutSeconds: 0 })).toThrow(/idleTimeoutSeconds/);
    expect(() => renderBootstrap({ ...base, maxRuntimeSeconds: 1.5 })).toThrow(/maxRuntimeSeconds/);
    expect(() => renderBootstrap({ ...base, stopWaitSeconds: -1 })).toThrow(/stopWaitSeconds/);
  });

  it("is valid bash, and shellcheck-clean when shellcheck is installed", async () => {
    const root = await mkdtemp(path.join(tmpdir(), "rf-render-"));
    const file = path.join(root, "user-data.sh");
    await writeFile(file, renderBootstrap(base));
    expect(spawnSync("bash", ["-n", file]).status).toBe(0);
    if (HAS_SHELLCHECK) {
      const files = [
        file,
        BOOTSTRAP_TEMPLATE,
        ...["run.sh", "run-as", "shutdown", "aws", "systemctl", "warm-read"].map((f) => path.join(BIN, f)),
      ];
      const result = spawnSync("shellcheck", files, { encoding: "utf8", cwd: path.join(__dirname, "..") });
      expect(result.stdout + result.stderr).toBe("");
      expect(result.status).toBe(0);
    }
    await rm(root, { recursive: true });
  });

  it("leaves out the template's comments, keeping the user data well under EC2's 16 KB", () => {
    const script = renderBootstrap(base);
    expect(script.split("\n")[0]).toBe("#!/bin/bash");
    expect(script).not.toContain("# A volume restored from a snapshot");
    expect(Buffer.byteLength(script)).toBeLessThan(14_000);
  });

  // The runner role's dynamodb:Attributes condition (src/components/runners.ts) lists exactly the
  // attributes the script's UpdateItem requests name: each one it misses would be denied on AWS.
  it("names in its requests exactly the attributes the runner role may use", () => {
    const code = readFileSync(path.join(__dirname, "..", BOOTSTRAP_TEMPLATE), "utf8")
      .split("\n")
      .filter((line) => !/^\s*#/.test(line))
      .join("\n");
    const named = new Set<string>(["handoffKey"]); // the key of every request
    for (const [, list = ""] of code.matchAll(/\bREMOVE ((?:\w+, )*\w+)/g))
      for (const name of list.split(", ")) named.add(name);
    for (const pattern of [/\b([A-Za-z]\w*) = :\w+/g, /attribute_exists\((\w+)\)/g, /\breport_time (\w+) /g])
      for (const [, name = ""] of code.matchAll(pattern)) named.add(name);
    expect([...named].sort()).toEqual([...HANDOFF_INSTANCE_ATTRIBUTES].sort());
  });
});

describe("the bootstrap on an instance", () => {
  it("takes its JIT config, runs one job as the runner user, reports it, and shuts down", async () => {
    const before = harness.proxy.records.length;
    const run = await runBootstrap({ scenario: "job" });
    expect(run.exitCode).toBe(0);
    expect(await run.log("shutdown")).toBe("-h now\n");
    expect(await run.log("run-as-user")).toBe(`${userInfo().username}\n`);

    // The runner got the config in its environment, not on its (world-readable) command line.
    expect(await readFile(path.join(run.root, "runner", "jitconfig.received"), "utf8")).toBe(run.jitConfig);
    expect(await run.log("run-argv")).not.toContain(run.jitConfig);

    const item = run.item!;
    expect(item.jitConfig).toBeUndefined();
    for (const at of ["fetchedAt", "runnerStartedAt", "jobStartedAt", "jobFinishedAt", "runnerExitedAt"]) {
      expect(item[at], at).toMatch(ISO);
    }
    expect(String(item.fetchedAt) <= String(item.runnerStartedAt)).toBe(true);
    expect(String(item.jobStartedAt) < String(item.jobFinishedAt)).toBe(true);
    expect(item.stopReason).toBe("runner-exited");
    expect(item.runnerExitCode).toBe(0);
    expect(item.interruptedAt).toBeUndefined();
    // The item outlives the launcher's short hand-off TTL: it now records the run.
    expect(Number(item.expiresAt)).toBeGreaterThan(Date.now() / 1000 + 120);
    expectOnlyInstanceAttributes(item);
    // A cold instance arranges no later boot and warms nothing.
    expect(await run.log("systemctl")).toBeUndefined();
    expect(await run.log("warm-read")).toBeUndefined();

    // Every DynamoDB request was signed validly with the instance role's credentials.
    const records = harness.proxy.records.slice(before);
    expect(records.length).toBeGreaterThanOrEqual(5);
    expect(records.filter((r) => !r.valid)).toEqual([]);
    expect(records.every((r) => r.target === "DynamoDB_20120810.UpdateItem")).toBe(true);

    // IMDSv2 only: one token, fetched first and reused; then instance id, role, credentials.
    expect(run.imds.requests.slice(0, 4).map((r) => `${r.method} ${r.path}`)).toEqual([
      "PUT /latest/api/token",
      "GET /latest/meta-data/instance-id",
      "GET /latest/meta-data/iam/security-credentials/",
      "GET /latest/meta-data/iam/security-credentials/rf-runner-role",
    ]);
    expect(run.imds.requests.filter((r) => r.method === "PUT")).toHaveLength(1);
    expect(run.imds.requests.filter((r) => r.status === 401)).toEqual([]);
    expect(await run.log("run-umask")).toBe("0022\n");
    await expectNoSecretLeaked(run);
    expect(run.msToRunnerExec).toBeLessThan(3000);
    console.info(`bootstrap start → run.sh exec: ${run.msToRunnerExec?.toFixed(0)} ms`);
  });

  it("waits for a hand-off the launcher writes late", async () => {
    const run = await runBootstrap({ scenario: "job", writeHandoffAfterMs: 1500 });
    expect(run.exitCode).toBe(0);
    expect(run.item?.jitConfig).toBeUndefined();
    expect(run.item?.jobFinishedAt).toMatch(ISO);
    expect(await readFile(path.join(run.root, "runner", "jitconfig.received"), "utf8")).toBe(run.jitConfig);
  });

  it("stops an idle runner after the idle timeout and shuts down", async () => {
    const run = await runBootstrap({ scenario: "no-job", params: { idleTimeoutSeconds: 2 } });
    expect(await run.log("run-signal")).toBe("TERM\n");
    expect(run.item?.stopReason).toBe("idle-timeout");
    expect(run.item?.runnerStartedAt).toMatch(ISO);
    expect(run.item?.jobStartedAt).toBeUndefined();
    expect(await run.log("shutdown")).toBe("-h now\n");
    await expectNoSecretLeaked(run);
  });

  it("reports only well-formed hook timestamps, whatever a job writes", async () => {
    const run = await runBootstrap({ scenario: "forged-events" });
    expect(run.item?.jobStartedAt).toMatch(ISO);
    expect(run.item?.jobStartedAt).not.toBe("2020-01-01T00:00:00.000Z");
    expect(run.item?.x).toBeUndefined();
  });

  // The monitor runs as root and a job can rename a FIFO or a link into the event directory between
  // any test and read: the monitor must neither block on it (its watchdogs would never fire) nor
  // read through it. The harness kills a bootstrap that hangs, well after its watchdogs' time.
  const shadowTime = "2001-02-03T04:05:06.789Z"; // the fake run.sh's stand-in for /etc/shadow

  /** Runs a job that swaps FIFOs and links into the event directory until a watchdog stops it. */
  async function runSwappingEvents(options: Pick<RunOptions, "scenario" | "params">): Promise<RunResult> {
    const run = await runBootstrap({ ...options, killAfterMs: 40_000 });
    expect(run.killed, "the bootstrap hung").toBe(false);
    expect(await run.log("shadow")).toBe(shadowTime);
    expect(await run.log("run-signal")).toBe("TERM\n");
    expect(await run.log("shutdown")).toBe("-h now\n");
    expect(JSON.stringify(run.item) + run.stderr).not.toContain(shadowTime);
    return run;
  }

  it("still stops an idle runner while a job swaps FIFOs and links into its events", async () => {
    const run = await runSwappingEvents({ scenario: "swapped-events", params: { idleTimeoutSeconds: 2 } });
    expect(run.item?.stopReason).toBe("idle-timeout");
    expect(run.item?.jobStartedAt).toBeUndefined();
    expect(run.item?.jobFinishedAt).toBeUndefined();
  }, 60_000);

  it("reports the job's start and stops it at the maximum runtime beside a swapped FIFO and link", async () => {
    const run = await runSwappingEvents({ scenario: "swapped-events-job", params: { maxRuntimeSeconds: 3 } });
    expect(run.item?.stopReason).toBe("max-runtime");
    expect(run.item?.jobStartedAt).toMatch(ISO);
    expect(run.item?.jobFinishedAt).toBeUndefined();
  }, 60_000);

  it("shuts down when the runner crashes, recording its exit code", async () => {
    const run = await runBootstrap({ scenario: "crash" });
    expect(run.item?.runnerExitCode).toBe(3);
    expect(run.item?.stopReason).toBe("runner-exited");
    expect(run.item?.jobStartedAt).toBeUndefined();
    expect(await run.log("shutdown")).toBe("-h now\n");
  });

  it("records a spot interruption notice and lets the job finish", async () => {
    const run = await runBootstrap({ scenario: "interrupted-job", spotNotice: true });
    const item = run.item!;
    expect(item.interruptedAt).toMatch(ISO);
    expect(item.jobFinishedAt).toMatch(ISO);
    expect(String(item.interruptedAt) < String(item.jobFinishedAt)).toBe(true);
    expect(item.stopReason).toBe("runner-exited");
    expect(item.runnerExitCode).toBe(0);
    expect(await run.log("run-signal")).toBeUndefined();
    expect(run.imds.requests.some((r) => r.path === "/latest/meta-data/spot/instance-action")).toBe(true);
    expectOnlyInstanceAttributes(item);
  });

  it("stops a job that outlives the maximum runtime", async () => {
    const run = await runBootstrap({ scenario: "endless-job", params: { maxRuntimeSeconds: 3 } });
    expect(run.item?.jobStartedAt).toMatch(ISO);
    expect(run.item?.jobFinishedAt).toBeUndefined();
    expect(run.item?.stopReason).toBe("max-runtime");
    expect(await run.log("run-signal")).toBe("TERM\n");
    expect(await run.log("shutdown")).toBe("-h now\n");
  });

  it("gives up and shuts down when no JIT config arrives, without creating the item", async () => {
    const run = await runBootstrap({ scenario: "job", jitConfig: null, params: { handoffWaitSeconds: 2 } });
    expect(run.exitCode).not.toBe(0);
    expect(await run.log("run-as-user")).toBeUndefined();
    expect(await run.log("shutdown")).toBe("-h now\n");
    expect(run.item).toBeUndefined();
    expect(run.stderr).toContain("no JIT config in the hand-off");
  });

  it("leaves the JIT config for another instance when the image has no runner", async () => {
    const run = await runBootstrap({ scenario: "job", params: { runnerDir: "/nonexistent/actions-runner" } });
    expect(run.exitCode).not.toBe(0);
    expect(run.stderr).toContain("not a runner-fleet image?");
    expect(run.item?.jitConfig).toBe(run.jitConfig);
    expect(run.item?.fetchedAt).toBeUndefined();
    expect(await run.log("shutdown")).toBe("-h now\n");
  });

  it("falls back to the AWS CLI when DynamoDB rejects curl's signature", async () => {
    const run = await runBootstrap({ scenario: "job", rejectSignatures: true });
    expect(run.exitCode).toBe(0);
    expect(run.stderr).toContain("using the AWS CLI from now on");
    expect(run.item?.jitConfig).toBeUndefined();
    expect(run.item?.jobFinishedAt).toMatch(ISO);
    expect(await readFile(path.join(run.root, "runner", "jitconfig.received"), "utf8")).toBe(run.jitConfig);
    const calls = (await run.log("aws-calls")) ?? "";
    expect(calls).toContain(
      `dynamodb update-item --region ${REGION} --endpoint-url ${harness.proxy.url} --output json`,
    );
    await expectNoSecretLeaked(run);
  });

  it.skipIf(!IS_ROOT)("switches to the runner user with setpriv (as root)", async () => {
    const run = await runBootstrap({ scenario: "job", realUserSwitch: true });
    expect(await run.log("run-user")).toBe("nobody\n");
    expect(run.item?.jobFinishedAt).toMatch(ISO);
    const events = await stat(path.join(run.root, "state", "events"));
    expect(events.uid).toBe(Number(execFileSync("id", ["-u", "nobody"], { encoding: "utf8" })));
    expect(events.mode & 0o777).toBe(0o700);
  });
});

describe("a pool member", () => {
  /** A volume's worth of files to warm, and what the warm-up must not read: links, a FIFO, another tree. */
  async function warmTree() {
    const dir = await mkdtemp(path.join(tmpdir(), "rf-warm-"));
    const files = ["docker/image/layer.tar", "docker/a/b/c/deep", "toolcache/node/bin/node"];
    for (const file of files) {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
      await writeFile(path.join(dir, file), file);
    }
    await mkdir(path.join(dir, "elsewhere"));
    await writeFile(path.join(dir, "elsewhere", "not-warmed"), "x");
    await symlink(path.join(dir, "elsewhere", "not-warmed"), path.join(dir, "docker", "file-link"));
    await symlink(path.join(dir, "elsewhere"), path.join(dir, "toolcache", "dir-link"));
    execFileSync("mkfifo", [path.join(dir, "docker", "fifo")]);
    return {
      paths: ["docker", "toolcache", "absent"].map((name) => path.join(dir, name)),
      files: files.map((file) => path.join(dir, file)),
    };
  }

  /** A member's first boot: the reconciler's marker, no JIT config; not stopped, it gives up soon. */
  const firstBoot = (options: Partial<RunOptions> = {}) =>
    runBootstrap({
      scenario: "job",
      jitConfig: null,
      warmupMarker: true,
      ...options,
      params: { stopWaitSeconds: 1, handoffWaitSeconds: 3, ...options.params },
    });

  /** A member's boot after its start, once its first boot has warmed it (and `between` has run). */
  async function bootAfterStart(
    options: Partial<RunOptions> = {},
    between?: (first: RunResult) => Promise<void>,
  ) {
    const first = await firstBoot();
    await between?.(first);
    return runBootstrap({ scenario: "job", restartOf: first, ...options });
  }

  it("warms its volume on the first boot, installs its bootstrap for the next boots, and waits to be stopped", async () => {
    const tree = await warmTree();
    const run = await firstBoot({ warmPaths: tree.paths, params: { stopWaitSeconds: 2 } });

    // It took the marker, ran no runner, and reported that it is warm.
    const item = run.item!;
    expect(item.warmup).toBeUndefined();
    expect(item.warmedAt).toMatch(ISO);
    expect(String(item.fetchedAt) <= String(item.warmedAt)).toBe(true);
    expect(item.runnerStartedAt).toBeUndefined();
    expect(await run.log("run-started-us")).toBeUndefined();
    expectOnlyInstanceAttributes(item);

    // Every regular file under the runner directory and the warm paths, read once; no link followed,
    // no FIFO opened, a missing path skipped.
    const read = ((await run.log("warm-read")) ?? "").trim().split("\n").sort();
    const runnerFiles = ["run.sh", "scenario"].map((f) => path.join(run.root, "runner", f));
    expect(read).toEqual([...runnerFiles, ...tree.files].sort());

    // The bootstrap's copy (the user data itself, root-only) and the unit that runs it at each boot.
    const copy = path.join(run.libDir, "bootstrap.sh");
    expect(await readFile(copy, "utf8")).toBe(await readFile(path.join(run.root, "bootstrap.sh"), "utf8"));
    expect((await stat(copy)).mode & 0o777).toBe(0o700);
    expect((await stat(run.libDir)).mode & 0o777).toBe(0o700);
    const unitFile = path.join(run.unitDir, "runner-fleet-bootstrap.service");
    const unit = (await readFile(unitFile, "utf8")).split("\n");
    expect(unit).toEqual(
      expect.arrayContaining([
        "Wants=network-online.target",
        "After=network-online.target",
        "Type=simple",
        "Environment=RF_BOOT=restart",
        `ExecStart=${copy}`,
        "WantedBy=multi-user.target",
      ]),
    );
    expect(unit.join("\n")).not.toMatch(/cloud-final|Timeout|Restart=/);
    expect((await stat(unitFile)).mode & 0o777).toBe(0o644);
    expect(await run.log("systemctl")).toBe("enable --no-reload runner-fleet-bootstrap.service\n");

    // Nobody stopped it: it gives up after its wait, and the shutdown terminates it.
    expect(run.stderr).toContain("not stopped after 2s");
    expect(run.exitCode).toBe(1);
    expect(await run.log("shutdown")).toBe("-h now\n");
    await expectNoSecretLeaked(run);
  });

  it("leaves the power-off to the system when it is stopped while it waits", async () => {
    const run = await firstBoot({
      termOn: "to be stopped",
      params: { stopWaitSeconds: 600 },
      killAfterMs: 30_000,
    });
    expect(run.killed, "the bootstrap ignored the stop").toBe(false);
    expect(run.item?.warmedAt).toMatch(ISO);
    expect(run.stderr).toContain("stopped while warm");
    expect(await run.log("shutdown")).toBeUndefined();
  }, 45_000);

  it("after a start, takes the launcher's JIT config, runs one job and shuts down", async () => {
    // What a stop would have emptied (/run is a tmpfs) is kept here: a stale job event must not count.
    const run = await bootAfterStart({}, (first) =>
      writeFile(path.join(first.root, "state", "events", "job-completed"), "2020-01-01T00:00:00.000Z"),
    );

    expect(run.exitCode).toBe(0);
    expect(await readFile(path.join(run.root, "runner", "jitconfig.received"), "utf8")).toBe(run.jitConfig);
    expect(await run.log("run-as-user")).toBe(`${userInfo().username}\n`);
    const item = run.item!;
    expect(item.jitConfig).toBeUndefined();
    for (const at of ["fetchedAt", "runnerStartedAt", "jobStartedAt", "jobFinishedAt", "runnerExitedAt"]) {
      expect(item[at], at).toMatch(ISO);
    }
    expect(String(item.runnerStartedAt) < String(item.jobFinishedAt)).toBe(true);
    expect(item.stopReason).toBe("runner-exited");
    expectOnlyInstanceAttributes(item);
    // One job, then the shutdown (which terminates it); no second warm-up, no unit installed again.
    expect(await run.log("shutdown")).toBe("-h now\n");
    expect(await run.log("warm-read")).toBeUndefined();
    expect(await run.log("systemctl")).toBeUndefined();
    await expectNoSecretLeaked(run);
  });

  it("after a start, never takes a warm-up marker: it waits for the JIT config", async () => {
    const run = await bootAfterStart({ warmupMarker: true, writeHandoffAfterMs: 1500 });
    expect(run.exitCode).toBe(0);
    expect(run.item?.jobFinishedAt).toMatch(ISO);
    expect(await readFile(path.join(run.root, "runner", "jitconfig.received"), "utf8")).toBe(run.jitConfig);
    expect(await run.log("warm-read")).toBeUndefined();
  });

  it("after a start with only a warm-up marker, leaves it and gives up like any instance without a config", async () => {
    const run = await bootAfterStart({ warmupMarker: true, jitConfig: null });
    expect(run.exitCode).not.toBe(0);
    expect(run.item?.warmup).toBe("pool");
    expect(run.item?.fetchedAt).toBeUndefined();
    expect(run.stderr).toContain("no JIT config in the hand-off");
    expect(await run.log("run-as-user")).toBeUndefined();
    expect(await run.log("warm-read")).toBeUndefined();
    expect(await run.log("shutdown")).toBe("-h now\n");
  });
});
