import { generateKeyPairSync, randomUUID } from "node:crypto";
import { createAppAuth } from "@octokit/auth-app";
import { Octokit } from "@octokit/core";
import { retry } from "@octokit/plugin-retry";
import { throttling } from "@octokit/plugin-throttling";
import Bottleneck from "bottleneck";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  GITHUB_OPERATIONS,
  type GitHubFake,
  type GitHubFlavour,
  githubErrors,
  startGitHubFake,
} from "./sandbox/github";
import { loadGitHubOpenApi } from "./sandbox/github-openapi";
import { Clock } from "./sandbox/http";

const FleetOctokit = Octokit.plugin(retry, throttling);
type Client = InstanceType<typeof FleetOctokit>;
type LimitHandler = (retryAfter: number, options: object, octokit: object, retryCount: number) => boolean;

interface ClientOptions {
  installation?: boolean;
  installationId?: number;
  privateKey?: string;
  /** Scale of plugin back-off: ms per second GitHub asks for. */
  retryAfterBaseValue?: number;
  onSecondaryRateLimit?: LimitHandler;
  onRateLimit?: LimitHandler;
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** The production stack: core + auth-app + retry + throttling; only the back-off time is scaled down. */
function appClient(fake: GitHubFake, options: ClientOptions = {}): Client {
  const base = options.retryAfterBaseValue ?? 10;
  return new FleetOctokit({
    baseUrl: fake.url,
    authStrategy: createAppAuth,
    auth: {
      appId: fake.appId,
      privateKey: options.privateKey ?? fake.privateKey,
      ...(options.installation === false
        ? {}
        : { installationId: options.installationId ?? fake.installationId }),
    },
    retry: { retryAfterBaseValue: base },
    throttle: {
      // plugin-throttling spaces writes by a second by default; the launcher brings its own limiter too.
      id: randomUUID(),
      write: new Bottleneck.Group({ maxConcurrent: 1, minTime: 0 }),
      retryAfterBaseValue: base,
      onSecondaryRateLimit: options.onSecondaryRateLimit ?? ((_after, _opts, _o, count) => count < 2),
      onRateLimit: options.onRateLimit ?? ((_after, _opts, _o, count) => count < 2),
    },
    log: quiet,
  });
}

function tokenClient(fake: GitHubFake, token: string): Client {
  return new FleetOctokit({
    baseUrl: fake.url,
    auth: token,
    throttle: { id: randomUUID(), onSecondaryRateLimit: () => false, onRateLimit: () => false },
    retry: { enabled: false },
    log: quiet,
  });
}

function jitOrg(octokit: Client, fake: GitHubFake, name: string, labels = ["self-hosted", "linux"]) {
  return octokit.request("POST /orgs/{org}/actions/runners/generate-jitconfig", {
    org: fake.org,
    name,
    runner_group_id: 1,
    labels,
  });
}

function jitRepo(octokit: Client, fake: GitHubFake, name: string) {
  return octokit.request("POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig", {
    owner: fake.repo.owner,
    repo: fake.repo.name,
    name,
    runner_group_id: 1,
    labels: ["self-hosted"],
  });
}

async function status(promise: Promise<unknown>): Promise<number> {
  try {
    await promise;
    return 200;
  } catch (error) {
    return (error as { status: number }).status;
  }
}

function statuses(fake: GitHubFake, operation: string): number[] {
  return fake.faults.callsTo("github", operation).map((c) => c.status);
}

describe.each<GitHubFlavour>(["dotcom", "ghes"])("GitHub fake (%s)", (flavour) => {
  let fake: GitHubFake;
  let n = 0;
  const unique = (prefix: string) => `${prefix}-${flavour}-${++n}`;

  beforeAll(async () => {
    fake = await startGitHubFake({ flavour });
  });
  afterAll(async () => {
    // Each operation the fake serves answered successfully at least once, so its response schema was checked.
    const succeeded = new Set(
      fake.faults.calls.filter((c) => c.status >= 200 && c.status < 300).map((c) => c.operation),
    );
    expect(GITHUB_OPERATIONS.filter((op) => !succeeded.has(op))).toEqual([]);
    await fake.close();
  });
  afterEach(() => {
    // Every request the real clients sent and every response the fake produced matched GitHub's description.
    expect(fake.violations()).toEqual([]);
    fake.faults.clear();
  });

  it("serves the API under the flavour's base path", async () => {
    expect(fake.url).toMatch(
      flavour === "ghes" ? /^http:\/\/127\.0\.0\.1:\d+\/api\/v3$/ : /^http:\/\/127\.0\.0\.1:\d+$/,
    );
    const origin = new URL(fake.url).origin;
    const wrongBase = await fetch(flavour === "ghes" ? `${origin}/app` : `${origin}/api/v3/app`);
    expect(wrongBase.status).toBe(404);
  });

  describe("auth", () => {
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
      expect(await status(app.request("GET /orgs/{org}/installation", { org: "not-installed" }))).toBe(404);
    });

    it("rejects a JWT signed with another key, and one without auth, with 401", async () => {
      const { privateKey } = generateKeyPairSync("rsa", {
        modulusLength: 2048,
        privateKeyEncoding: { type: "pkcs1", format: "pem" },
        publicKeyEncoding: { type: "spki", format: "pem" },
      });
      const forged = appClient(fake, { installation: false, privateKey });
      await expect(forged.request("GET /app")).rejects.toMatchObject({
        status: 401,
        message: expect.stringContaining("A JSON web token could not be decoded"),
      });
      expect((await fetch(`${fake.url}/app`)).status).toBe(401);
    });

    it.each([
      ["ahead", 20 * 60_000, "jwt_exp"],
      ["behind", -20 * 60_000, "jwt_iat"],
    ])(
      "rejects a JWT when GitHub's clock is %s; auth-app corrects from the Date header",
      async (_how, skew, code) => {
        fake.state.clockSkewMs = skew;
        try {
          const app = appClient(fake, { installation: false });
          const { data } = await app.request("GET /app");
          expect(data?.id).toBe(fake.appId);
          expect(statuses(fake, "apps/get-authenticated").slice(-2)).toEqual([401, 200]);
          expect(fake.faults.callsTo("github", "apps/get-authenticated").at(-2)?.errorCode).toBe(code);
        } finally {
          fake.state.clockSkewMs = 0;
        }
      },
    );

    it("accepts installation tokens and the PAT as token or Bearer, and rejects unknown or expired tokens", async () => {
      const app = appClient(fake, { installation: false });
      const { data } = await app.request("POST /app/installations/{installation_id}/access_tokens", {
        installation_id: fake.installationId,
        permissions: { organization_self_hosted_runners: "write" },
      });
      expect(data.token).toMatch(/^ghs_/);
      expect(Date.parse(data.expires_at) - Date.now()).toBeGreaterThan(55 * 60_000);

      const runnersUrl = `${fake.url}/orgs/${fake.org}/actions/runners`;
      for (const header of [
        `token ${data.token}`,
        `Bearer ${data.token}`,
        `bearer ${fake.pat}`,
        `token ${fake.pat}`,
      ]) {
        expect((await fetch(runnersUrl, { headers: { authorization: header } })).status).toBe(200);
      }
      const bad = await fetch(runnersUrl, { headers: { authorization: "token ghs_not-a-token" } });
      expect(bad.status).toBe(401);
      expect(await bad.json()).toMatchObject({ message: "Bad credentials" });
      expect((await fetch(runnersUrl)).status).toBe(401);

      // The narrow token cannot touch repository administration.
      expect(await status(jitRepo(tokenClient(fake, data.token), fake, unique("narrow")))).toBe(403);

      fake.state.expireTokens();
      expect((await fetch(runnersUrl, { headers: { authorization: `token ${data.token}` } })).status).toBe(
        401,
      );
      // The PAT works for token mode end to end.
      expect((await jitOrg(tokenClient(fake, fake.pat), fake, unique("pat"))).status).toBe(201);
    });

    it("refuses permissions the installation was not granted, and other organisations' resources", async () => {
      const other = fake.state.addOrg(`other-${flavour}`, { permissions: { metadata: "read" } });
      const app = appClient(fake, { installation: false });
      await expect(
        app.request("POST /app/installations/{installation_id}/access_tokens", {
          installation_id: other.id,
          permissions: { administration: "write" },
        }),
      ).rejects.toMatchObject({ status: 422 });

      const otherClient = appClient(fake, { installationId: other.id });
      const forbidden = otherClient.request("POST /orgs/{org}/actions/runners/generate-jitconfig", {
        org: other.account.login,
        name: unique("nope"),
        runner_group_id: 1,
        labels: ["self-hosted"],
      });
      await expect(forbidden).rejects.toMatchObject({
        status: 403,
        message: expect.stringContaining("Resource not accessible by integration"),
      });
      // A token of one installation does not see another organisation.
      expect(await status(jitOrg(otherClient, fake, unique("cross")))).toBe(404);
    });
  });

