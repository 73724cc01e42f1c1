/**
 * The GitHub App setup tool: the manifest (per scope, GHES, user accounts); the preflight checks, each
 * failing with its fix before any page is served; the manifest flow end to end with a fetch-driven
 * browser against the local setup server and the GitHub fake's web pages and API; a store failure
 * that leaves the 0600 credentials file and the commands that finish the job; set-webhook. The
 * Pulumi CLI is a recording stand-in (the real spawn for the missing-CLI case).
 */
import { execSync } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type CreateOptions, createApp } from "../scripts/lib/github-app";
import {
  appManifest,
  appPermissions,
  installUrl,
  newAppUrl,
  permissionRequests,
} from "../scripts/lib/manifest";
import { pulumiCli } from "../scripts/lib/pulumi";
import { SECRETS_PROBE_KEY } from "../scripts/lib/setup-preflight";
import { setWebhook } from "../scripts/lib/setup-webhook";
import { type GitHubFake, type GitHubFlavour, githubErrors, startGitHubFake } from "./sandbox/github";
import { manifestProblems } from "./sandbox/github-web";
import { FakePulumi } from "./scripts-support";
import { deployedStack, type StandInOptions, setupStandIn } from "./setup-pulumi-stand-in";

describe("the App manifest", () => {
  const base = {
    owner: "acme",
    githubUrl: "https://github.com",
    redirectUrl: "http://127.0.0.1:1/callback",
    webhookUrl: "https://x.execute-api/webhook",
  };

  it("asks org scope for self-hosted runners, actions and metadata only, with an active hook", () => {
    const manifest = appManifest({ ...base, scope: "org" });
    expect(manifest.default_permissions).toEqual({
      organization_self_hosted_runners: "write",
      actions: "write",
      metadata: "read",
    });
    expect(manifest.default_events).toEqual(["workflow_job"]);
    expect(manifest.public).toBe(false);
    expect(manifest.redirect_url).toBe(base.redirectUrl);
    expect(manifest.hook_attributes).toEqual({ url: base.webhookUrl, active: true });
  });

  it("asks repo scope for repository administration instead of organization runners", () => {
    expect(appPermissions("repo")).toEqual({ administration: "write", actions: "write", metadata: "read" });
    expect(appManifest({ ...base, scope: "repo" }).default_permissions).not.toHaveProperty(
      "organization_self_hosted_runners",
    );
  });

  it("gives every permission it asks for a reason (the setup page shows them)", () => {
    for (const scope of ["org", "repo"] as const) {
      const requests = permissionRequests(scope);
      expect(Object.fromEntries(requests.map((p) => [p.key, p.access]))).toEqual(appPermissions(scope));
      for (const p of requests) expect(p.why.length).toBeGreaterThan(20);
    }
  });

  it("uses only the parameters GitHub documents for a manifest (the fake's check, which a bad one fails)", () => {
    for (const scope of ["org", "repo"] as const)
      expect(manifestProblems(appManifest({ ...base, scope }))).toEqual([]);
    expect(
      manifestProblems({
        ...appManifest({ ...base, scope: "org" }),
        name: "x".repeat(35),
        hook_attributes: { url: "not a url", active: "yes" },
        default_permissions: { actions: "all" },
        webhook_secret: "nope",
      }),
    ).toEqual([
      "unknown manifest parameter webhook_secret",
      "name must be 1 to 34 characters",
      "hook_attributes.url must be a URL",
      "hook_attributes.active must be a boolean",
      "default_permissions.actions is all, not read or write",
    ]);
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

const decode = (s: string) => s.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));

/** The first form of a page: where it posts and its named inputs. */
function formOf(html: string, pageUrl: string) {
  const action = new URL(decode(/<form[^>]*action="([^"]+)"/.exec(html)![1]!), pageUrl).href;
  const fields = new URLSearchParams();
  for (const m of html.matchAll(/<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g))
    fields.set(m[1]!, decode(m[2]!));
  return { action, fields };
}

/**
 * A browser without a screen: loads the setup page, submits its form to the GitHub fake, confirms
 * "Create GitHub App" there and follows GitHub's redirect back (with `tamper` applied).
 */
async function browse(pageUrl: string, tamper?: (callback: URL) => void) {
  const setupHtml = await (await fetch(pageUrl)).text();
  const setupForm = formOf(setupHtml, pageUrl);
  const manifest = JSON.parse(setupForm.fields.get("manifest")!);
  const review = await fetch(setupForm.action, { method: "POST", body: setupForm.fields });
  expect(review.status).toBe(200);
  const confirm = formOf(await review.text(), setupForm.action);
  const created = await fetch(confirm.action, { method: "POST", body: confirm.fields, redirect: "manual" });
  expect(created.status).toBe(302);
  const callback = new URL(created.headers.get("location")!);
  tamper?.(callback);
  const response = await fetch(callback);
  return { setupHtml, action: setupForm.action, manifest, response, body: await response.text() };
}

const WEBHOOK_URL = "https://abc123.execute-api.eu-west-1.amazonaws.com/webhook";
const STACK_SECRET = "stack-generated-secret-0123456789abcdef";
const secretSets = (cli: FakePulumi) =>
  cli.calls.filter((c) => c.args[1] === "set" && c.args.includes("--secret"));

describe.each<GitHubFlavour>(["dotcom", "ghes"])("with the GitHub fake (%s)", (flavour) => {
  let fake: GitHubFake;
  let dir: string;
  beforeAll(async () => {
    fake = await startGitHubFake({ flavour });
  });
  afterAll(() => fake?.close());
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "setup-app-"));
  });
  afterEach(async () => {
    expect(fake.violations()).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });

  // The fake serves GitHub's web pages on its own origin: the "GitHub URL" of these tests.
  const webUrl = () => new URL(fake.url).origin;
  const options = (extra: Partial<CreateOptions> = {}): CreateOptions => ({
    githubUrl: webUrl(),
    apiUrl: fake.url,
    timeoutMs: 20_000,
    credentialsDirs: [dir],
    ...extra,
  });
  const pulumiFor = (cli: FakePulumi, standIn: StandInOptions = {}) =>
    pulumiCli({ run: setupStandIn(cli, standIn), stack: "dev" });

  it("create: checks first, then the flow stores id and key (on stdin), sets the stack's secret on the App and leaves no file", async () => {
    const cli = deployedStack(fake.org);
    const logs: string[] = [];
    let browsing: ReturnType<typeof browse> | undefined;
    const created = await createApp(options(), {
      pulumi: pulumiFor(cli),
      log: (line) => logs.push(line),
      onReady: (url) => {
        browsing = browse(url);
      },
    });
    const seen = await browsing;
    const state = new URL(seen!.action).searchParams.get("state");
    expect(seen!.action).toBe(`${webUrl()}/organizations/${fake.org}/settings/apps/new?state=${state}`);
    expect(seen!.manifest.hook_attributes).toEqual({ url: WEBHOOK_URL, active: true });
    expect(seen!.response.status).toBe(200);
    expect(seen!.body).toContain(created.installUrl);
    expect(seen!.body).toContain("What was stored where");

    expect(created).toMatchObject({ appId: fake.appId, stack: "dev", webhookSecret: "stack" });
    expect(Object.fromEntries(cli.config)).toEqual({
      "runner-fleet:github.url": { value: webUrl(), secret: false },
      "runner-fleet:github.authMode": { value: "app", secret: false },
      "runner-fleet:github.appId": { value: String(fake.appId), secret: false },
      "runner-fleet:github.scope": { value: "org", secret: false },
      "runner-fleet:github.owner": { value: fake.org, secret: false },
      "runner-fleet:githubAppPrivateKey": { value: fake.privateKey.trim(), secret: true },
    });
    // The App is active on the stack's URL and signs with the secret the stack generated.
    expect(fake.state.hookActive).toBe(true);
    expect(fake.state.hookConfig).toEqual({
      url: WEBHOOK_URL,
      content_type: "json",
      insecure_ssl: "0",
      secret: STACK_SECRET,
    });
    expect(await readdir(dir)).toEqual([]);

    // Preflight ran before the page: the CLI, the stack, then the throwaway secret, written and removed.
    expect(cli.calls[0]!.args).toEqual(["version"]);
    expect(secretSets(cli)[0]!.args[2]).toBe(SECRETS_PROBE_KEY);
    expect(cli.calls.some((c) => c.args[1] === "rm" && c.args[2] === SECRETS_PROBE_KEY)).toBe(true);
    for (const call of cli.calls.filter((c) => c.args[1] === "set")) {
      expect(call.args).toContain("--stack");
      expect(call.args.join(" ")).not.toContain(fake.privateKey.trim().split("\n")[1]);
    }
    const output = logs.join("\n");
    expect(output).not.toContain(STACK_SECRET);
    expect(output).toContain(created.installUrl);
    expect(output).toMatch(/`pulumi up` \(seconds, no image rebuild\)/);
  });

  it("create: a stack that exports no webhook secret gets GitHub's, stored as a secret", async () => {
    const cli = deployedStack(fake.org, { webhookSecret: undefined });
    fake.faults.clearCalls();
    const created = await createApp(options(), {
      pulumi: pulumiFor(cli),
      log: () => {},
      onReady: (url) => void browse(url),
    });
    expect(created.webhookSecret).toBe("stored");
    expect(cli.config.get("runner-fleet:webhookSecret")).toEqual({
      value: fake.state.hookConfig.secret,
      secret: true,
    });
    expect(fake.faults.callsTo("github", "apps/update-webhook-config-for-app")).toEqual([]);
  });

  it("create: ignores a callback with another state and a replayed code", async () => {
    const cli = deployedStack(fake.org);
    let browsing: Promise<
      [forged: Awaited<ReturnType<typeof browse>>, real: Awaited<ReturnType<typeof browse>>]
    >;
    const created = await createApp(options({ scope: "repo" }), {
      pulumi: pulumiFor(cli),
      log: () => {},
      onReady: (url) => {
        browsing = (async () => {
          const forged = await browse(url, (cb) => cb.searchParams.set("state", "0".repeat(32)));
          return [forged, await browse(url)];
        })();
      },
    });
    expect(created.appId).toBe(fake.appId);
    const [forged, real] = await browsing!;
    expect([forged.response.status, real.response.status]).toEqual([400, 200]);
    expect(real.manifest.default_permissions).toEqual(appPermissions("repo"));
    expect(cli.config.get("runner-fleet:github.scope")?.value).toBe("repo");
  });

  it("create: a user account's App goes through GitHub's user page", async () => {
    const cli = deployedStack("octocat");
    let browsing: ReturnType<typeof browse> | undefined;
    const created = await createApp(options({ user: true, scope: "repo", replace: true }), {
      pulumi: pulumiFor(cli.set("runner-fleet:github.appId", "1")),
      log: () => {},
      onReady: (url) => {
        browsing = browse(url);
      },
    });
    expect(created.appId).toBe(fake.appId);
    expect(new URL((await browsing!).action).pathname).toBe("/settings/apps/new");
    expect(cli.config.get("runner-fleet:github.owner")?.value).toBe("octocat");
    expect(cli.config.get("runner-fleet:github.appId")?.value).toBe(String(fake.appId));
  });
});

