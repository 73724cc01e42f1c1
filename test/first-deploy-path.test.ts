/**
 * Issue 11's first deploy, end to end: a deployed stack (the sandbox as AWS, the real webhook Lambda
 * over HTTP) → the setup page in headless chromium → the GitHub fake's (GHES) "Create GitHub App" page,
 * by keyboard → App id and key stored by the stand-in `pulumi` CLI → the App's webhook active, at the
 * stack's URL with its secret → GitHub's ping answered by the Lambda → `doctor`, on the same stand-in
 * CLI, all ✔. What the setup does not touch is seeded as in test/scripts-doctor.test.ts. The GHES host
 * is https://ghes.example.com (config takes https only), routed to the fake. Failing steps keep a
 * screenshot under test-results/first-deploy-path/.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sign } from "@octokit/webhooks-methods";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { runDoctor } from "../scripts/lib/doctor";
import { renderChecks } from "../scripts/lib/doctor-check";
import { createApp } from "../scripts/lib/github-app";
import { pulumiCli } from "../scripts/lib/pulumi";
import {
  AMI_PARAMS,
  LABEL_CONFIGS,
  LABEL_PATH,
  SECRET,
  STACK,
  seedDeployedStack,
  serveWebhook,
  webhookSettings,
} from "./deployed-stack-support";
import { operatorStandIn } from "./operator-pulumi-stand-in";
import { type Sandbox, startSandbox } from "./sandbox";
import type { GitHubFake } from "./sandbox/github";
import type { LocalServer } from "./sandbox/http";
import { deployedStack, setupStandIn } from "./setup-pulumi-stand-in";
import { quietLambdaLogs } from "./webhook-support";

const SLOW = 600_000;
const CHROMIUM = "/usr/bin/chromium";
const GHES = "https://ghes.example.com";
const SHOTS = join(import.meta.dirname, "..", "test-results", "first-deploy-path");

let sandbox: Sandbox;
let github: GitHubFake;
let webhook: LocalServer;
let restoreEnv: () => void;
let jobsTable: string;
let context: BrowserContext;
let tmp: string;

/** Runs `steps`; on failure keeps a screenshot of the page before rethrowing. */
async function step(page: Page, name: string, steps: () => Promise<void>): Promise<void> {
  try {
    await steps();
  } catch (error) {
    await mkdir(SHOTS, { recursive: true });
    const file = join(SHOTS, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n(screenshot: ${file})`, {
      cause: error,
    });
  }
}

/** GitHub pings the App's webhook as configured (URL and secret) and records the delivery. */
async function ping(): Promise<number> {
  const { url, secret } = github.state.hookConfig;
  const body = JSON.stringify({ zen: "Design for failure.", hook_id: 1 });
  const { status } = await fetch(url, {
    method: "POST",
    body,
    headers: {
      "content-type": "application/json",
      "x-github-event": "ping",
      "x-github-delivery": crypto.randomUUID(),
      "x-hub-signature-256": await sign(secret ?? "", body),
    },
  }).then(async (r) => ({ status: r.status, text: await r.text() }));
  const outcome = status >= 200 && status < 300 ? "OK" : `Invalid HTTP Response: ${status}`;
  github.state.seedDelivery({ event: "ping", status_code: status, status: outcome });
  return status;
}

quietLambdaLogs();

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
  sandbox = await startSandbox({ github: { flavour: "ghes" } });
  github = sandbox.github!;
  jobsTable = (await sandbox.createTables("first-deploy")).jobs;
  const launch = sandbox.createQueue("first-deploy-launch", { dlq: true });
  restoreEnv = sandbox.useEnv(webhookSettings(jobsTable, launch.url, github.org));
  await seedDeployedStack(sandbox, jobsTable);
  webhook = await serveWebhook();
  tmp = await mkdtemp(join(tmpdir(), "first-deploy-"));
  context = await chromium.launchPersistentContext(join(tmp, "chromium"), {
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"],
    headless: true,
    timeout: SLOW,
  });
  context.setDefaultTimeout(SLOW);
  context.setDefaultNavigationTimeout(SLOW);
}, SLOW);

afterAll(async () => {
  await context?.close();
  restoreEnv?.();
  await webhook?.close();
  await sandbox?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

it(
  "takes a deployed stack to a created App, a ping answered and doctor all ✔",
  async () => {
    // The stack deployed before the App: its webhook URL and generated secret are outputs, no App yet.
    const cli = deployedStack(github.org, {
      webhookUrl: webhook.url,
      webhookSecret: SECRET,
      jobsTableName: jobsTable,
      launchQueueName: "first-deploy-launch",
      deadLetterQueueName: "first-deploy-launch-dlq",
      amiParameterNames: AMI_PARAMS,
      labelConfigParameterPath: LABEL_PATH,
    })
      .set("aws:region", sandbox.region)
      .set("runner-fleet:labelConfigs", JSON.stringify(LABEL_CONFIGS));
    await context.route(`${GHES}/**`, async (route) => {
      const url = route.request().url().replace(GHES, new URL(github.url).origin);
      await route.fulfill({ response: await route.fetch({ url, maxRedirects: 0 }) });
    });
    const page = context.pages()[0] ?? (await context.newPage());

    // 1. `npm run setup:github-app create`: the setup page, by keyboard, to GitHub's create page.
    let pageUrl: ((url: string) => void) | undefined;
    const served = new Promise<string>((resolve) => {
      pageUrl = resolve;
    });
    const credentialsDir = await mkdtemp(join(tmp, "credentials-"));
    const setupPulumi = pulumiCli({ run: setupStandIn(cli), stack: STACK });
    const creating = createApp(
      { githubUrl: GHES, apiUrl: github.url, credentialsDirs: [credentialsDir], timeoutMs: SLOW },
      { pulumi: setupPulumi, log: () => {}, onReady: (u) => pageUrl!(u) },
    );
    const setupUrl = await Promise.race([served, creating.then(() => "")]);
    await step(page, "setup-page", async () => {
      await page.goto(setupUrl);
      expect(await page.locator("main").innerText()).toContain(webhook.url);
      await page.keyboard.press("Tab");
      await Promise.all([
        page.waitForURL(`${GHES}/organizations/${github.org}/settings/apps/new?**`),
        page.keyboard.press("Enter"),
      ]);
    });

    // 2. GitHub's page: Tab past the name to "Create GitHub App", Enter; GitHub redirects back.
    await step(page, "github-create-page", async () => {
      expect(await page.locator("h1").innerText()).toBe(`Create GitHub App for ${github.org}`);
      await page.keyboard.press("Tab");
      await page.keyboard.press("Tab");
      await Promise.all([
        page.waitForURL(`${new URL(setupUrl).origin}/callback?**`),
        page.keyboard.press("Enter"),
      ]);
      expect((await creating).appId).toBe(github.appId);
      expect(await page.locator("h1").innerText()).toBe("The App is created");
    });

    // 3. The credentials are in the stack config, through the stand-in CLI; no file was left behind.
    expect(cli.config.get("runner-fleet:github.url")?.value).toBe(GHES);
    expect(cli.config.get("runner-fleet:github.appId")?.value).toBe(String(github.appId));
    expect(cli.config.get("runner-fleet:githubAppPrivateKey")).toEqual({
      value: github.privateKey.trim(),
      secret: true,
    });
    expect(await readdir(credentialsDir)).toEqual([]);

    // 4. The App's webhook: active, at the stack's URL, signing with the stack's secret.
    expect(github.state.hookActive).toBe(true);
    expect(github.state.hookConfig).toMatchObject({ url: webhook.url, secret: SECRET });

    // 5. GitHub pings the new webhook: the real Lambda verifies the signature and answers.
    expect(await ping()).toBe(200);

    // 6. `npm run doctor`, reading what the setup stored: every check ✔.
    const pulumi = pulumiCli({ run: operatorStandIn(cli, STACK), stack: STACK });
    const checks = await runDoctor({ apiUrl: github.url }, { pulumi });
    const report = renderChecks(checks).join("\n");
    const notOk = checks.filter((c) => c.level !== "ok");
    expect(notOk, report).toEqual([]);
    expect(report).toMatch(/all \d+ checks passed$/);
    expect(checks.find((c) => c.name === "webhook secret")?.detail, report).toMatch(
      /a signed ping answered pong/,
    );
    expect(github.violations()).toEqual([]);
  },
  SLOW,
);
