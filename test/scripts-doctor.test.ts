/**
 * `npm run doctor` against a deployed stack played by the sandbox (jobs table, queues, SSM, EC2
 * images, CloudWatch alarms), the GitHub fake (the App, its installation, webhook config and
 * deliveries), the real webhook Lambda served over HTTP, and a stand-in Pulumi CLI. A healthy setup
 * is all ✔; each failure that can be staged is ✖ with its fix; a stopped pool is ✔, ! or ✖ as it
 * is full, filling or rotating, or left untended by the reconciler.
 */
import { DeleteItemCommand } from "@aws-sdk/client-dynamodb";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { marshall } from "@aws-sdk/util-dynamodb";
import { sign } from "@octokit/webhooks-methods";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { recordReconcilerHeartbeat } from "../lambda/adapters/reserved-items";
import { RESERVED_KEYS } from "../lambda/shared/reserved-keys";
import { doctorCli, runDoctor } from "../scripts/lib/doctor";
import { type Check, renderChecks } from "../scripts/lib/doctor-check";
import { pulumiCli } from "../scripts/lib/pulumi";
import {
  AMI_PARAMS,
  addPoolInstance,
  LABEL_CONFIGS,
  LABEL_PATH,
  PREFIX,
  SECRET,
  SECRET_PARAM,
  STACK,
  seedDeployedStack,
  seedPool,
  serveWebhook,
  webhookSettings,
} from "./deployed-stack-support";
import { operatorStandIn } from "./operator-pulumi-stand-in";
import { type Sandbox, startSandbox } from "./sandbox";
import { type GitHubFake, startGitHubFake } from "./sandbox/github";
import type { LocalServer } from "./sandbox/http";
import { FakePulumi } from "./scripts-support";

let sandbox: Sandbox;
let github: GitHubFake;
let webhook: LocalServer;
let restoreEnv: () => void;
let jobsTable: string;
let poolTable: string;
let dlqUrl: string;
let cli: FakePulumi;

/** GitHub delivers an event: signed with the App's webhook secret, posted, recorded with the answer. */
async function deliver(event: string, payload: object = {}) {
  const body = JSON.stringify(payload);
  const response = await fetch(webhook.url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-github-event": event,
      "x-github-delivery": crypto.randomUUID(),
      "x-hub-signature-256": await sign(github.state.hookConfig.secret ?? "", body),
    },
    body,
  });
  await response.text();
  const ok = response.status >= 200 && response.status < 300;
  return github.state.seedDelivery({
    event,
    status_code: response.status,
    status: ok ? "OK" : `Invalid HTTP Response: ${response.status}`,
  });
}

/** A deployed, healthy stack: every part doctor checks is in place. */
async function deployHealthy() {
  await sandbox.reset();
  github.state.reset();
  github.clearViolations();
  cli = new FakePulumi({
    webhookUrl: webhook.url,
    webhookSecret: SECRET,
    dashboardUrl: "https://console.aws.amazon.com/cloudwatch/home#dashboards:name=runner-fleet-dev",
    jobsTableName: jobsTable,
    poolTableName: poolTable,
    launchQueueName: "doctor-launch",
    deadLetterQueueName: "doctor-launch-dlq",
    amiParameterNames: AMI_PARAMS,
    labelConfigParameterPath: LABEL_PATH,
  })
    .set("aws:region", sandbox.region)
    .set("runner-fleet:github.owner", github.org)
    .set("runner-fleet:github.appId", String(github.appId))
    .set("runner-fleet:githubAppPrivateKey", github.privateKey.trim(), true)
    .set("runner-fleet:labelConfigs", JSON.stringify(LABEL_CONFIGS));
  await seedDeployedStack(sandbox, jobsTable, 3);
  Object.assign(github.state.hookConfig, {
    url: webhook.url,
    content_type: "json",
    insecure_ssl: "0",
    secret: SECRET,
  });
  await deliver("ping", { zen: "Keep it logically awesome.", hook_id: 1 });
  await deliver("installation", { action: "created" });
}

const doctor = () =>
  runDoctor(
    { apiUrl: github.url },
    { pulumi: pulumiCli({ run: operatorStandIn(cli, STACK), stack: STACK }) },
  );
const byName = (checks: Check[], name: string) => {
  const found = checks.find((c) => c.name === name);
  expect(found, `${name} in\n${renderChecks(checks).join("\n")}`).toBeDefined();
  return found!;
};

