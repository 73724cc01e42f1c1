/**
 * The launcher's GitHub adapter against the GitHub fake (dotcom and GHES): App and PAT auth, org and
 * repo scope, retries of 5xx and secondary rate limits, installation token reuse, and every request
 * valid per GitHub's OpenAPI description.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  DEFAULT_GITHUB_TUNING,
  githubApp,
  githubForInstallation,
  tuneGitHub,
} from "../lambda/adapters/github-client";
import { listFailedDeliveries, redeliver, webhookSource } from "../lambda/adapters/github-hooks";
import { getWorkflowJob, rerunJob } from "../lambda/adapters/github-jobs";
import { deleteRunner, generateJitConfig, listRunners, scopeFor } from "../lambda/adapters/github-runners";
import { LAUNCHER_TIMEOUT_SECONDS } from "../src/components/launcher-tuning";
import { KEY_PARAM, PAT_PARAM, useGitHubFake } from "./lifecycle-support";
import { type Sandbox, startSandbox } from "./sandbox";
import { failNextOrgJitConfigs, type GitHubFake, githubErrors, startGitHubFake } from "./sandbox/github";
import { quietLambdaLogs } from "./webhook-support";

let sandbox: Sandbox;
let dotcom: GitHubFake;
let ghes: GitHubFake;
let restoreEnv: () => void;

quietLambdaLogs();

beforeAll(async () => {
  sandbox = await startSandbox();
  [dotcom, ghes] = await Promise.all([
    startGitHubFake({ faults: sandbox.faults, clock: sandbox.clock }),
    startGitHubFake({ flavour: "ghes", org: "enterprise-org" }),
  ]);
  restoreEnv = sandbox.useEnv({
    STACK_NAME: "test",
    GITHUB_PRIVATE_KEY_PARAM: KEY_PARAM,
    GITHUB_TOKEN_PARAM: PAT_PARAM,
    GITHUB_WRITES_PER_MINUTE: "60000",
  });
});

afterAll(async () => {
  restoreEnv?.();
  await Promise.all([dotcom?.close(), ghes?.close(), sandbox?.close()]);
});

beforeEach(() => useGitHubFake(sandbox, dotcom));

afterEach(() => {
  sandbox.faults.clear();
  expect(dotcom.violations()).toEqual([]);
  expect(ghes.violations()).toEqual([]);
});

const orgJob = (fake: GitHubFake) => ({ owner: fake.org, repo: `${fake.repo.owner}/${fake.repo.name}` });

describe("generateJitConfig", () => {
  it("registers an org runner with the App's installation token, reused across calls", async () => {
    const gh = await githubForInstallation(dotcom.installationId);
    const before = sandbox.callsTo("github", "apps/create-installation-access-token").length;
    const scope = scopeFor(orgJob(dotcom));
    expect(scope).toEqual({ kind: "org", org: dotcom.org });
    const first = await generateJitConfig(gh, scope, {
      name: "test-i-0123456789abcdef0",
      runnerGroupId: 1,
      labels: ["self-hosted", "linux", "x64"],
    });
    await generateJitConfig(gh, scope, {
      name: "test-i-0123456789abcdef1",
      runnerGroupId: 1,
      labels: ["self-hosted"],
    });

    const runner = dotcom.state.runnerForJitConfig(first.encodedJitConfig);
    expect(runner).toMatchObject({
      id: first.runnerId,
      name: "test-i-0123456789abcdef0",
      runnerGroupId: 1,
      workFolder: "_work",
      scope: { org: dotcom.org },
    });
    expect(runner?.labels).toEqual(expect.arrayContaining(["self-hosted", "linux", "x64"]));
    expect(sandbox.callsTo("github", "apps/create-installation-access-token").length - before).toBe(1);
  });

  it("registers a repository runner on GHES (base URL …/api/v3)", async () => {
    await useGitHubFake(sandbox, ghes, { scope: "repo" });
    expect(ghes.url).toMatch(/\/api\/v3$/);
    const gh = await githubForInstallation(ghes.installationId);
    const scope = scopeFor(orgJob(ghes));
    expect(scope).toEqual({ kind: "repo", owner: ghes.repo.owner, repo: ghes.repo.name });
    const jit = await generateJitConfig(gh, scope, {
      name: "test-i-0aaa",
      runnerGroupId: 7,
      labels: ["self-hosted"],
    });
    expect(ghes.state.runnerForJitConfig(jit.encodedJitConfig)?.scope).toEqual({
      owner: ghes.repo.owner,
      repo: ghes.repo.name,
    });
    expect(ghes.state.listRunners({ org: ghes.org })).toHaveLength(0);
  });

  it("works with a personal access token", async () => {
    await useGitHubFake(sandbox, dotcom, { mode: "token" });
    const gh = await githubForInstallation(undefined);
    const before = sandbox.callsTo("github", "apps/create-installation-access-token").length;
    const jit = await generateJitConfig(gh, scopeFor(orgJob(dotcom)), {
      name: "test-i-0pat",
      runnerGroupId: 1,
      labels: ["self-hosted"],
    });
    expect(dotcom.state.runnerForJitConfig(jit.encodedJitConfig)?.name).toBe("test-i-0pat");
    expect(sandbox.callsTo("github", "apps/create-installation-access-token").length).toBe(before);
  });

  it("retries a 5xx and a secondary rate limit, registering once", async () => {
    const gh = await githubForInstallation(dotcom.installationId);
    failNextOrgJitConfigs(sandbox.faults, githubErrors.serverError(502), githubErrors.secondaryRateLimit(1));
    const calls = sandbox.callsTo("github", "actions/generate-runner-jitconfig-for-org").length;
    const jit = await generateJitConfig(gh, scopeFor(orgJob(dotcom)), {
      name: "test-i-0retry",
      runnerGroupId: 1,
      labels: ["self-hosted"],
    });
    expect(sandbox.callsTo("github", "actions/generate-runner-jitconfig-for-org").length - calls).toBe(3);
    expect(dotcom.state.listRunners().filter((r) => r.name === "test-i-0retry")).toHaveLength(1);
    expect(jit.runnerId).toBeGreaterThan(0);
  });

  it("gives up on a secondary rate limit longer than one invocation can wait", async () => {
    const gh = await githubForInstallation(dotcom.installationId);
    sandbox.faults.fail(
      "github",
      "actions/generate-runner-jitconfig-for-org",
      githubErrors.secondaryRateLimit(3600),
    );
    await expect(
      generateJitConfig(gh, scopeFor(orgJob(dotcom)), {
        name: "test-i-0slow",
        runnerGroupId: 1,
        labels: ["x"],
      }),
    ).rejects.toMatchObject({ status: 403 });
  });
});

describe("request timeout", () => {
  it("gives up on a request GitHub never answers well within the launcher's timeout", () => {
    const { serverErrorRetries, requestTimeoutMs } = DEFAULT_GITHUB_TUNING;
    // Each try waits out the timeout; plugin-retry waits 1 s, 4 s, 9 s… between tries.
    const tries = serverErrorRetries + 1;
    const retryWaits = Array.from({ length: serverErrorRetries }, (_, i) => (i + 1) ** 2);
    const worstSeconds = (tries * requestTimeoutMs) / 1000 + retryWaits.reduce((a, b) => a + b, 0);
    expect(worstSeconds).toBeLessThanOrEqual(LAUNCHER_TIMEOUT_SECONDS * 0.6);
  });
});

describe("write pacing", () => {
  it("registers a burst within the per-minute budget at once, and paces what goes beyond it", async () => {
    process.env.GITHUB_WRITES_PER_MINUTE = "30";
    tuneGitHub({ retryAfterBaseValue: 5 });
    try {
      const gh = await githubForInstallation(dotcom.installationId);
      const scope = scopeFor(orgJob(dotcom));
      const start = Date.now();
      const finished: number[] = [];
      await Promise.all(
        Array.from({ length: 31 }, (_, i) =>
          generateJitConfig(gh, scope, {
            name: `test-i-0pace${i}`,
            runnerGroupId: 1,
            labels: ["self-hosted"],
          }).then(() => finished.push(Date.now() - start)),
        ),
      );
      finished.sort((a, b) => a - b);
      // 30 tokens at once; the 31st waits for the next refill (one token per 2 s at 30/min).
      expect(finished[29]).toBeLessThan(1_500);
      expect(finished[30]).toBeGreaterThanOrEqual(1_500);
    } finally {
      process.env.GITHUB_WRITES_PER_MINUTE = "60000";
      tuneGitHub({ retryAfterBaseValue: 5 });
    }
  });
});

describe("runners, jobs and deliveries", () => {
  it("lists runners by name and deletes one (a second delete is fine)", async () => {
    const gh = await githubForInstallation(dotcom.installationId);
    const scope = scopeFor(orgJob(dotcom));
    const jit = await generateJitConfig(gh, scope, {
      name: "test-i-0list",
      runnerGroupId: 1,
      labels: ["self-hosted"],
    });
    const found = await listRunners(gh, scope, { name: "test-i-0list" });
    expect(found.map((r) => r.id)).toEqual([jit.runnerId]);
    await deleteRunner(gh, scope, jit.runnerId);
    await deleteRunner(gh, scope, jit.runnerId);
    expect(await listRunners(gh, scope, { name: "test-i-0list" })).toEqual([]);
  });

  it("reads a workflow job and re-runs a completed one", async () => {
    const gh = await githubForInstallation(dotcom.installationId);
    const job = dotcom.state.seedJob({
      owner: dotcom.repo.owner,
      repo: dotcom.repo.name,
      status: "completed",
      conclusion: "failure",
    });
    const repo = `${dotcom.repo.owner}/${dotcom.repo.name}`;
    expect(await getWorkflowJob(gh, repo, job.id)).toMatchObject({ id: job.id, status: "completed" });
    expect(await getWorkflowJob(gh, repo, 999_999_999)).toBeUndefined();
    await rerunJob(gh, repo, job.id);
    expect(dotcom.state.reruns.map((r) => r.jobId)).toContain(job.id);
  });

  it("lists failed deliveries across pages, skipping those redelivered successfully, and redelivers", async () => {
    const gh = await githubApp();
    const since = new Date(Date.now() - 60_000);
    const failed = dotcom.state.seedDelivery({
      event: "workflow_job",
      status: "Invalid HTTP Response: 502",
      status_code: 502,
    });
    const healed = dotcom.state.seedDelivery({ event: "workflow_job", status: "timed out", status_code: 0 });
    dotcom.state.seedDelivery({ event: "workflow_job", guid: healed.guid });
    for (let i = 0; i < 120; i++) dotcom.state.seedDelivery({ event: "workflow_job" });
    const list = await listFailedDeliveries(gh, since);
    expect(list.map((d) => d.guid)).toEqual([failed.guid]);
    await redeliver(gh, failed.id);
    expect(dotcom.state.redeliveryAttempts.map((a) => a.deliveryId)).toContain(failed.id);
  });

  it.each([
    ["dotcom", () => dotcom],
    ["GHES", () => ghes],
  ])(
    "token mode (%s): reads and redelivers an org's and a repository's webhook, each its own",
    async (_, fakeOf) => {
      const fake = fakeOf();
      await useGitHubFake(sandbox, fake, { mode: "token" });
      const gh = await githubForInstallation();
      const since = new Date(fake.state.now() - 60_000);
      const orgHook = fake.state.addWebhook({ owner: fake.org });
      const repoHook = fake.state.addWebhook({ owner: fake.repo.owner, repo: fake.repo.name });
      const failing = { event: "workflow_job", status: "Invalid HTTP Response: 502", status_code: 502 };
      const atOrg = fake.state.seedDelivery({ ...failing, hookId: orgHook });
      const atRepo = fake.state.seedDelivery({ ...failing, hookId: repoHook });
      const atApp = fake.state.seedDelivery(failing);
      const org = webhookSource({ owner: fake.org, hookId: orgHook });
      const repo = webhookSource({ owner: fake.repo.owner, repo: fake.repo.name, hookId: repoHook });
      expect(org).toEqual({ kind: "org", org: fake.org, hookId: orgHook });
      expect((await listFailedDeliveries(gh, since, org)).map((d) => d.id)).toEqual([atOrg.id]);
      expect((await listFailedDeliveries(gh, since, repo)).map((d) => d.id)).toEqual([atRepo.id]);
      const before = fake.state.redeliveryAttempts.length;
      await redeliver(gh, atOrg.id, org);
      await redeliver(gh, atRepo.id, repo);
      const attempts = fake.state.redeliveryAttempts.slice(before).map((a) => a.deliveryId);
      expect(attempts).toEqual([atOrg.id, atRepo.id]);
      // A delivery of another webhook is not found through this one (GitHub answers 404).
      await expect(redeliver(gh, atApp.id, org)).rejects.toMatchObject({ status: 404 });
      // Both attempts are the hooks' own deliveries now: read back as delivered.
      expect(await listFailedDeliveries(gh, since, org)).toEqual([]);
    },
  );
});
