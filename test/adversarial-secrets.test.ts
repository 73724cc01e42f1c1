/**
 * Issue 12's secrets scan of a full flow on the sandbox: jobs go webhook → launcher → hand-off →
 * in_progress → completed, one fails, one's first JIT registration fails, one's instance never starts
 * its runner (the reconciler cleans it up), one runs with a PAT (token mode), and deliveries with a
 * bad signature come in between; every Lambda logs at its most verbose (DEBUG). Then every log line, every SQS message
 * sent, every EC2 request and instance tag, the runner user data, the ledger's items and the Lambdas'
 * environment are searched (test/secret-leaks.ts) for the App private key, the webhook secret, the
 * PAT, every installation token and every JIT config the GitHub fake issued.
 *
 * Not searched: the hand-off table, which carries each JIT config to its instance by design (its
 * IAM keeps every other reader out: test/infra/iam-questions.test.ts), and SSM, which holds the keys.
 */
import { randomUUID } from "node:crypto";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { renderBootstrap } from "../src/components/runner-bootstrap";
import { SECRETS_SCAN } from "./adversarial-counts";
import { signedApiGatewayEvent } from "./fixtures/webhooks";
import {
  captureOutput,
  drainLauncher,
  linuxConfig,
  PAT_PARAM,
  payloadOf,
  ROLE_ID,
  reportProgress,
  sentMessageBodies,
  startWorld,
  stateChange,
  useGitHubFake,
  WEBHOOK_SECRET,
  type World,
} from "./lifecycle-support";
import { githubErrors } from "./sandbox/github";
import type { Job } from "./sandbox/github-state";
import { findLeaks, type KnownSecret, type ScannedText } from "./secret-leaks";

const MIN = 60_000;

let world: World;
let webhook: typeof import("../lambda/webhook").handler;
let launcher: (event: SQSEvent) => Promise<SQSBatchResponse>;
let ec2Events: typeof import("../lambda/ec2-events").handler;
let reconcile: typeof import("../lambda/reconciler").reconcile;
let now: number;

beforeAll(async () => {
  vi.useFakeTimers({ toFake: ["Date"] });
  now = Math.ceil(Date.now() / MIN + 1) * MIN;
  vi.setSystemTime(now);
  world = await startWorld(
    "secrets",
    {
      POWERTOOLS_LOG_LEVEL: "DEBUG",
      GITHUB_TOKEN_PARAM: PAT_PARAM,
      IDLE_TIMEOUT_MINUTES: "10",
    },
    [linuxConfig],
  );
  ({ handler: webhook } = await import("../lambda/webhook"));
  ({ handler: launcher } = await import("../lambda/launcher"));
  ({ handler: ec2Events } = await import("../lambda/ec2-events"));
  ({ reconcile } = await import("../lambda/reconciler"));
});

afterAll(async () => {
  vi.restoreAllMocks();
  await world?.close();
  vi.useRealTimers();
});

function advance(ms: number) {
  now += ms;
  vi.setSystemTime(now);
}

async function deliver(action: "queued" | "in_progress" | "completed", job: Job, secret = WEBHOOK_SECRET) {
  return webhook(
    await signedApiGatewayEvent(payloadOf(world, action, job), secret, { deliveryId: randomUUID() }),
  );
}

async function instanceOf(job: Job): Promise<string> {
  return (await world.getJob(String(job.id))).instanceId!;
}

/** The bootstrap: takes the JIT config off the hand-off item and starts the runner. */
async function startRunner(instanceId: string) {
  const { readHandoff } = await import("../lambda/adapters/handoff");
  const item = await readHandoff(instanceId);
  await reportProgress(world, instanceId, { fetchedAt: new Date(now).toISOString() });
  const runner = world.github.state.connectRunner(item!.jitConfig!);
  await reportProgress(world, instanceId, { runnerStartedAt: new Date(now).toISOString() });
  return runner;
}

/** The job runs on the instance's runner and ends with `conclusion`; the instance terminates. */
async function runToEnd(job: Job, conclusion: "success" | "failure") {
  const instanceId = await instanceOf(job);
  const runner = await startRunner(instanceId);
  const gh = world.github.state;
  gh.assignJob(runner.id, job.id);
  expect((await deliver("in_progress", gh.jobs.get(job.id)!)).statusCode).toBeLessThan(300);
  advance(2 * MIN);
  gh.completeJob(job.id, conclusion);
  expect((await deliver("completed", gh.jobs.get(job.id)!)).statusCode).toBeLessThan(300);
  await terminate(instanceId);
}

async function terminate(instanceId: string) {
  world.sandbox.ec2.setState(instanceId, "terminated");
  await ec2Events(stateChange(instanceId, "terminated", new Date(now)));
}

function seedJob(): Job {
  const { owner, name } = world.github.repo;
  return world.github.state.seedJob({ owner, repo: name, labels: linuxConfig.labels });
}

