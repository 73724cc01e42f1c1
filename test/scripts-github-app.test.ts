/**
 * The GitHub App setup tool: the manifest (per scope, GHES, user accounts), the manifest flow end to
 * end with a fake browser against the local setup server and the GitHub fake's conversion endpoint,
 * and set-webhook against the fake's App webhook config. The Pulumi CLI is a recording stand-in.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type CreateOptions, createApp, setWebhook } from "../scripts/lib/github-app";
import {
  appManifest,
  appPermissions,
  installUrl,
  newAppUrl,
  PLACEHOLDER_WEBHOOK_URL,
} from "../scripts/lib/manifest";
import { pulumiCli } from "../scripts/lib/pulumi";
import { type GitHubFake, type GitHubFlavour, startGitHubFake } from "./sandbox/github";
import { FakePulumi } from "./scripts-support";

describe("the App manifest", () => {
  const base = { owner: "acme", githubUrl: "https://github.com", redirectUrl: "http://127.0.0.1:1/callback" };

  it("asks org scope for self-hosted runners, actions and metadata only", () => {
    const manifest = appManifest({ ...base, scope: "org" });
    expect(manifest.default_permissions).toEqual({
      organization_self_hosted_runners: "write",
      actions: "write",
      metadata: "read",
    });
    expect(manifest.default_events).toEqual(["workflow_job"]);
    expect(manifest.public).toBe(false);
    expect(manifest.redirect_url).toBe(base.redirectUrl);
  });

  it("asks repo scope for repository administration instead of organization runners", () => {
    expect(appPermissions("repo")).toEqual({ administration: "write", actions: "write", metadata: "read" });
    expect(appManifest({ ...base, scope: "repo" }).default_permissions).not.toHaveProperty(
      "organization_self_hosted_runners",
    );
  });

  it("points the hook at the deployed stack, or at an inactive placeholder before it exists", () => {
    expect(
      appManifest({ ...base, scope: "org", webhookUrl: "https://x.execute-api/webhook" }).hook_attributes,
    ).toEqual({ url: "https://x.execute-api/webhook", active: true });
    expect(appManifest({ ...base, scope: "org" }).hook_attributes).toEqual({
      url: PLACEHOLDER_WEBHOOK_URL,
      active: false,
    });
  });

  it("uses the GHES host for every URL, and GitHub's user page for a user account", () => {
    expect(newAppUrl("https://ghes.example.com/", "acme", "org", "s1")).toBe(
      "https://ghes.example.com/organizations/acme/settings/apps/new?state=s1",
    );
    expect(newAppUrl("https://github.com", "octocat", "user", "s2")).toBe(
      "https://github.com/settings/apps/new?state=s2",
    );
    expect(appManifest({ ...base, githubUrl: "https://ghes.example.com", scope: "org" }).url).toBe(
      "https://ghes.example.com/acme",
    );
    expect(installUrl("https://ghes.example.com/github-apps/fleet")).toBe(
      "https://ghes.example.com/github-apps/fleet/installations/new",
    );
  });
});

/** The browser: loads the local page, "submits" the form to GitHub and follows GitHub's redirect back. */
async function browse(
  pageUrl: string,
  fake: GitHubFake,
  expectedAction: ((state: string) => string) | undefined,
  tamper?: (callback: URL) => void,
) {
  const html = await (await fetch(pageUrl)).text();
  const decode = (s: string) => s.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));
  const action = decode(/<form[^>]*action="([^"]+)"/.exec(html)![1]!);
  const manifest = JSON.parse(decode(/name="manifest" value="([^"]+)"/.exec(html)![1]!));
  const state = new URL(action).searchParams.get("state")!;
  if (expectedAction) expect(action).toBe(expectedAction(state));
  // On GitHub's page the user clicks "Create GitHub App"; GitHub redirects with a one-time code.
  const code = fake.state.createAppFromManifest(manifest);
  const callback = new URL(manifest.redirect_url as string);
  callback.searchParams.set("code", code);
  callback.searchParams.set("state", state);
  tamper?.(callback);
  const response = await fetch(callback);
  return { manifest, response, body: await response.text() };
}

