/**
 * GitHub App setup for App mode. `create`: the preflight checks, then GitHub's manifest flow through
 * pages served on 127.0.0.1, then the App's credentials saved to a 0600 file, stored in the stack
 * config and the file deleted. `set-webhook`: points an existing App's webhook at the deployed stack.
 * The CLI is scripts/github-app.ts; the pages are setup-pages.ts, the checks setup-preflight.ts.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createAppAuth } from "@octokit/auth-app";
import { Octokit } from "@octokit/core";
import { githubApiUrlOf } from "../../src/config/load";
import { appManifest, installUrl, newAppUrl } from "./manifest";
import { PROJECT, type Pulumi } from "./pulumi";
import {
  credentialsDirs,
  deleteCredentials,
  finishCommands,
  type SavedApp,
  type StoreEntry,
  saveCredentials,
} from "./setup-credentials-file";
import { messagePage, PAGE_HEADERS, type ResultView, resultPage, setupPage } from "./setup-pages";
import { preflight, type Ready, type SetupFlags } from "./setup-preflight";

export type Log = (line: string) => void;

const key = (name: string) => `${PROJECT}:${name}`;

export interface CreateOptions extends SetupFlags {
  /** How long to wait for the browser to come back (default 15 min). */
  timeoutMs?: number;
  /** Where the credentials file may go, in order (default ~/.runner-fleet, then the working directory). */
  credentialsDirs?: string[];
}

export interface CreateDeps {
  pulumi: Pulumi;
  log: Log;
  /** Called with the local page's URL once the server listens (the CLI prints it; tests browse it). */
  onReady: (pageUrl: string) => void;
  /** For the GitHub reachability check (default: global fetch). */
  fetch?: typeof fetch;
}

export interface CreatedApp {
  appId: number;
  slug: string;
  htmlUrl: string;
  installUrl: string;
  stack: string;
  webhookSecret: ResultView["webhookSecret"];
}

