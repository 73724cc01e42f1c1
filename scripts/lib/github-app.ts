/**
 * GitHub App setup for App mode: `create` (the manifest flow, through a page served on 127.0.0.1)
 * and `set-webhook` (point the App's webhook at the deployed stack). The CLI is scripts/github-app.ts.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createAppAuth } from "@octokit/auth-app";
import { Octokit } from "@octokit/core";
import { githubApiUrlOf } from "../../src/config/load";
import { appManifest, installUrl, manifestFormPage, newAppUrl, type Scope, trimUrl } from "./manifest";
import { PROJECT, type Pulumi } from "./pulumi";

export type Log = (line: string) => void;

const key = (name: string) => `${PROJECT}:${name}`;

export interface CreateOptions {
  owner: string;
  scope: Scope;
  /** GitHub web URL: https://github.com or the GHES host. */
  githubUrl: string;
  /** The owner is a user account (repo scope only): GitHub's user page instead of the organization's. */
  user?: boolean;
  /** Override the API base (default: derived from githubUrl). */
  apiUrl?: string;
  /** Override the stack's webhookUrl output. */
  webhookUrl?: string;
  name?: string;
  /** How long to wait for the browser to come back (default 15 min). */
  timeoutMs?: number;
}

export interface CreateDeps {
  pulumi: Pulumi;
  log: Log;
  /** Called with the local page's URL once the server listens (the CLI prints it; tests browse it). */
  onReady: (pageUrl: string) => void;
}

export interface CreatedApp {
  appId: number;
  slug: string;
  htmlUrl: string;
  installUrl: string;
}

interface Conversion {
  id: number;
  slug?: string;
  html_url: string;
  pem: string;
  webhook_secret: string | null;
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function deployedWebhookUrl(pulumi: Pulumi): Promise<string | undefined> {
  try {
    const url = (await pulumi.stackOutputs()).webhookUrl;
    return typeof url === "string" && url ? url : undefined;
  } catch {
    return undefined;
  }
}

function page(text: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>runner-fleet</title></head><body><p>${text}</p></body></html>\n`;
}

/**
 * The manifest flow. Serves a page on 127.0.0.1 that posts the manifest to GitHub; GitHub sends the
 * browser back to /callback with a one-time code and our state; the code is exchanged for the App's
 * id, private key and webhook secret, which go to the stack config (secrets encrypted, on stdin).
 */
export async function createApp(options: CreateOptions, deps: CreateDeps): Promise<CreatedApp> {
  if (options.scope === "org" && options.user) {
    throw new Error("org scope needs an organization: a user account only works with --scope repo");
  }
  const webhookUrl = options.webhookUrl ?? (await deployedWebhookUrl(deps.pulumi));
  const state = randomBytes(16).toString("hex");
  const apiUrl = options.apiUrl ?? githubApiUrlOf(options.githubUrl);

  let server: Server | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<CreatedApp>((resolve, reject) => {
      let redirectUrl = "";
      let done = false;
      server = createServer((req, res) => {
        const url = new URL(req.url ?? "/", redirectUrl);
        const reply = (status: number, html: string) => {
          res.writeHead(status, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
          res.end(html);
        };
        if (req.method === "GET" && url.pathname === "/") {
          const manifest = appManifest({ ...options, redirectUrl, webhookUrl });
          const action = newAppUrl(options.githubUrl, options.owner, options.user ? "user" : "org", state);
          reply(200, manifestFormPage(action, manifest));
          return;
        }
        if (req.method === "GET" && url.pathname === "/callback") {
          const code = url.searchParams.get("code");
          // The state proves the redirect answers our own form, not a request forged by another page.
          if (done || !code || !sameText(url.searchParams.get("state") ?? "", state)) {
            deps.log("ignored a callback without our state (or after the App was created)");
            reply(400, page("This request does not belong to the running setup."));
            return;
          }
          done = true;
          convertAndStore(code, apiUrl, options, deps).then(
            (app) => {
              reply(
                200,
                page(`Created. Now install the App: <a href="${app.installUrl}">${app.installUrl}</a>`),
              );
              resolve(app);
            },
            (error: unknown) => {
              reply(500, page("Creating the App failed: see the terminal."));
              reject(error);
            },
          );
          return;
        }
        reply(404, page("Not found."));
      });
      server.on("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const { port } = server!.address() as AddressInfo;
        const base = `http://127.0.0.1:${port}`;
        redirectUrl = `${base}/callback`;
        timer = setTimeout(
          () => reject(new Error("timed out waiting for GitHub to redirect back")),
          options.timeoutMs ?? 15 * 60_000,
        );
        deps.onReady(`${base}/`);
      });
    });
  } finally {
    if (timer) clearTimeout(timer);
    const s = server as Server | undefined;
    if (s) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }
}