beforeAll(async () => {
  sandbox = await startSandbox({ github: true });
  github = sandbox.github!;
  ({ jobs: jobsTable, pool: poolTable } = await sandbox.createTables("doctor"));
  const launch = sandbox.createQueue("doctor-launch", { dlq: true });
  dlqUrl = launch.dlqUrl!;
  // POOL_TABLE: the pool is seeded with the Lambdas' own adapter.
  restoreEnv = sandbox.useEnv({
    ...webhookSettings(jobsTable, launch.url, github.org),
    POOL_TABLE: poolTable,
  });
  sandbox.ssm.put(SECRET_PARAM, SECRET, { type: "SecureString" });
  webhook = await serveWebhook();
});

afterAll(async () => {
  restoreEnv?.();
  await webhook?.close();
  await sandbox?.close();
});

// The webhook Lambda logs each delivery: kept out of the output unless a test fails.
beforeEach((context) => {
  const chunks: string[] = [];
  const print = process.stderr.write.bind(process.stderr);
  for (const stream of [process.stdout, process.stderr])
    vi.spyOn(stream, "write").mockImplementation(
      (chunk: string | Uint8Array) => chunks.push(String(chunk)) > 0,
    );
  context.onTestFailed(() => {
    print(`--- output of the failed test ---\n${chunks.join("")}`);
  });
});
beforeEach(deployHealthy);
afterEach(() => {
  vi.restoreAllMocks();
  expect(github.violations()).toEqual([]);
});