interface Conversion {
  id: number;
  slug?: string;
  name?: string;
  html_url: string;
  pem: string;
  webhook_secret: string | null;
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Checks everything that could fail later, then runs the manifest flow (see the file header). */
export async function createApp(options: CreateOptions, deps: CreateDeps): Promise<CreatedApp> {
  const ready = await preflight(deps.pulumi, options, deps);
  return serveManifestFlow(ready, options, deps);
}

type Outcome = { app: CreatedApp; view: ResultView; error?: Error };

async function serveManifestFlow(
  ready: Ready,
  options: CreateOptions,
  deps: CreateDeps,
): Promise<CreatedApp> {
  const state = randomBytes(16).toString("hex");
  const { target } = ready;
  let server: Server | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<CreatedApp>((resolve, reject) => {
      let origin = "";
      let done = false;
      const handle = (req: IncomingMessage, res: ServerResponse) => {
        const reply = (status: number, page: string) => {
          res.writeHead(status, PAGE_HEADERS);
          res.end(page);
        };
        // Only this host name: a page elsewhere cannot reach the server through DNS rebinding.
        if (req.headers.host !== new URL(origin).host) {
          reply(421, messagePage("Wrong address", `Open ${origin}/ instead.`));
          return;
        }
        const url = new URL(req.url ?? "/", origin);
        if (req.method === "GET" && url.pathname === "/") {
          const manifest = appManifest({
            ...target,
            redirectUrl: `${origin}/callback`,
            webhookUrl: ready.webhookUrl,
          });
          const action = newAppUrl(target.githubUrl, target.owner, target.user ? "user" : "org", state);
          reply(200, setupPage({ ...target, stack: ready.stack, action, manifest }));
          return;
        }
        if (req.method !== "GET" || url.pathname !== "/callback") {
          reply(404, messagePage("Not found", `This setup serves ${origin}/ only.`));
          return;
        }
        const code = url.searchParams.get("code");
        // The state proves the redirect answers our own form, not a request forged by another page.
        if (done || !code || !sameText(url.searchParams.get("state") ?? "", state)) {
          deps.log("ignored a callback without our state (or after the App was created)");
          reply(
            400,
            messagePage("Not this setup's request", "This request does not belong to the running setup."),
          );
          return;
        }
        done = true;
        exchangeAndStore(code, ready, options, deps).then(
          (outcome) => {
            res.on("finish", () => (outcome.error ? reject(outcome.error) : resolve(outcome.app)));
            reply(200, resultPage(outcome.view));
          },
          (error: unknown) => {
            res.on("finish", () => reject(error));
            reply(
              502,
              messagePage("Creating the App failed", `${String(error)} (the terminal has the details).`),
            );
          },
        );
      };
      server = createServer(handle);
      server.on("error", reject);
      server.listen(0, "127.0.0.1", () => {
        origin = `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
        timer = setTimeout(
          () => reject(new Error("timed out waiting for GitHub to redirect back")),
          options.timeoutMs ?? 15 * 60_000,
        );
        deps.onReady(`${origin}/`);
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

function appOctokit(apiUrl: string, appId: string | number, privateKey: string): Octokit {
  return new Octokit({ baseUrl: apiUrl, authStrategy: createAppAuth, auth: { appId, privateKey } });
}

/** What goes to the stack config: the App's id and key, and the settings they belong with. */
function storePlan(ready: Ready, app: Conversion, storedSecret: string | undefined): StoreEntry[] {
  const { target } = ready;
  return [
    { key: key("github.url"), value: target.githubUrl, path: true },
    { key: key("github.authMode"), value: "app", path: true },
    { key: key("github.appId"), value: String(app.id), path: true },
    { key: key("github.scope"), value: target.scope, path: true },
    { key: key("github.owner"), value: target.owner, path: true },
    { key: key("githubAppPrivateKey"), value: app.pem, secret: true, field: "privateKey" },
    ...(storedSecret
      ? [{ key: key("webhookSecret"), value: storedSecret, secret: true, field: "webhookSecret" as const }]
      : []),
  ];
}

/**
 * After GitHub's redirect: the code is exchanged for the App's id, key and webhook secret, which go
 * to a 0600 file first, then to the stack config; the file is deleted only when all of it is stored.
 * The App must sign deliveries with the secret the stack verifies: the stack's own when it exports
 * it (set on the App through the API), else GitHub's (stored in the stack), else a new one (both).
 */
async function exchangeAndStore(
  code: string,
  ready: Ready,
  options: CreateOptions,
  deps: CreateDeps,
): Promise<Outcome> {
  const { target, stack } = ready;
  // No authentication: the one-time code is the credential.
  const { data } = await new Octokit({ baseUrl: target.apiUrl }).request(
    "POST /app-manifests/{code}/conversions",
    {
      code,
    },
  );
  const app = data as unknown as Conversion;
  const githubSecret = app.webhook_secret || undefined;
  const storedSecret = ready.stackWebhookSecret
    ? undefined
    : (githubSecret ?? randomBytes(32).toString("hex"));
  const saved: SavedApp = {
    about: `runner-fleet: the GitHub App's credentials for stack ${stack}, kept until they are stored in its config. Delete this file once they are.`,
    stack,
    savedAt: new Date().toISOString(),
    appId: app.id,
    slug: app.slug ?? "",
    htmlUrl: app.html_url,
    installUrl: installUrl(app.html_url),
    privateKey: app.pem,
    webhookSecret: storedSecret ?? githubSecret ?? null,
  };
  const file = await saveCredentials(saved, options.credentialsDirs ?? credentialsDirs(), deps.log);
  deps.log(`Created GitHub App ${saved.slug || saved.appId} (id ${saved.appId}): ${saved.htmlUrl}`);

  const entries = storePlan(ready, app, storedSecret);
  const storeError = await storeAll(deps.pulumi, entries);
  const webhookSecret = await pointWebhook(ready, app, storedSecret, githubSecret, deps.log);
  const created: CreatedApp = {
    appId: app.id,
    slug: saved.slug,
    htmlUrl: app.html_url,
    installUrl: saved.installUrl,
    stack,
    webhookSecret,
  };
  const view: ResultView = {
    stack,
    owner: target.owner,
    appName: app.name ?? saved.slug,
    appId: app.id,
    appUrl: app.html_url,
    installUrl: saved.installUrl,
    stored: entries,
    webhookUrl: ready.webhookUrl,
    webhookSecret,
  };
  if (!storeError) {
    if (file) await deleteCredentials(file);
    deps.log(
      `Stored in stack ${stack}: ${entries.map((e) => e.key + (e.secret ? " (secret)" : "")).join(", ")}.`,
    );
    deps.log(`Next: install the App on ${target.owner}: ${saved.installUrl}`);
    deps.log(
      "Then run `pulumi up` (seconds, no image rebuild): it gives the running stack the App's credentials.",
    );
    return { app: created, view };
  }
  const commands = file ? finishCommands(file, stack, entries) : [];
  deps.log(`Storing the credentials in stack ${stack} failed: ${storeError.message}`);
  if (file) {
    deps.log(`Nothing is lost: the App's id, private key and webhook secret are in ${file} (mode 0600).`);
    deps.log(`Finish with these commands, then install the App (${saved.installUrl}) and run \`pulumi up\`:`);
    for (const command of commands) deps.log(`  ${command}`);
  } else {
    // Neither a file nor the stack took them: the terminal is the last place left.
    deps.log(
      `No file could be written either. The App's credentials, to store by hand:\n${JSON.stringify(saved, null, 2)}`,
    );
  }
  const error = new Error(
    `storing the App's credentials in stack ${stack} failed${file ? `; ${file} keeps them` : ""}`,
  );
  return { app: created, view: { ...view, failure: { error: storeError.message, file, commands } }, error };
}

async function storeAll(pulumi: Pulumi, entries: StoreEntry[]): Promise<Error | undefined> {
  try {
    for (const e of entries) await pulumi.configSet(e.key, e.value, { path: e.path, secret: e.secret });
    return undefined;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

/** Makes the App sign with the secret the stack verifies, when that is not GitHub's own. */
async function pointWebhook(
  ready: Ready,
  app: Conversion,
  storedSecret: string | undefined,
  githubSecret: string | undefined,
  log: Log,
): Promise<ResultView["webhookSecret"]> {
  const secret = ready.stackWebhookSecret ?? storedSecret!;
  if (secret === githubSecret) return "stored";
  try {
    await applyWebhookConfig(appOctokit(ready.target.apiUrl, app.id, app.pem), ready.webhookUrl, secret);
    return ready.stackWebhookSecret ? "stack" : "stored";
  } catch (error) {
    log(`Could not set the App's webhook secret: ${error instanceof Error ? error.message : String(error)}`);
    log("After `pulumi up`, run `npm run setup:github-app -- set-webhook`.");
    return "not-set";
  }
}

export interface WebhookConfig {
  url?: string;
  content_type?: string;
  insecure_ssl?: string | number;
  secret?: string;
}

/**
 * Sets the App's webhook to `url` with `secret`, content type json and TLS verification, then reads
 * the config back to check GitHub kept it.
 */
async function applyWebhookConfig(octokit: Octokit, url: string, secret: string): Promise<WebhookConfig> {
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
  return got;
}

export interface SetWebhookOptions {
  /** Override the API base (default: derived from runner-fleet:github.url). */
  apiUrl?: string;
}

/**
 * Points the App's webhook at the stack (`webhookUrl` output) with the secret the stack verifies
 * (its `webhookSecret` output, else the `webhookSecret` config), for an App created before the stack
 * or a stack that was re-created.
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
  const required = async (name: string, value: Promise<string | undefined>) => {
    const found = await value;
    if (!found) throw new Error(`${key(name)} is not set (run \`npm run setup:github-app -- create\`)`);
    return found;
  };
  const appId = await required("github.appId", pulumi.configGet(key("github.appId"), { path: true }));
  const privateKey = await required("githubAppPrivateKey", pulumi.configGet(key("githubAppPrivateKey")));
  const secret = await required(
    "webhookSecret",
    pulumi
      .stackOutput("webhookSecret", { showSecrets: true })
      .then((value) => value ?? pulumi.configGet(key("webhookSecret"))),
  );
  const githubUrl = (await pulumi.configGet(key("github.url"), { path: true })) ?? "https://github.com";
  const octokit = appOctokit(options.apiUrl ?? githubApiUrlOf(githubUrl), appId, privateKey);
  const got = await applyWebhookConfig(octokit, url, secret);
  log(`The App's webhook now points at ${url} (json, TLS verified, the stack's secret).`);
  log(
    "An App created by an older setup may have its webhook inactive (GitHub's API cannot " +
      "activate it): then tick Active under Webhook in the App's settings once.",
  );
  return got;
}