/** The flow: every path above, in App mode and then in token mode. */
async function runFlow() {
  const gh = world.github.state;
  const [succeeds, fails, firstJitFails, neverStarts] = [seedJob(), seedJob(), seedJob(), seedJob()];
  for (const job of [succeeds, fails, neverStarts]) await deliver("queued", job);
  expect((await deliver("queued", succeeds, "not-the-webhook-secret")).statusCode).toBe(401);
  await drainLauncher(world, launcher);
  await runToEnd(succeeds, "success");
  await runToEnd(fails, "failure");

  world.sandbox.faults.fail(
    "github",
    "actions/generate-runner-jitconfig-for-org",
    githubErrors.serverError(503),
  );
  await deliver("queued", firstJitFails);
  await drainLauncher(world, launcher);
  world.sandbox.faults.clear();
  advance(7 * MIN);
  await drainLauncher(world, launcher);
  await runToEnd(firstJitFails, "success");

  // The runner that never starts: the reconciler ends its instance and registration.
  for (let tick = 0; tick < SECRETS_SCAN.reconcilerTicks; tick++) {
    advance(MIN);
    await reconcile();
  }
  expect(world.sandbox.ec2.instance(await instanceOf(neverStarts))?.state).not.toBe("running");

  await useGitHubFake(world.sandbox, world.github, { mode: "token" });
  const withPat = seedJob();
  await deliver("queued", withPat);
  await drainLauncher(world, launcher);
  await runToEnd(withPat, "success");
  advance(MIN);
  await reconcile();
  expect(gh.jobs.get(withPat.id)?.status).toBe("completed");
}

/** Every secret the flow had: the stack's and every token and JIT config the GitHub fake issued. */
function knownSecrets(): KnownSecret[] {
  const gh = world.github.state;
  return [
    { name: "App private key", value: world.github.privateKey },
    { name: "webhook secret", value: WEBHOOK_SECRET },
    { name: "PAT", value: world.github.pat },
    ...[...gh.tokens.keys()].map((token, i) => ({ name: `installation token ${i + 1}`, value: token })),
    ...[...gh.runners.values()].map((r) => ({ name: `JIT config of ${r.name}`, value: r.encodedJitConfig })),
  ];
}

/** Everything the scan searches, as found after the flow. */
async function scannedTexts(output: string[]): Promise<ScannedText[]> {
  const { sandbox, tables } = world;
  const { Items = [] } = await sandbox.dynamodb.client.send(new ScanCommand({ TableName: tables.jobs }));
  return [
    ...output.map((line, i) => ({ where: `output chunk ${i + 1}`, text: line })),
    ...sentMessageBodies(sandbox).map((text, i) => ({ where: `SQS message ${i + 1}`, text })),
    ...sandbox
      .callsTo("ec2")
      .map((c, i) => ({ where: `EC2 ${c.operation} ${i + 1}`, text: JSON.stringify(c.params) })),
    ...sandbox.ec2
      .instances()
      .map((i) => ({ where: `tags of ${i.instanceId}`, text: JSON.stringify(i.tags) })),
    {
      where: "runner user data",
      text: renderBootstrap({ region: "us-east-1", handoffTable: tables.handoff, runnerRoleId: ROLE_ID }),
    },
    ...Items.map((item, i) => ({ where: `jobs table item ${i + 1}`, text: JSON.stringify(item) })),
    { where: "the Lambdas' environment", text: JSON.stringify(process.env) },
  ];
}

it("a full flow leaks no App key, webhook secret, installation token, PAT or JIT config", async ({
  onTestFailed,
}) => {
  const print = process.stderr.write.bind(process.stderr);
  const output = captureOutput();
  onTestFailed(() => {
    print(`--- Lambda output of the failed test ---\n${output.join("")}\n`);
  });
  await runFlow();
  vi.restoreAllMocks();

  const secrets = knownSecrets();
  const texts = await scannedTexts(output);
  // The flow did what the scan relies on: it logged, sent, tagged, and GitHub issued what is looked for.
  for (const logged of ["accepted", "rejected", "JIT registration failed", "delete-runner", "ec2 event"])
    expect(output.join(""), `a log line with ${logged}`).toContain(logged);
  expect(secrets.filter((s) => s.name.startsWith("installation token")).length).toBeGreaterThan(0);
  expect(secrets.filter((s) => s.name.startsWith("JIT config")).length).toBeGreaterThanOrEqual(
    SECRETS_SCAN.jobs,
  );
  expect(texts.filter((t) => t.where.startsWith("SQS message")).length).toBeGreaterThanOrEqual(5);
  expect(findLeaks(secrets, texts)).toEqual([]);
}, 600_000);

it("flags a planted leak: a JIT config, a token cut short, a base64 secret, a JSON-escaped key", () => {
  const key =
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAplantedkeyplantedkeyplanted0123456789abcdefABCDEF\n-----END RSA PRIVATE KEY-----\n";
  const jit = Buffer.from(JSON.stringify({ ".runner": randomUUID(), ".credentials": randomUUID() })).toString(
    "base64",
  );
  const token = `ghs_${"0123456789abcdef".repeat(3)}`;
  const secrets = [
    { name: "key", value: key },
    { name: "JIT", value: jit },
    { name: "token", value: token },
    { name: "secret", value: "whsec-planted-0123456789abcdef" },
  ];
  const planted: ScannedText[] = [
    { where: "log", text: JSON.stringify({ level: "DEBUG", message: "hand-off", jitConfig: jit }) },
    { where: "error", text: `Authorization: token ${token.slice(0, 30)}…` },
    { where: "user data", text: Buffer.from("whsec-planted-0123456789abcdef").toString("base64") },
    { where: "env", text: JSON.stringify({ KEY: key }) },
  ];
  expect(findLeaks(secrets, planted)).toEqual([
    "key in env",
    "JIT in log",
    "token in error",
    "secret in user data",
  ]);
  expect(
    findLeaks(secrets, [{ where: "clean", text: "runner-fleet test-i-0123 launched, token ghs_***" }]),
  ).toEqual([]);
});