describe("npm run doctor", () => {
  it("passes every check of a healthy stack", async () => {
    const checks = await doctor();
    const text = renderChecks(checks).join("\n");
    expect(
      checks.filter((c) => c.level !== "ok"),
      text,
    ).toEqual([]);
    expect(checks.map((c) => c.name)).toEqual([
      "Pulumi stack",
      "stack config",
      "GitHub App",
      "App installed",
      "App webhook config",
      "App webhook active",
      "webhook secret",
      "webhook deliveries (last hour)",
      "AWS region",
      "label configs published",
      "arm64 AMI",
      "x64 AMI",
      "reconciler",
      "launch queue",
      "dead-letter queue",
      "alarms",
    ]);
    expect(byName(checks, "App installed").detail).toBe(`on ${github.org}, all repositories`);
    expect(byName(checks, "webhook secret").detail).toMatch(
      /verifies the stack's secret \(a signed ping answered pong\) and accepted GitHub's latest signed delivery \(installation, \d+ s ago\)/,
    );
    expect(byName(checks, "x64 AMI").detail).toMatch(
      /built 3 d ago with the then-latest runner \(the image does not record its version\)/,
    );
    expect(text).toMatch(/^✔ reconciler: last run 3\d s ago$/m);
    expect(text).toMatch(/all 16 checks passed$/);
  });

  it("passes them on GitHub Enterprise Server too", async () => {
    const dotcom = github;
    github = await startGitHubFake({ flavour: "ghes" });
    try {
      await deployHealthy();
      cli.set("runner-fleet:github.url", "https://ghes.example.com");
      const checks = await doctor();
      expect(
        checks.filter((c) => c.level !== "ok"),
        renderChecks(checks).join("\n"),
      ).toEqual([]);
      expect(byName(checks, "GitHub App").detail).toBe(
        `runner-fleet-sandbox (id ${github.appId}) on https://ghes.example.com (GitHub Enterprise Server ${github.state.enterpriseVersion})`,
      );
      expect(github.violations()).toEqual([]);
    } finally {
      await github.close();
      github = dotcom;
    }
  });

  it("prints one JSON object with --json, and exits 0 when nothing failed, 1 when a check failed", async () => {
    const run = async () => {
      const out: string[] = [];
      const code = await doctorCli(["--json", "--stack", STACK, "--api-url", github.url], {
        pulumi: (stack) => pulumiCli({ run: operatorStandIn(cli, STACK), stack }),
        out: (line) => out.push(line),
        err: (line) => out.push(line),
      });
      expect(out).toHaveLength(1);
      return { code, report: JSON.parse(out[0]!) as { checks: Check[] } };
    };
    const healthy = await run();
    expect(healthy.code).toBe(0);
    expect(healthy.report.checks[0]).toEqual({
      name: "Pulumi stack",
      ok: true,
      level: "ok",
      detail: "dev, deployed (Pulumi CLI v3.230.0)",
      fix: null,
    });
    sandbox.cloudwatch.putAlarm(`${PREFIX}-dlq-not-empty`, {
      state: "ALARM",
      reason: "Threshold Crossed: 1 datapoint [2.0] > 0",
    });
    const alarmed = await run();
    expect(alarmed.code).toBe(1);
    expect(alarmed.report.checks.find((c) => c.name === "alarms")).toMatchObject({
      ok: false,
      level: "fail",
      detail: `${PREFIX}-dlq-not-empty in alarm (Threshold Crossed: 1 datapoint [2.0] > 0)`,
      fix: expect.stringContaining("dashboards:name=runner-fleet-dev"),
    });
  });

  it("says when the App is not installed on the owner, with the install link", async () => {
    const installation = github.state.installations.get(github.installationId)!;
    github.state.installations.delete(installation.id);
    try {
      const check = byName(await doctor(), "App installed");
      expect(check).toMatchObject({ level: "fail", detail: `the App is not installed on ${github.org}` });
      expect(check.fix).toMatch(
        /^install it on acme \(all repositories\): https:\/\/github\.com\/apps\/.+\/installations\/new$/,
      );
    } finally {
      github.state.installations.set(installation.id, installation);
    }
  });

  it("names the configured repositories a selected installation leaves out (repo scope)", async () => {
    const installation = github.state.installations.get(github.installationId)!;
    Object.assign(installation, { repositorySelection: "selected", repositories: [github.repo.name] });
    cli
      .set("runner-fleet:github.scope", "repo")
      .set("runner-fleet:github.repositories", '["widgets","gadgets"]');
    try {
      const check = byName(await doctor(), "App installed");
      expect(check.detail).toBe("on acme, but not on gadgets (in github.repositories); it covers widgets");
      expect(check.fix).toMatch(/^add them under Repository access: .+\/settings\/installations\/\d+$/);
    } finally {
      Object.assign(installation, { repositorySelection: "all", repositories: undefined });
    }
  });

  it("finds a webhook pointing elsewhere", async () => {
    github.state.hookConfig.url = "https://old-stack.execute-api.eu-west-1.amazonaws.com/webhook";
    const check = byName(await doctor(), "App webhook config");
    expect(check).toMatchObject({
      level: "fail",
      detail: `it points at https://old-stack.execute-api.eu-west-1.amazonaws.com/webhook, not this stack's ${webhook.url}`,
      fix: "npm run setup:github-app -- set-webhook",
    });
  });

  it("takes no delivery since a recent installation for an inactive webhook", async () => {
    github.state.reset();
    const check = byName(await doctor(), "App webhook active");
    expect(check.level).toBe("fail");
    expect(check.detail).toMatch(
      /^no delivery since the App was installed \d+ s ago: its webhook is inactive/,
    );
    expect(check.fix).toMatch(
      /^tick Active under Webhook in the App's settings and save: https:\/\/github\.com\/.+\/settings\/apps\//,
    );
  });

  it("catches GitHub signing with another secret than the stack's", async () => {
    github.state.hookConfig.secret = "a-secret-from-an-older-setup-0000";
    await deliver("installation", { action: "new_permissions_accepted" });
    const checks = await doctor();
    expect(byName(checks, "webhook secret")).toMatchObject({
      level: "fail",
      detail: expect.stringMatching(
        /^GitHub signs with another secret: its latest delivery \(installation, \d+ s ago\) was refused with 401$/,
      ),
      fix: "npm run setup:github-app -- set-webhook",
    });
    expect(byName(checks, "webhook deliveries (last hour)")).toMatchObject({
      level: "fail",
      detail: "1 of 3 failed and were not redelivered: 1 × Invalid HTTP Response: 401",
    });
  });

  it("catches a deployed webhook that holds another secret than the stack", async () => {
    cli.outputs = { ...cli.outputs, webhookSecret: "a-rotated-secret-not-yet-deployed-00" };
    expect(byName(await doctor(), "webhook secret")).toMatchObject({
      level: "fail",
      detail: "the deployed webhook refuses a ping signed with the stack's secret",
      fix: expect.stringContaining("pulumi up"),
    });
  });

  it("fails on launch requests in the dead-letter queue, with how to read and purge them", async () => {
    const client = new SQSClient({
      region: sandbox.region,
      endpoint: sandbox.endpoints.sqs,
      credentials: sandbox.credentials,
    });
    await client.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: '{"jobId":"1"}' }));
    client.destroy();
    const check = byName(await doctor(), "dead-letter queue");
    expect(check).toMatchObject({
      level: "fail",
      detail: "1 launch requests failed repeatedly and wait there",
    });
    expect(check.fix).toContain(`aws sqs purge-queue --queue-url ${dlqUrl}`);
  });

  it("fails for an architecture without its AMI parameter, and for a missing label config", async () => {
    await sandbox.ssm.reset();
    sandbox.ssm.put(AMI_PARAMS.x64, sandbox.ec2.images()[0]!.imageId);
    sandbox.ssm.put(
      `${LABEL_PATH}/linux-x64`,
      JSON.stringify({
        name: "linux-x64",
        labels: ["linux", "x64"],
        arch: "x64",
        instanceTypes: ["m7i.large"],
        launchTemplateId: "lt-1",
        maxRunners: 1,
      }),
    );
    const checks = await doctor();
    expect(byName(checks, "arm64 AMI")).toMatchObject({
      level: "fail",
      detail: `no image yet: ${AMI_PARAMS.arm64} is not written (the first build takes 30–45 min after \`pulumi up\`)`,
      fix: expect.stringContaining(`name=name,values=${PREFIX}-arm64`),
    });
    expect(byName(checks, "label configs published")).toMatchObject({
      level: "fail",
      detail: `linux-arm64-large is not published (under ${LABEL_PATH})`,
      fix: "run `pulumi up`",
    });
  });

  it("fails when the reconciler has not run for two minutes", async () => {
    await sandbox.dynamodb.client.send(
      new DeleteItemCommand({
        TableName: jobsTable,
        Key: marshall({ jobId: RESERVED_KEYS.reconcilerHeartbeat }),
      }),
    );
    const missing = byName(await doctor(), "reconciler");
    expect(missing).toMatchObject({
      level: "fail",
      detail: "no run recorded (no heartbeat item in the jobs table)",
    });
    await recordReconcilerHeartbeat(
      { ranAt: new Date(Date.now() - 10 * 60_000).toISOString(), failed: 0, unreadable: [] },
      jobsTable,
    );
    // Two runs may overlap: the one that ran later keeps its heartbeat.
    await recordReconcilerHeartbeat(
      { ranAt: new Date(Date.now() - 20 * 60_000).toISOString(), failed: 0, unreadable: [] },
      jobsTable,
    );
    const stale = byName(await doctor(), "reconciler");
    expect(stale).toMatchObject({ level: "fail", detail: "last run 10 min ago: it runs every minute" });
    expect(stale.fix).toContain(`aws logs tail /aws/lambda/${PREFIX}-reconciler`);
  });

  it("stops at a stack that is not deployed, and at a config `pulumi up` would refuse, in its words", async () => {
    const outputs = cli.outputs;
    cli.outputs = undefined;
    const undeployed = await doctor();
    expect(undeployed).toEqual([
      expect.objectContaining({
        name: "Pulumi stack",
        level: "fail",
        detail: "stack dev is not deployed yet (it has no webhookUrl output)",
      }),
    ]);
    cli.outputs = outputs;
    cli.config.delete("runner-fleet:github.owner");
    cli.set("runner-fleet:github.url", "ghes.example.com");
    const invalid = await doctor();
    expect(invalid.at(-1)).toMatchObject({ name: "stack config", level: "fail" });
    expect(invalid.at(-1)!.detail).toMatch(/^Invalid stack config in Pulumi\.dev\.yaml \(2 problems\):/);
    expect(invalid.at(-1)!.detail).toContain("runner-fleet:github.owner: got nothing (not set)");
    expect(invalid.at(-1)!.detail).not.toMatch(/Too small|Invalid input/);
  });
});

