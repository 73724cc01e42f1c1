import { createAppAuth } from "@octokit/auth-app";
import { Octokit } from "@octokit/core";
import { retry } from "@octokit/plugin-retry";
import { throttling } from "@octokit/plugin-throttling";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type GitHubFake, type GitHubFlavour, githubErrors, startGitHubFake } from "./sandbox/github";

const FleetOctokit = Octokit.plugin(retry, throttling);

interface ClientOptions {
  installation?: boolean;
  onSecondaryRateLimit?: (
    retryAfter: number,
    options: unknown,
    octokit: unknown,
    retryCount: number,
  ) => boolean;
  onRateLimit?: (retryAfter: number, options: unknown, octokit: unknown, retryCount: number) => boolean;
}

/** The production stack: core + auth-app + retry + throttling, only the timing scaled down. */
function appClient(fake: GitHubFake, options: ClientOptions = {}) {
  return new FleetOctokit({
    baseUrl: fake.url,
    authStrategy: createAppAuth,
    auth: {
      appId: fake.appId,
      privateKey: fake.privateKey,
      ...(options.installation === false ? {} : { installationId: fake.installationId }),
    },
    // Seconds become milliseconds so back-off is observable without slowing the suite.
    retry: { retryAfterBaseValue: 10 },
    throttle: {
      retryAfterBaseValue: 10,
      onSecondaryRateLimit: options.onSecondaryRateLimit ?? ((_after, _opts, _o, count) => count < 2),
      onRateLimit: options.onRateLimit ?? ((_after, _opts, _o, count) => count < 2),
    },
    log: { debug() {}, info() {}, warn() {}, error() {} },
  });
}

function jitOrg(
  octokit: ReturnType<typeof appClient>,
  fake: GitHubFake,
  name: string,
  labels = ["self-hosted", "linux"],
) {
  return octokit.request("POST /orgs/{org}/actions/runners/generate-jitconfig", {
    org: fake.org,
    name,
    runner_group_id: 1,
    labels,
  });
}

describe.each<GitHubFlavour>(["dotcom", "ghes"])("GitHub fake (%s)", (flavour) => {
  let fake: GitHubFake;

  beforeAll(async () => {
    fake = await startGitHubFake({ flavour });
  });
  afterAll(() => fake.close());
  afterEach(() => {
    // Every request the real clients sent, and every response the fake produced, matched GitHub's description.
    expect(fake.violations()).toEqual([]);
    fake.faults.clear();
  });

  it("serves the API under the flavour's base path", () => {
    expect(fake.url).toMatch(
      flavour === "ghes" ? /^http:\/\/127\.0\.0\.1:\d+\/api\/v3$/ : /^http:\/\/127\.0\.0\.1:\d+$/,
    );
  });

  it("authenticates the App with a verified JWT and finds its installation", async () => {
    const app = appClient(fake, { installation: false });
    const { data } = await app.request("GET /app");
    expect(data?.id).toBe(fake.appId);
    const org = await app.request("GET /orgs/{org}/installation", { org: fake.org });
    expect(org.data.id).toBe(fake.installationId);
    const repo = await app.request("GET /repos/{owner}/{repo}/installation", {
      owner: fake.repo.owner,
      repo: fake.repo.name,
    });
    expect(repo.data.id).toBe(fake.installationId);
    expect(fake.faults.callsTo("github", "apps/get-authenticated")).toHaveLength(1);
  });

  it("registers JIT runners for the org and a repo with an installation token", async () => {
    const octokit = appClient(fake);
    const org = await jitOrg(octokit, fake, `org-${flavour}-1`, ["self-hosted", "linux", "x64"]);
    expect(org.status).toBe(201);
    expect(org.data.runner).toMatchObject({
      name: `org-${flavour}-1`,
      status: "offline",
      busy: false,
      ephemeral: true,
    });
    expect(org.data.runner.labels.map((l) => l.name)).toEqual(["self-hosted", "linux", "x64"]);

    const repo = await octokit.request("POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig", {
      owner: fake.repo.owner,
      repo: fake.repo.name,
      name: `repo-${flavour}-1`,
      runner_group_id: 1,
      labels: ["self-hosted"],
    });
    expect(repo.status).toBe(201);
    expect(repo.data.encoded_jit_config).not.toBe(org.data.encoded_jit_config);
    // Opaque base64 that the fake maps back to its runner.
    expect(Buffer.from(repo.data.encoded_jit_config, "base64").toString("base64")).toBe(
      repo.data.encoded_jit_config,
    );
    expect(fake.state.runnerForJitConfig(org.data.encoded_jit_config)?.id).toBe(org.data.runner.id);
    expect(fake.state.runnerForJitConfig(repo.data.encoded_jit_config)?.id).toBe(repo.data.runner.id);

    const tokenCalls = fake.faults.callsTo("github", "apps/create-installation-access-token");
    expect(tokenCalls).toHaveLength(1);
    expect(fake.faults.callsTo("github", "actions/generate-runner-jitconfig-for-org").at(-1)).toMatchObject({
      status: 201,
      params: { org: fake.org, name: `org-${flavour}-1` },
    });
  });
});