  describe("JIT runners", () => {
    it("registers JIT runners for the org and a repo with an installation token", async () => {
      const octokit = appClient(fake);
      const name = unique("org");
      const org = await jitOrg(octokit, fake, name, ["self-hosted", "linux", "x64"]);
      expect(org.status).toBe(201);
      expect(org.data.runner).toMatchObject({ name, status: "offline", busy: false, ephemeral: true });
      expect(org.data.runner.labels.map((l) => l.name)).toEqual(["self-hosted", "linux", "x64"]);

      const repo = await jitRepo(octokit, fake, unique("repo"));
      expect(repo.status).toBe(201);
      expect(repo.data.encoded_jit_config).not.toBe(org.data.encoded_jit_config);
      // Opaque base64 that the fake maps back to its runner.
      expect(Buffer.from(repo.data.encoded_jit_config, "base64").toString("base64")).toBe(
        repo.data.encoded_jit_config,
      );
      expect(fake.state.runnerForJitConfig(org.data.encoded_jit_config)?.id).toBe(org.data.runner.id);
      expect(fake.state.runnerForJitConfig(repo.data.encoded_jit_config)?.scope).toEqual({
        owner: fake.repo.owner,
        repo: fake.repo.name,
      });

      // One installation token served both registrations.
      const tokenCalls = fake.faults.callsTo("github", "apps/create-installation-access-token");
      expect(tokenCalls.at(-1)?.status).toBe(201);
      expect(fake.faults.callsTo("github", "actions/generate-runner-jitconfig-for-org").at(-1)).toMatchObject(
        {
          status: 201,
          params: { org: fake.org, name },
        },
      );
    });

    it("answers 409 for a name already registered in the scope, but allows it in another scope", async () => {
      const octokit = appClient(fake);
      const name = unique("dup");
      await jitOrg(octokit, fake, name);
      await expect(jitOrg(octokit, fake, name)).rejects.toMatchObject({ status: 409 });
      expect((await jitRepo(octokit, fake, name)).status).toBe(201);
    });

    it("answers 404 for an unknown runner group", async () => {
      const octokit = appClient(fake);
      const request = octokit.request("POST /orgs/{org}/actions/runners/generate-jitconfig", {
        org: fake.org,
        name: unique("nogroup"),
        runner_group_id: 999_999,
        labels: ["self-hosted"],
      });
      await expect(request).rejects.toMatchObject({ status: 404 });
    });

    it("lists runner groups", async () => {
      const group = fake.state.addRunnerGroup(fake.org, unique("group"));
      const { data } = await appClient(fake).request("GET /orgs/{org}/actions/runner-groups", {
        org: fake.org,
      });
      expect(data.runner_groups.map((g) => g.name)).toEqual(["Default", group.name]);
      expect(data.total_count).toBe(2);
    });
  });