describe.each<GitHubFlavour>(["dotcom", "ghes"])("with the GitHub fake (%s)", (flavour) => {
  let fake: GitHubFake;
  beforeAll(async () => {
    fake = await startGitHubFake({ flavour });
  });
  afterAll(() => fake?.close());
  afterEach(() => {
    expect(fake.violations()).toEqual([]);
  });

  const webUrl = () => (flavour === "ghes" ? "https://ghes.example.com" : "https://github.com");
  const options = (extra: Partial<CreateOptions> = {}): CreateOptions => ({
    owner: fake.org,
    scope: "org",
    githubUrl: webUrl(),
    apiUrl: fake.url,
    timeoutMs: 10_000,
    ...extra,
  });

  it("create: the manifest flow stores the App's id, key and webhook secret, secrets on stdin only", async () => {
    const cli = new FakePulumi({ webhookUrl: "https://abc.execute-api.eu-west-1.amazonaws.com/webhook" });
    const logs: string[] = [];
    let seen: Awaited<ReturnType<typeof browse>> | undefined;
    const created = await createApp(options(), {
      pulumi: pulumiCli({ run: cli.run, stack: "dev" }),
      log: (line) => logs.push(line),
      onReady: (url) => {
        void browse(
          url,
          fake,
          (state) => `${webUrl()}/organizations/${fake.org}/settings/apps/new?state=${state}`,
        ).then((result) => {
          seen = result;
        });
      },
    });
    await expect.poll(() => seen).toBeDefined();
    expect(seen!.response.status).toBe(200);
    expect(seen!.manifest.hook_attributes).toEqual({
      url: "https://abc.execute-api.eu-west-1.amazonaws.com/webhook",
      active: true,
    });

    expect(created.appId).toBe(fake.appId);
    expect(created.installUrl).toMatch(/\/installations\/new$/);
    const config = Object.fromEntries([...cli.config].map(([k, v]) => [k, v]));
    expect(config).toEqual({
      "runner-fleet:github.url": { value: webUrl(), secret: false },
      "runner-fleet:github.authMode": { value: "app", secret: false },
      "runner-fleet:github.appId": { value: String(fake.appId), secret: false },
      "runner-fleet:github.scope": { value: "org", secret: false },
      "runner-fleet:github.owner": { value: fake.org, secret: false },
      "runner-fleet:githubAppPrivateKey": { value: fake.privateKey.trim(), secret: true },
      "runner-fleet:webhookSecret": { value: fake.state.hookConfig.secret, secret: true },
    });
    const sets = cli.calls.filter((c) => c.args[1] === "set");
    for (const call of sets) {
      expect(call.args).toContain("--stack");
      for (const secret of [fake.privateKey.trim(), fake.state.hookConfig.secret!]) {
        expect(call.args.join(" ")).not.toContain(secret);
      }
    }
    expect(sets.find((c) => c.args[2] === "runner-fleet:github.appId")?.args).toContain("--path");
    expect(logs.join("\n")).not.toContain(fake.state.hookConfig.secret!);
    expect(logs.join("\n")).toContain(created.installUrl);
  });

  it("create: ignores a callback with another state and a replayed code", async () => {
    const cli = new FakePulumi();
    const statuses: number[] = [];
    const created = await createApp(options({ scope: "repo" }), {
      pulumi: pulumiCli({ run: cli.run }),
      log: () => {},
      onReady: (url) => {
        void (async () => {
          const forged = await browse(url, fake, undefined, (cb) =>
            cb.searchParams.set("state", "0".repeat(32)),
          );
          statuses.push(forged.response.status);
          const real = await browse(
            url,
            fake,
            (s) => `${webUrl()}/organizations/${fake.org}/settings/apps/new?state=${s}`,
          );
          statuses.push(real.response.status);
          expect(real.manifest.default_permissions).toEqual(appPermissions("repo"));
          // Not deployed: the hook waits inactive.
          expect(real.manifest.hook_attributes.active).toBe(false);
        })();
      },
    });
    expect(created.appId).toBe(fake.appId);
    await expect.poll(() => statuses).toEqual([400, 200]);
    expect(cli.config.get("runner-fleet:github.scope")?.value).toBe("repo");
  });

  it("set-webhook: PATCHes the App's hook to the stack output with the stack's secret, and verifies", async () => {
    const secret = "b6f1c0ffee5eed5b6f1c0ffee5eed5b6f1c0ffee";
    const cli = new FakePulumi({ webhookUrl: "https://hook.example.com/webhook", jobsTableName: "jobs" })
      .set("runner-fleet:github.appId", String(fake.appId))
      .set("runner-fleet:github.authMode", "app")
      .set("runner-fleet:githubAppPrivateKey", fake.privateKey, true)
      .set("runner-fleet:webhookSecret", secret, true);
    const logs: string[] = [];
    fake.faults.clearCalls();
    const got = await setWebhook(
      { apiUrl: fake.url },
      { pulumi: pulumiCli({ run: cli.run }), log: (l) => logs.push(l) },
    );
    expect(fake.state.hookConfig).toEqual({
      url: "https://hook.example.com/webhook",
      content_type: "json",
      insecure_ssl: "0",
      secret,
    });
    expect(got.secret).toBe("********");
    expect(fake.faults.callsTo("github").map((c) => `${c.operation} ${c.status}`)).toEqual([
      "apps/update-webhook-config-for-app 200",
      "apps/get-webhook-config-for-app 200",
    ]);
    expect(logs.join("\n")).not.toContain(secret);
  });

  it("set-webhook: refuses before a deploy, in token mode, and without the App's key", async () => {
    const log = () => {};
    const notDeployed = new FakePulumi();
    await expect(
      setWebhook({ apiUrl: fake.url }, { pulumi: pulumiCli({ run: notDeployed.run }), log }),
    ).rejects.toThrow(/cannot read the stack outputs .*run `pulumi up` first/);
    const token = new FakePulumi({ webhookUrl: "https://h/webhook" }).set(
      "runner-fleet:github.authMode",
      "token",
    );
    await expect(
      setWebhook({ apiUrl: fake.url }, { pulumi: pulumiCli({ run: token.run }), log }),
    ).rejects.toThrow(/token mode/);
    const noKey = new FakePulumi({ webhookUrl: "https://h/webhook" }).set("runner-fleet:github.appId", "1");
    await expect(
      setWebhook({ apiUrl: fake.url }, { pulumi: pulumiCli({ run: noKey.run }), log }),
    ).rejects.toThrow(/githubAppPrivateKey is not set/);
  });
});