describe("the Pulumi CLI wrapper, spawning a stand-in executable", () => {
  it("passes secrets on stdin only, `--stack` on every call, and reads a missing output as undefined", async () => {
    const dir = await mkdtemp(join(tmpdir(), "setup-cli-"));
    try {
      const bin = join(dir, "pulumi");
      // Records argv and stdin; `stack output` answers as the real CLI does for an unknown output.
      await writeFile(
        bin,
        `#!/bin/sh\nprintf '%s\\n' "$*" >> "${dir}/argv"\ncat >> "${dir}/stdin"\n` +
          `case "$1 $2" in "stack output") echo "error: current stack does not have output property '$3'" >&2; exit 255;; esac\n`,
        { mode: 0o755 },
      );
      const pulumi = pulumiCli({ bin, stack: "dev" });
      await pulumi.configSet("runner-fleet:githubAppPrivateKey", "-----BEGIN KEY-----\nsecret\n", {
        secret: true,
      });
      expect(await pulumi.stackOutput("webhookSecret", { showSecrets: true })).toBeUndefined();
      expect((await readFile(join(dir, "argv"), "utf8")).split("\n")).toEqual([
        "config set runner-fleet:githubAppPrivateKey --secret --stack dev",
        "stack output webhookSecret --show-secrets --stack dev",
        "",
      ]);
      expect(await readFile(join(dir, "stdin"), "utf8")).toBe("-----BEGIN KEY-----\nsecret\n");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("create when something is wrong (GitHub fake, dotcom)", () => {
  let fake: GitHubFake;
  let dir: string;
  beforeAll(async () => {
    fake = await startGitHubFake();
  });
  afterAll(() => fake?.close());
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "setup-app-"));
    fake.faults.clearCalls();
  });
  afterEach(async () => {
    expect(fake.violations()).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });
  const options = (extra: Partial<CreateOptions> = {}): CreateOptions => ({
    githubUrl: fake.url,
    apiUrl: fake.url,
    timeoutMs: 20_000,
    credentialsDirs: [dir],
    ...extra,
  });

  it("a store failure after the exchange keeps the 0600 file with the key, and prints its path and the commands that finish the job", async () => {
    const cli = deployedStack(fake.org);
    const logs: string[] = [];
    let browsing: ReturnType<typeof browse> | undefined;
    const failOn = (args: string[]) =>
      args[1] === "set" && args[2] === "runner-fleet:githubAppPrivateKey"
        ? "error: passphrase must be set with PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE"
        : undefined;
    await expect(
      createApp(options(), {
        pulumi: pulumiCli({ run: setupStandIn(cli, { failOn }), stack: "dev" }),
        log: (line) => logs.push(line),
        onReady: (url) => {
          browsing = browse(url);
        },
      }),
    ).rejects.toThrow(/storing the App's credentials in stack dev failed; .*github-app-.*\.json keeps them/);

    const [name] = await readdir(dir);
    const file = join(dir, name!);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const saved = JSON.parse(await readFile(file, "utf8"));
    expect(saved).toMatchObject({ stack: "dev", appId: fake.appId, privateKey: fake.privateKey });

    const output = logs.join("\n");
    expect(output).toContain(`are in ${file} (mode 0600)`);
    const commands = logs.filter((l) => l.startsWith("  ")).map((l) => l.trim());
    expect(commands).toEqual([
      `pulumi config set runner-fleet:github.url ${fake.url} --path --stack dev`,
      "pulumi config set runner-fleet:github.authMode app --path --stack dev",
      `pulumi config set runner-fleet:github.appId ${fake.appId} --path --stack dev`,
      "pulumi config set runner-fleet:github.scope org --path --stack dev",
      `pulumi config set runner-fleet:github.owner ${fake.org} --path --stack dev`,
      expect.stringMatching(
        /^node -e .* privateKey \| pulumi config set runner-fleet:githubAppPrivateKey --secret --stack dev$/,
      ),
      `rm ${file}`,
    ]);
    // The key's command reads it from the file onto the CLI's stdin, exactly as saved.
    const reader = commands[5]!.split(" | ")[0]!;
    expect(execSync(reader, { encoding: "utf8" })).toBe(fake.privateKey);
    expect(output).not.toContain(fake.privateKey.split("\n")[1]);
    const page = await browsing!;
    expect(page.body).toContain(file);
    expect(page.body).toContain("storing its credentials failed");
  });

  it("a 5xx on the code exchange is tried again; a refused code says where the App's key can be made", async () => {
    fake.faults.fail("github", "apps/create-from-manifest", githubErrors.serverError(502), { times: 1 });
    let browsing: ReturnType<typeof browse> | undefined;
    const created = await createApp(options(), {
      pulumi: pulumiCli({ run: setupStandIn(deployedStack(fake.org)), stack: "dev" }),
      log: () => {},
      onReady: (url) => {
        browsing = browse(url);
      },
    });
    expect(created.appId).toBe(fake.appId);
    expect((await browsing!).response.status).toBe(200);
    expect(fake.faults.callsTo("github", "apps/create-from-manifest").map((c) => c.status)).toEqual([
      502, 201,
    ]);

    await expect(
      createApp(options(), {
        pulumi: pulumiCli({ run: setupStandIn(deployedStack(fake.org)), stack: "dev" }),
        log: () => {},
        onReady: (url) => {
          browsing = browse(url, (callback) => callback.searchParams.set("code", "0".repeat(40)));
        },
      }),
    ).rejects.toThrow(
      new RegExp(
        `exchanging GitHub's one-time code failed: .*in ${fake.url}/organizations/${fake.org}/settings/apps, generate a private key`,
      ),
    );
    expect((await browsing!).response.status).toBe(502);
    expect(await readdir(dir)).toEqual([]);
  });

  type Case = [
    string,
    () => { cli: FakePulumi; standIn?: StandInOptions; extra?: Partial<CreateOptions> },
    RegExp,
  ];
  const cases: Case[] = [
    [
      "no stack selected",
      () => ({ cli: deployedStack("acme"), standIn: { stack: null } }),
      /no stack to act on: .*no stack selected[\s\S]*fix: select the stack with `pulumi stack select NAME`/,
    ],
    [
      "no owner anywhere",
      () => ({ cli: new FakePulumi({ webhookUrl: WEBHOOK_URL }) }),
      /no owner for the App[\s\S]*fix: pass --owner ORG/,
    ],
    [
      "org scope for a user account",
      () => ({ cli: deployedStack("octocat"), extra: { user: true } }),
      /org scope needs an organization[\s\S]*--scope repo/,
    ],
    [
      "the stack already has an App",
      () => ({ cli: deployedStack("acme").set("runner-fleet:github.appId", "7") }),
      /already has a GitHub App \(runner-fleet:github.appId is 7\)[\s\S]*--replace/,
    ],
    [
      "the stack is not deployed",
      () => ({ cli: new FakePulumi().set("runner-fleet:github.owner", "acme") }),
      /stack dev is not deployed yet \(it has no webhookUrl output\)[\s\S]*fix: run `pulumi up` first/,
    ],
    [
      "secrets cannot be decrypted",
      () => ({
        cli: deployedStack("acme"),
        standIn: {
          failOn: (a) => (a.includes("--show-secrets") ? "error: incorrect passphrase" : undefined),
        },
      }),
      /cannot decrypt stack dev's secrets: error: incorrect passphrase[\s\S]*PULUMI_CONFIG_PASSPHRASE/,
    ],
    [
      "secrets cannot be stored",
      () => ({
        cli: deployedStack("acme"),
        standIn: {
          failOn: (a) =>
            a[2] === SECRETS_PROBE_KEY && a[1] === "set"
              ? "error: open Pulumi.dev.yaml: permission denied"
              : undefined,
        },
      }),
      /cannot store a secret in stack dev's config: .*permission denied[\s\S]*Pulumi\.dev\.yaml\) must be writable/,
    ],
    [
      "GitHub unreachable",
      () => ({ cli: deployedStack("acme"), extra: { apiUrl: "http://127.0.0.1:9" } }),
      /cannot reach GitHub at http:\/\/127\.0\.0\.1:9\/meta[\s\S]*fix: check the GitHub URL/,
    ],
    [
      "not GitHub's API",
      () => ({ cli: deployedStack("acme"), extra: { apiUrl: `${fake.url}/not-the-api` } }),
      /answered HTTP 404, not as GitHub's API does/,
    ],
  ];
  it.each(cases)("fails before any page when %s, with the fix", async (_, setup, message) => {
    const { cli, standIn, extra } = setup();
    let served = false;
    await expect(
      createApp(options(extra), {
        pulumi: pulumiCli({
          run: setupStandIn(cli, standIn),
          stack: standIn?.stack === null ? undefined : "dev",
        }),
        log: () => {},
        onReady: () => {
          served = true;
        },
      }),
    ).rejects.toThrow(message);
    expect(served).toBe(false);
    // At most the reachability check read /meta: no App was created, no page was posted.
    expect(fake.faults.callsTo("github").filter((c) => !/(^meta\/get|\/meta)$/.test(c.operation))).toEqual(
      [],
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it("without the Pulumi CLI: fails before any page or GitHub call", async () => {
    let served = false;
    await expect(
      createApp(options({ owner: "acme" }), {
        pulumi: pulumiCli({ bin: join(dir, "no-such-pulumi") }),
        log: () => {},
        onReady: () => {
          served = true;
        },
      }),
    ).rejects.toThrow(
      /the Pulumi CLI is not on PATH\n {2}fix: install it \(https:\/\/www\.pulumi\.com\/docs\/install\/\)/,
    );
    expect(served).toBe(false);
    expect(fake.faults.callsTo("github")).toEqual([]);
  });
});

describe("create against GHES", () => {
  it("refuses GHES older than 3.10 (its version header), before any page", async () => {
    const fake = await startGitHubFake({ flavour: "ghes" });
    try {
      fake.state.enterpriseVersion = "3.9.4";
      let served = false;
      await expect(
        createApp(
          { githubUrl: new URL(fake.url).origin, apiUrl: fake.url },
          {
            pulumi: pulumiCli({ run: setupStandIn(deployedStack("acme")), stack: "dev" }),
            log: () => {},
            onReady: () => {
              served = true;
            },
          },
        ),
      ).rejects.toThrow(
        /GitHub Enterprise Server 3\.9\.4 is older than 3\.10[\s\S]*fix: upgrade GHES to 3\.10/,
      );
      expect(served).toBe(false);
    } finally {
      await fake.close();
    }
  });
});

describe("set-webhook (GitHub fake)", () => {
  let fake: GitHubFake;
  beforeAll(async () => {
    fake = await startGitHubFake();
  });
  afterAll(() => fake?.close());
  afterEach(() => {
    expect(fake.violations()).toEqual([]);
  });

  it("PATCHes the App's hook to the stack output with the stack's own secret, and verifies", async () => {
    const cli = new FakePulumi({
      webhookUrl: "https://hook.example.com/webhook",
      webhookSecret: STACK_SECRET,
    })
      .set("runner-fleet:github.appId", String(fake.appId))
      .set("runner-fleet:github.authMode", "app")
      .set("runner-fleet:githubAppPrivateKey", fake.privateKey, true);
    const logs: string[] = [];
    fake.faults.clearCalls();
    const got = await setWebhook(
      { apiUrl: fake.url },
      { pulumi: pulumiCli({ run: setupStandIn(cli) }), log: (l) => logs.push(l) },
    );
    expect(fake.state.hookConfig).toEqual({
      url: "https://hook.example.com/webhook",
      content_type: "json",
      insecure_ssl: "0",
      secret: STACK_SECRET,
    });
    expect(got.secret).toBe("********");
    expect(fake.faults.callsTo("github").map((c) => `${c.operation} ${c.status}`)).toEqual([
      "apps/update-webhook-config-for-app 200",
      "apps/get-webhook-config-for-app 200",
    ]);
    expect(logs.join("\n")).not.toContain(STACK_SECRET);
  });

  it("falls back to the webhookSecret config; refuses before a deploy, in token mode, and without the App's key", async () => {
    const log = () => {};
    const configured = new FakePulumi({ webhookUrl: "https://h/webhook" })
      .set("runner-fleet:github.appId", String(fake.appId))
      .set("runner-fleet:githubAppPrivateKey", fake.privateKey, true)
      .set("runner-fleet:webhookSecret", "from-config", true);
    await setWebhook({ apiUrl: fake.url }, { pulumi: pulumiCli({ run: setupStandIn(configured) }), log });
    expect(fake.state.hookConfig.secret).toBe("from-config");

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