  describe("request validation", () => {
    it("answers an invalid body with 422 and records the violation", async () => {
      const octokit = appClient(fake);
      const invalid = octokit.request("POST /orgs/{org}/actions/runners/generate-jitconfig", {
        org: fake.org,
        name: unique("invalid"),
        runner_group_id: "1" as unknown as number,
        labels: [],
      });
      await expect(invalid).rejects.toMatchObject({
        status: 422,
        message: expect.stringContaining("Invalid request"),
      });
      const violations = fake.violations();
      expect(violations).toHaveLength(1);
      expect(violations[0]).toMatchObject({
        operation: "actions/generate-runner-jitconfig-for-org",
        where: "body",
      });
      expect(violations[0]!.errors.join("\n")).toMatch(/runner_group_id must be integer/);
      expect(violations[0]!.errors.join("\n")).toMatch(/labels must NOT have fewer than 1 items/);
      expect(fake.faults.callsTo("github", "actions/generate-runner-jitconfig-for-org").at(-1)).toMatchObject(
        {
          status: 422,
          errorCode: "validation_failed",
        },
      );
      expect(fake.state.listRunners({ org: fake.org }).some((r) => r.name.startsWith("invalid"))).toBe(false);
      fake.clearViolations();
    });

    it("validates path and query parameters", async () => {
      const octokit = appClient(fake);
      await expect(
        octokit.request("GET /orgs/{org}/actions/runners", {
          org: fake.org,
          per_page: "many" as unknown as number,
        }),
      ).rejects.toMatchObject({ status: 422 });
      await expect(
        octokit.request("DELETE /orgs/{org}/actions/runners/{runner_id}", {
          org: fake.org,
          runner_id: "abc" as unknown as number,
        }),
      ).rejects.toMatchObject({ status: 422 });
      expect(fake.violations().map((v) => v.where)).toEqual(["query", "path"]);
      fake.clearViolations();
    });
  });