describe("npm run doctor on a stopped pool", () => {
  const MIN = 60;
  /**
   * linux-x64 gets a pool of `size` in the stack config and in what `pulumi up` publishes (its disk:
   * the default 50 GiB; its AMI: the x64 parameter's; the region: us-east-1).
   */
  const withPool = (size: number) => {
    const x64 = { ...LABEL_CONFIGS["linux-x64"], pool: { size } };
    cli.set("runner-fleet:labelConfigs", JSON.stringify({ ...LABEL_CONFIGS, "linux-x64": x64 }));
    const published = {
      name: "linux-x64",
      ...x64,
      launchTemplateId: "lt-0x64",
      maxRunners: 10,
      diskSizeGb: 50,
    };
    sandbox.ssm.put(
      `${LABEL_PATH}/linux-x64`,
      JSON.stringify({ ...published, image: { parameter: AMI_PARAMS.x64 } }),
    );
  };
  /** The sandbox emptied and the stack deployed again, with linux-x64's pool of `size`. */
  const redeploy = async (size: number) => {
    await sandbox.reset();
    await seedDeployedStack(sandbox, jobsTable, 3);
    withPool(size);
  };
  /** The AMI the x64 parameter names: the config's current one. */
  const currentAmi = () => sandbox.ec2.images().find((i) => i.architecture === "x86_64")!.imageId;
  const poolCheck = async () => {
    const checks = await doctor();
    expect(checks.filter((c) => c.name.startsWith("pool "))).toHaveLength(1);
    return { check: byName(checks, "pool linux-x64"), text: renderChecks(checks).join("\n") };
  };

  it("passes a pool whose ready members are the size it wants, with their idle cost", async () => {
    withPool(2);
    const ami = currentAmi();
    await seedPool(sandbox, "linux-x64", [
      { state: "ready", launchedSecondsAgo: 60 * MIN, amiId: ami },
      { state: "ready", launchedSecondsAgo: 90 * MIN, amiId: ami },
      { state: "claimed", launchedSecondsAgo: 120 * MIN, amiId: ami },
    ]);
    const { check, text } = await poolCheck();
    expect(check).toMatchObject({ level: "ok", fix: null });
    expect(text).toContain(
      "✔ pool linux-x64: wants 2 now (size 2); 2 ready, 1 claimed, idle cost $8.00/month",
    );
  });

  it("warns while the pool fills, and while the reconciler rotates a member of an older AMI", async () => {
    withPool(2);
    const ami = currentAmi();
    await seedPool(sandbox, "linux-x64", [
      { state: "ready", launchedSecondsAgo: 60 * MIN, amiId: ami },
      { state: "warming", launchedSecondsAgo: 5 * MIN, amiId: ami },
    ]);
    const filling = (await poolCheck()).check;
    expect(filling).toMatchObject({ level: "warn", ok: true });
    expect(filling.detail).toBe(
      "wants 2 now (size 2); 1 warming, 1 ready, idle cost $4.00/month; short by 1 (1 warming): the reconciler fills it within the config's limits; jobs start cold meanwhile",
    );
    expect(filling.fix).toContain(`aws logs tail /aws/lambda/${PREFIX}-reconciler`);
    await redeploy(2);
    const [stale] = await seedPool(sandbox, "linux-x64", [
      { state: "ready", launchedSecondsAgo: 60 * MIN, amiId: "ami-0older00000000000" },
      { state: "ready", launchedSecondsAgo: 30 * MIN, amiId: currentAmi() },
    ]);
    const rotating = (await poolCheck()).check;
    expect(rotating.level).toBe("warn");
    expect(rotating.detail).toContain(
      `${stale}: retire, built from ami-0older00000000000, the config's AMI is now ${currentAmi()}`,
    );
  });

  it("fails on a member warming past the reconciler's limit, and on a tagged instance without an item", async () => {
    withPool(1);
    const [stuck] = await seedPool(sandbox, "linux-x64", [
      { state: "warming", launchedSecondsAgo: 25 * MIN, amiId: currentAmi() },
    ]);
    const warming = (await poolCheck()).check;
    expect(warming).toMatchObject({ level: "fail", ok: false });
    expect(warming.detail).toBe(
      `${stuck} has been warming for 25 min (the reconciler retires a member after 20 min): the reconciler should have terminated it`,
    );
    expect(warming.fix).toContain("docs/on-call.md");
    await redeploy(1);
    await seedPool(sandbox, "linux-x64", [
      { state: "ready", launchedSecondsAgo: 60 * MIN, amiId: currentAmi() },
    ]);
    const stray = addPoolInstance(sandbox, { config: "linux-x64", launchedSecondsAgo: 30 * MIN }, "stopped");
    // Just launched, its item may not be written yet: not a failure.
    addPoolInstance(sandbox, { config: "linux-x64", launchedSecondsAgo: 10 }, "running");
    const untracked = (await poolCheck()).check;
    expect(untracked.level).toBe("fail");
    expect(untracked.detail).toBe(
      `${stray} (stopped, launched 30 min ago) is tagged as a member but has no pool item: the reconciler should have terminated it`,
    );
  });

  it("says a stack without the pool table output needs `pulumi up`, and nothing of a stack without pools", async () => {
    withPool(1);
    const { poolTableName: _, ...older } = cli.outputs!;
    cli.outputs = older;
    expect(byName(await doctor(), "pools")).toMatchObject({
      level: "fail",
      detail: "the stack has no poolTableName output",
    });
    cli.set("runner-fleet:labelConfigs", JSON.stringify(LABEL_CONFIGS));
    expect((await doctor()).filter((c) => c.name.startsWith("pool"))).toEqual([]);
  });
});