async function convertAndStore(
  code: string,
  apiUrl: string,
  options: CreateOptions,
  deps: CreateDeps,
): Promise<CreatedApp> {
  // No authentication: the one-time code is the credential.
  const { data } = await new Octokit({ baseUrl: apiUrl }).request("POST /app-manifests/{code}/conversions", {
    code,
  });
  const app = data as unknown as Conversion;
  const set = deps.pulumi.configSet;
  await set(key("github.url"), trimUrl(options.githubUrl), { path: true });
  await set(key("github.authMode"), "app", { path: true });
  await set(key("github.appId"), String(app.id), { path: true });
  await set(key("github.scope"), options.scope, { path: true });
  await set(key("github.owner"), options.owner, { path: true });
  await set(key("githubAppPrivateKey"), app.pem, { secret: true });
  // GitHub generates the webhook secret; should it not, the stack gets its own (set-webhook sends it).
  await set(key("webhookSecret"), app.webhook_secret || randomBytes(32).toString("hex"), { secret: true });
  const created = {
    appId: app.id,
    slug: app.slug ?? "",
    htmlUrl: app.html_url,
    installUrl: installUrl(app.html_url),
  };
  deps.log(`Created GitHub App ${created.slug || created.appId} (id ${created.appId}): ${created.htmlUrl}`);
  deps.log(
    `Stored ${key("github")}.{url,authMode,appId,scope,owner} and the secrets githubAppPrivateKey, webhookSecret.`,
  );
  deps.log(`Install it on ${options.owner}: ${created.installUrl}`);
  return created;
}

export interface SetWebhookOptions {
  /** Override the API base (default: derived from runner-fleet:github.url). */
  apiUrl?: string;
}

export interface WebhookConfig {
  url?: string;
  content_type?: string;
  insecure_ssl?: string | number;
  secret?: string;
}

/**
 * Points the App's webhook at the stack (`webhookUrl` output) with the stack's secret, content type
 * json and TLS verification, then reads the config back to check GitHub kept it.
 */
export async function setWebhook(
  options: SetWebhookOptions,
  deps: { pulumi: Pulumi; log: Log },
): Promise<WebhookConfig> {
  const { pulumi, log } = deps;
  const outputs = await pulumi.stackOutputs().catch((error: Error) => {
    throw new Error(`cannot read the stack outputs (${error.message}): run \`pulumi up\` first`);
  });
  const url = outputs.webhookUrl;
  if (typeof url !== "string" || !url) {
    throw new Error("the stack has no webhookUrl output: run `pulumi up` first");
  }
  const authMode = (await pulumi.configGet(key("github.authMode"), { path: true })) ?? "app";
  if (authMode !== "app") {
    throw new Error(`github.authMode is ${authMode}: the program itself manages the webhook in token mode`);
  }
  const required = async (name: string, path = false) => {
    const value = await pulumi.configGet(key(name), { path });
    if (!value) throw new Error(`${key(name)} is not set (run \`npm run setup:github-app -- create\`)`);
    return value;
  };
  const appId = await required("github.appId", true);
  const privateKey = await required("githubAppPrivateKey");
  const secret = await required("webhookSecret");
  const githubUrl = (await pulumi.configGet(key("github.url"), { path: true })) ?? "https://github.com";
  const octokit = new Octokit({
    baseUrl: options.apiUrl ?? githubApiUrlOf(githubUrl),
    authStrategy: createAppAuth,
    auth: { appId, privateKey },
  });
  const wanted = { url, content_type: "json", secret, insecure_ssl: "0" };
  // `url` is also Octokit's own option (the request URL), so the body goes as `data`.
  await octokit.request("PATCH /app/hook/config", { data: wanted } as never);
  const { data } = await octokit.request("GET /app/hook/config");
  const got = data as WebhookConfig;
  const problems = [
    got.url !== url && `url is ${got.url}`,
    got.content_type !== "json" && `content_type is ${got.content_type}`,
    String(got.insecure_ssl) !== "0" && "TLS verification is off",
    !got.secret && "no secret is set",
  ].filter(Boolean);
  if (problems.length) throw new Error(`GitHub did not keep the webhook config: ${problems.join(", ")}`);
  log(`The App's webhook now points at ${url} (json, TLS verified, the stack's secret).`);
  log(
    "If the App was created before the stack, its webhook may still be inactive (GitHub's API cannot " +
      "activate it): tick Active under Webhook in the App's settings.",
  );
  return got;
}