  describe("rate limits and faults", () => {
    it("honours a secondary rate limit: plugin-throttling waits retry-after, then succeeds", async () => {
      const seen: number[] = [];
      const octokit = appClient(fake, {
        onSecondaryRateLimit: (after, _o, _k, count) => {
          seen.push(after);
          return count < 1;
        },
      });
      fake.faults.fail(
        "github",
        "actions/generate-runner-jitconfig-for-org",
        githubErrors.secondaryRateLimit(3),
        {
          times: 1,
        },
      );
      const started = Date.now();
      const { status: code } = await jitOrg(octokit, fake, unique("secondary"));
      expect(code).toBe(201);
      expect(seen).toEqual([3]);
      // retry-after 3 s × 10 ms per second of this client.
      expect(Date.now() - started).toBeGreaterThanOrEqual(30);
      expect(statuses(fake, "actions/generate-runner-jitconfig-for-org").slice(-2)).toEqual([403, 201]);
    });

    it("limits JIT registrations per App with a token bucket that answers as a secondary rate limit", async () => {
      const limited = await startGitHubFake({ flavour, jitRateLimit: { burst: 2, perMinute: 60 } });
      try {
        const seen: number[] = [];
        // Real seconds here: the bucket refills on the wall clock.
        const octokit = appClient(limited, {
          retryAfterBaseValue: 1000,
          onSecondaryRateLimit: (after, _o, _k, count) => {
            seen.push(after);
            return count < 1;
          },
        });
        await jitOrg(octokit, limited, "bucket-1");
        await jitOrg(octokit, limited, "bucket-2");
        const started = Date.now();
        expect((await jitOrg(octokit, limited, "bucket-3")).status).toBe(201);
        expect(seen).toEqual([1]);
        expect(Date.now() - started).toBeGreaterThanOrEqual(900);
        expect(statuses(limited, "actions/generate-runner-jitconfig-for-org")).toEqual([201, 201, 403, 201]);
        expect(limited.violations()).toEqual([]);
      } finally {
        await limited.close();
      }
    });

    it("refills the JIT bucket on the sandbox clock", async () => {
      const clock = new Clock();
      clock.freeze();
      const limited = await startGitHubFake({ flavour, clock, jitRateLimit: { burst: 2, perMinute: 60 } });
      try {
        const octokit = appClient(limited, { onSecondaryRateLimit: () => false });
        await jitOrg(octokit, limited, "frozen-1");
        await jitOrg(octokit, limited, "frozen-2");
        await expect(jitOrg(octokit, limited, "frozen-3")).rejects.toMatchObject({
          status: 403,
          response: { headers: { "retry-after": "1" } },
        });
        clock.advance(999);
        await expect(jitOrg(octokit, limited, "frozen-3")).rejects.toMatchObject({ status: 403 });
        clock.advance(1);
        expect((await jitOrg(octokit, limited, "frozen-3")).status).toBe(201);
      } finally {
        await limited.close();
      }
    });

    it("retries 5xx with plugin-retry", async () => {
      fake.faults.fail("github", "actions/list-self-hosted-runners-for-org", githubErrors.serverError(502), {
        times: 2,
      });
      const { data } = await appClient(fake).request("GET /orgs/{org}/actions/runners", { org: fake.org });
      expect(data.total_count).toBeGreaterThanOrEqual(0);
      expect(statuses(fake, "actions/list-self-hosted-runners-for-org").slice(-3)).toEqual([502, 502, 200]);
    });

    it("sends primary rate limit headers on dotcom (not on GHES, where they are off by default) and plugin-throttling honours exhaustion", async () => {
      const octokit = appClient(fake);
      const first = await octokit.request("GET /orgs/{org}/actions/runners", { org: fake.org });
      const second = await octokit.request("GET /orgs/{org}/actions/runners", { org: fake.org });
      if (flavour === "dotcom") {
        expect(Number(second.headers["x-ratelimit-remaining"])).toBe(
          Number(first.headers["x-ratelimit-remaining"]) - 1,
        );
        expect(Number(second.headers["x-ratelimit-reset"]) * 1000).toBeGreaterThan(Date.now());
      } else {
        expect(second.headers["x-ratelimit-remaining"]).toBeUndefined();
      }

      const waits: number[] = [];
      const limitedClient = appClient(fake, {
        onRateLimit: (after, _o, _k, count) => {
          waits.push(after);
          return count < 1;
        },
      });
      fake.faults.fail("github", "actions/list-self-hosted-runners-for-org", githubErrors.rateLimited(2), {
        times: 1,
      });
      await limitedClient.request("GET /orgs/{org}/actions/runners", { org: fake.org });
      expect(waits).toHaveLength(1);
      // Reset in 2 s; the plugin adds a second.
      expect(waits[0]).toBeGreaterThanOrEqual(2);
      expect(waits[0]).toBeLessThanOrEqual(4);
    });

    it("answers every identity with 403 and remaining 0 while the primary limit is exhausted", async () => {
      const octokit = appClient(fake, { onRateLimit: () => false });
      await octokit.request("GET /orgs/{org}/actions/runners", { org: fake.org });
      fake.state.exhaustRateLimit(60);
      try {
        const error = await octokit
          .request("GET /orgs/{org}/actions/runners", { org: fake.org })
          .catch((e: { status: number; response: { headers: Record<string, string> } }) => e);
        expect(error).toMatchObject({ status: 403, response: { headers: { "x-ratelimit-remaining": "0" } } });
      } finally {
        fake.state.resetRateLimits();
      }
    });

    it("delays by the configured latency", async () => {
      fake.faults.latency("github", "actions/list-self-hosted-runners-for-org", 150);
      const started = Date.now();
      await appClient(fake).request("GET /orgs/{org}/actions/runners", { org: fake.org });
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    });
  });

  describe("runners", () => {
    it("lists runners with page pagination and total_count", async () => {
      const octokit = appClient(fake);
      const names = [unique("page"), unique("page"), unique("page")];
      for (const name of names) await jitOrg(octokit, fake, name);
      const total = fake.state.listRunners({ org: fake.org }).length;

      const first = await octokit.request("GET /orgs/{org}/actions/runners", { org: fake.org, per_page: 2 });
      expect(first.data.total_count).toBe(total);
      expect(first.data.runners).toHaveLength(2);
      expect(first.headers.link).toContain('rel="next"');
      const lastPage = Math.ceil(total / 2);
      const last = await octokit.request("GET /orgs/{org}/actions/runners", {
        org: fake.org,
        per_page: 2,
        page: lastPage,
      });
      expect(last.data.runners.length).toBe(total - 2 * (lastPage - 1));
      expect(last.headers.link ?? "").not.toContain('rel="next"');

      const byName = await octokit.request("GET /orgs/{org}/actions/runners", {
        org: fake.org,
        name: names[1],
      });
      expect(byName.data.runners.map((r) => r.name)).toEqual([names[1]]);

      const repoRunners = await octokit.request("GET /repos/{owner}/{repo}/actions/runners", {
        owner: fake.repo.owner,
        repo: fake.repo.name,
      });
      expect(repoRunners.data.runners.every((r) => !names.includes(r.name))).toBe(true);
    });

    it("deletes an idle runner (204) but not a busy one (422)", async () => {
      const octokit = appClient(fake);
      const { data } = await jitOrg(octokit, fake, unique("delete"));
      const runnerId = data.runner.id;
      fake.state.setRunner(runnerId, { status: "online", busy: true, os: "Linux" });
      const listed = await octokit.request("GET /orgs/{org}/actions/runners/{runner_id}", {
        org: fake.org,
        runner_id: runnerId,
      });
      expect(listed.data).toMatchObject({ status: "online", busy: true, os: "Linux" });

      const busy = octokit.request("DELETE /orgs/{org}/actions/runners/{runner_id}", {
        org: fake.org,
        runner_id: runnerId,
      });
      await expect(busy).rejects.toMatchObject({ status: 422 });

      fake.state.setRunner(runnerId, { busy: false });
      const deleted = await octokit.request("DELETE /orgs/{org}/actions/runners/{runner_id}", {
        org: fake.org,
        runner_id: runnerId,
      });
      expect(deleted.status).toBe(204);
      expect(fake.state.runnerForJitConfig(data.encoded_jit_config)).toBeUndefined();
      await expect(
        octokit.request("DELETE /orgs/{org}/actions/runners/{runner_id}", {
          org: fake.org,
          runner_id: runnerId,
        }),
      ).rejects.toMatchObject({ status: 404 });
    });

    it("deletes repository runners in their own scope only", async () => {
      const octokit = appClient(fake);
      const { data } = await jitRepo(octokit, fake, unique("repo-delete"));
      const wrongScope = octokit.request("DELETE /orgs/{org}/actions/runners/{runner_id}", {
        org: fake.org,
        runner_id: data.runner.id,
      });
      await expect(wrongScope).rejects.toMatchObject({ status: 404 });
      const deleted = await octokit.request("DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}", {
        owner: fake.repo.owner,
        repo: fake.repo.name,
        runner_id: data.runner.id,
      });
      expect(deleted.status).toBe(204);
    });
  });

  describe("runner lifecycle helpers", () => {
    it("connects a runner by its JIT config, runs a job on it and removes it when the job ends", async () => {
      const octokit = appClient(fake);
      const { data } = await jitOrg(octokit, fake, unique("life"));
      const job = fake.state.seedJob({ owner: fake.repo.owner, repo: fake.repo.name });
      expect(() => fake.state.assignJob(data.runner.id, job.id)).toThrow(/not online/);

      fake.state.connectRunner(data.encoded_jit_config);
      fake.state.assignJob(data.runner.id, job.id);
      const params = { org: fake.org, runner_id: data.runner.id };
      const running = await octokit.request("GET /orgs/{org}/actions/runners/{runner_id}", params);
      expect(running.data).toMatchObject({ status: "online", busy: true, os: "Linux" });
      const { data: seen } = await octokit.request("GET /repos/{owner}/{repo}/actions/jobs/{job_id}", {
        owner: fake.repo.owner,
        repo: fake.repo.name,
        job_id: job.id,
      });
      expect(seen).toMatchObject({
        status: "in_progress",
        runner_id: data.runner.id,
        runner_name: data.runner.name,
        runner_group_name: "Default",
      });

      fake.state.completeJob(job.id, "success");
      expect(fake.state.jobs.get(job.id)).toMatchObject({ status: "completed", conclusion: "success" });
      await expect(
        octokit.request("GET /orgs/{org}/actions/runners/{runner_id}", params),
      ).rejects.toMatchObject({
        status: 404,
      });
      expect(() => fake.state.connectRunner(data.encoded_jit_config)).toThrow(/no registered runner/);
    });

    it("gets a repository runner by id", async () => {
      const octokit = appClient(fake);
      const { data } = await jitRepo(octokit, fake, unique("get"));
      const { data: runner } = await octokit.request(
        "GET /repos/{owner}/{repo}/actions/runners/{runner_id}",
        {
          owner: fake.repo.owner,
          repo: fake.repo.name,
          runner_id: data.runner.id,
        },
      );
      expect(runner).toMatchObject({ id: data.runner.id, status: "offline", busy: false });
    });
  });

  describe("jobs", () => {
    it("returns a seeded job and re-runs it once completed", async () => {
      const octokit = appClient(fake);
      const job = fake.state.seedJob({
        owner: fake.repo.owner,
        repo: fake.repo.name,
        status: "in_progress",
        runner_name: "i-0abc",
        labels: ["self-hosted", "linux", "x64", "large"],
      });
      const params = { owner: fake.repo.owner, repo: fake.repo.name, job_id: job.id };
      const { data } = await octokit.request("GET /repos/{owner}/{repo}/actions/jobs/{job_id}", params);
      expect(data).toMatchObject({
        id: job.id,
        run_id: job.run_id,
        status: "in_progress",
        runner_name: "i-0abc",
        labels: ["self-hosted", "linux", "x64", "large"],
      });

      await expect(
        octokit.request("POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun", params),
      ).rejects.toMatchObject({ status: 403 });
      Object.assign(job, { status: "completed", conclusion: "failure" });
      const rerun = await octokit.request("POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun", params);
      expect(rerun.status).toBe(201);
      expect(fake.state.reruns.at(-1)).toMatchObject({ jobId: job.id });
      expect(fake.state.jobs.get(job.id)).toMatchObject({
        status: "queued",
        conclusion: null,
        run_attempt: 2,
      });

      await expect(
        octokit.request("GET /repos/{owner}/{repo}/actions/jobs/{job_id}", { ...params, job_id: 1 }),
      ).rejects.toMatchObject({ status: 404 });
    });
  });

  describe("webhook deliveries", () => {
    it("pages deliveries newest first with GitHub's cursor Link header, filters by status, and redelivers", async () => {
      const app = appClient(fake, { installation: false });
      const seeded = [1, 2, 3, 4, 5].map((i) =>
        fake.state.seedDelivery({
          event: "workflow_job",
          action: "queued",
          installation_id: fake.installationId,
          ...(i % 2 === 0 ? { status: "Invalid HTTP Response: 502", status_code: 502 } : {}),
          payload: { action: "queued", workflow_job: { id: i } },
        }),
      );

      const ids: number[] = [];
      let url: string | undefined = `${fake.url}/app/hook/deliveries?per_page=2`;
      let pages = 0;
      while (url) {
        const page: { data: { id: number }[]; headers: { link?: string } } = await app.request({
          method: "GET",
          url,
        });
        ids.push(...page.data.map((d) => d.id));
        pages++;
        url = /<([^>]+)>;\s*rel="next"/.exec(page.headers.link ?? "")?.[1];
        if (url) expect(url).toMatch(/[?&]cursor=/);
      }
      expect(pages).toBe(3);
      expect(ids).toEqual(seeded.map((d) => d.id).reverse());

      const failed = await app.request("GET /app/hook/deliveries", { status: "failure" });
      expect(failed.data.map((d) => d.id)).toEqual([seeded[3]!.id, seeded[1]!.id]);

      const one = await app.request("GET /app/hook/deliveries/{delivery_id}", { delivery_id: seeded[1]!.id });
      expect(one.data).toMatchObject({ guid: seeded[1]!.guid, status_code: 502, event: "workflow_job" });
      expect(one.data.request.payload).toEqual({ action: "queued", workflow_job: { id: 2 } });

      const redelivered: number[] = [];
      const stop = fake.state.onRedelivery((d) => redelivered.push(d.id));
      const attempt = await app.request("POST /app/hook/deliveries/{delivery_id}/attempts", {
        delivery_id: seeded[1]!.id,
      });
      stop();
      expect(attempt.status).toBe(202);
      expect(fake.state.redeliveryAttempts.at(-1)).toMatchObject({ deliveryId: seeded[1]!.id });
      const newest = await app.request("GET /app/hook/deliveries", { per_page: 1 });
      expect(newest.data[0]).toMatchObject({ guid: seeded[1]!.guid, redelivery: true, status: "OK" });
      expect(redelivered).toEqual([newest.data[0]!.id]);

      await expect(
        app.request("GET /app/hook/deliveries/{delivery_id}", { delivery_id: 1 }),
      ).rejects.toMatchObject({ status: 404 });
    });

    it("requires the App JWT, not an installation token", async () => {
      const response = await fetch(`${fake.url}/app/hook/deliveries`, {
        headers: { authorization: `token ${fake.pat}` },
      });
      expect(response.status).toBe(401);
    });
    it("keeps an org's and a repository's webhook deliveries apart, and redelivers each through its own webhook", async () => {
      const pat = tokenClient(fake, fake.pat);
      const { owner, name: repo } = fake.repo;
      const orgHook = fake.state.addWebhook({ owner: fake.org });
      const repoHook = fake.state.addWebhook({ owner, repo });
      const failing = { event: "workflow_job", status: "Invalid HTTP Response: 502", status_code: 502 };
      const atOrg = fake.state.seedDelivery({ ...failing, hookId: orgHook });
      const atRepo = fake.state.seedDelivery({ ...failing, hookId: repoHook });
      fake.state.seedDelivery(failing); // the App's

      const orgList = await pat.request("GET /orgs/{org}/hooks/{hook_id}/deliveries", {
        org: fake.org,
        hook_id: orgHook,
      });
      expect(orgList.data.map((d) => d.id)).toEqual([atOrg.id]);
      const repoList = await pat.request("GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries", {
        owner,
        repo,
        hook_id: repoHook,
      });
      expect(repoList.data.map((d) => d.id)).toEqual([atRepo.id]);

      const viaOrg = await pat.request("POST /orgs/{org}/hooks/{hook_id}/deliveries/{delivery_id}/attempts", {
        org: fake.org,
        hook_id: orgHook,
        delivery_id: atOrg.id,
      });
      expect(viaOrg.status).toBe(202);
      const viaRepo = await pat.request(
        "POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts",
        { owner, repo, hook_id: repoHook, delivery_id: atRepo.id },
      );
      expect(viaRepo.status).toBe(202);
      const newest = await pat.request("GET /orgs/{org}/hooks/{hook_id}/deliveries", {
        org: fake.org,
        hook_id: orgHook,
        per_page: 1,
      });
      expect(newest.data[0]).toMatchObject({ guid: atOrg.guid, redelivery: true, status: "OK" });

      // Another webhook's delivery, a hook of another owner, an unknown hook: 404, as on GitHub.
      await expect(
        pat.request("POST /orgs/{org}/hooks/{hook_id}/deliveries/{delivery_id}/attempts", {
          org: fake.org,
          hook_id: orgHook,
          delivery_id: atRepo.id,
        }),
      ).rejects.toMatchObject({ status: 404 });
      await expect(
        pat.request("GET /orgs/{org}/hooks/{hook_id}/deliveries", { org: fake.org, hook_id: repoHook }),
      ).rejects.toMatchObject({ status: 404 });
      await expect(
        pat.request("GET /orgs/{org}/hooks/{hook_id}/deliveries", { org: fake.org, hook_id: 1 }),
      ).rejects.toMatchObject({ status: 404 });
    });
  });

  describe("App setup (manifest conversion, webhook config)", () => {
    it("exchanges a manifest code once, without auth, for the App's id, key and webhook secret", async () => {
      const code = fake.state.createAppFromManifest({
        name: "fleet",
        url: "https://example.com",
        hook_attributes: { url: "https://example.com/hook", active: false },
        default_permissions: { metadata: "read" },
        default_events: ["workflow_job"],
      });
      const anonymous = tokenClient(fake, "unused");
      const convert = () =>
        anonymous.request("POST /app-manifests/{code}/conversions", { code, headers: { authorization: "" } });
      const created = await convert();
      expect(created.status).toBe(201);
      const { data } = created;
      expect(data).toMatchObject({ id: fake.appId, name: "fleet", pem: fake.privateKey });
      expect(data.webhook_secret).toMatch(/^[0-9a-f]{40}$/);
      expect(await status(convert())).toBe(404);
    });

    it("updates the App's webhook config with the App JWT and never returns the secret", async () => {
      const app = appClient(fake, { installation: false });
      // `url` is also Octokit's own option (the request URL), so the body goes as `data`.
      const patched = await app.request("PATCH /app/hook/config", {
        data: {
          url: "https://hooks.example.com/webhook",
          content_type: "json",
          secret: "s3cret-s3cret-s3cret-s3cret",
          insecure_ssl: "0",
        },
      } as never);
      expect(patched.data).toEqual({
        url: "https://hooks.example.com/webhook",
        content_type: "json",
        insecure_ssl: "0",
        secret: "********",
      });
      expect(fake.state.hookConfig.secret).toBe("s3cret-s3cret-s3cret-s3cret");
      const read = await app.request("GET /app/hook/config");
      expect(read.data.url).toBe("https://hooks.example.com/webhook");
      const withToken = await fetch(`${fake.url}/app/hook/config`, {
        headers: { authorization: `token ${fake.pat}` },
      });
      expect(withToken.status).toBe(401);
    });

    it("answers GET /meta without auth; GHES names its version in a header and the body", async () => {
      const response = await fetch(`${fake.url}/meta`);
      expect(response.status).toBe(200);
      const body = (await response.json()) as { installed_version?: string };
      expect(response.headers.get("x-github-enterprise-version") ?? undefined).toBe(body.installed_version);
      expect(body.installed_version).toBe(flavour === "ghes" ? fake.state.enterpriseVersion : undefined);
    });

    it("lists the App's installations (App JWT) and the repositories an installation covers (its token)", async () => {
      const app = appClient(fake, { installation: false });
      const selected = fake.state.addOrg(unique("picky"));
      Object.assign(selected, { repositorySelection: "selected", repositories: ["api"] });
      for (const name of ["api", "web"]) fake.state.addRepo(selected.account.login, name);
      const { data: installations } = await app.request("GET /app/installations", { per_page: 100 });
      expect(installations.map((i) => [i.account?.login, i.repository_selection])).toEqual(
        expect.arrayContaining([
          [fake.org, "all"],
          [selected.account.login, "selected"],
        ]),
      );
      const reposOf = async (installationId: number) =>
        (await appClient(fake, { installationId }).request("GET /installation/repositories")).data;
      const all = await reposOf(fake.installationId);
      expect(all.repositories.map((r) => r.full_name)).toEqual([`${fake.repo.owner}/${fake.repo.name}`]);
      const picked = await reposOf(selected.id);
      expect(picked).toMatchObject({ total_count: 1, repository_selection: "selected" });
      expect(picked.repositories.map((r) => r.name)).toEqual(["api"]);
      const withPat = await fetch(`${fake.url}/installation/repositories`, {
        headers: { authorization: `token ${fake.pat}` },
      });
      expect(withPat.status).toBe(403);
    });
  });
});

describe("state reset", () => {
  it("forgets runners, jobs, deliveries and spent rate limits but keeps the App and its tokens valid", async () => {
    const fake = await startGitHubFake({ jitRateLimit: { burst: 1, perMinute: 1 } });
    try {
      const octokit = appClient(fake, { onSecondaryRateLimit: () => false });
      const { data } = await jitOrg(octokit, fake, "before-reset");
      await expect(jitOrg(octokit, fake, "over-the-limit")).rejects.toMatchObject({ status: 403 });
      fake.state.seedJob({ owner: fake.org, repo: fake.repo.name });
      fake.state.seedDelivery({ event: "workflow_job" });

      fake.state.reset();
      expect(fake.state.listRunners()).toEqual([]);
      expect(fake.state.runnerForJitConfig(data.encoded_jit_config)).toBeUndefined();
      expect(fake.state.jobs.size).toBe(0);
      expect(fake.state.deliveries).toEqual([]);
      // Same client, same cached installation token; the name is free again and the bucket full.
      expect((await jitOrg(octokit, fake, "before-reset")).status).toBe(201);
      expect(fake.faults.callsTo("github", "apps/create-installation-access-token")).toHaveLength(1);
    } finally {
      await fake.close();
    }
  });
});

describe("response validation", () => {
  it("catches a response that drifts from GitHub's description", async () => {
    const openapi = await loadGitHubOpenApi("dotcom", GITHUB_OPERATIONS);
    const good = {
      runner: { id: 1, name: "r", os: "unknown", status: "offline", busy: false, labels: [{ name: "x" }] },
      encoded_jit_config: "e30=",
    };
    expect(openapi.validateResponse("actions/generate-runner-jitconfig-for-org", 201, good)).toEqual([]);
    const { encoded_jit_config: _dropped, ...missing } = good;
    expect(openapi.validateResponse("actions/generate-runner-jitconfig-for-org", 201, missing)).toEqual([
      "(root) must have required property 'encoded_jit_config'",
    ]);
    expect(openapi.validateResponse("actions/generate-runner-jitconfig-for-org", 200, good)[0]).toMatch(
      /not documented/,
    );
  });
});
