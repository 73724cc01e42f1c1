/**
 * `setup:github-app create` for App mode: the preflight checks, then GitHub's manifest flow through
 * pages served on 127.0.0.1, then the App's credentials saved to a 0600 file, stored in the stack
 * config and the file deleted. The CLI is scripts/github-app.ts; the checks are setup-preflight.ts,
 * the pages setup-pages.ts, the file setup-credentials-file.ts, the App's webhook setup-webhook.ts.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Octokit } from "@octokit/core";
import { appManifest, appsSettingsUrl, installUrl, newAppUrl } from "./manifest";
import { projectKey as key, type Pulumi } from "./pulumi";
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
import { applyWebhookConfig, appOctokit } from "./setup-webhook";

export type Log = (line: string) => void;

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

/** One run of the manifest flow: what the request handler needs, and how the run ends. */
interface Flow {
  ready: Ready;
  options: CreateOptions;
  deps: CreateDeps;
  /** Random, sent with the form; GitHub echoes it back on the redirect. */
  state: string;
  /** `http://127.0.0.1:PORT`, once listening. */
  origin: string;
  /** The callback was taken: later ones are refused. */
  done: boolean;
  resolve: (app: CreatedApp) => void;
  reject: (error: unknown) => void;
}

async function serveManifestFlow(
  ready: Ready,
  options: CreateOptions,
  deps: CreateDeps,
): Promise<CreatedApp> {
  let server: Server | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<CreatedApp>((resolve, reject) => {
      const state = randomBytes(16).toString("hex");
      const flow: Flow = { ready, options, deps, state, origin: "", done: false, resolve, reject };
      server = createServer((req, res) => handleRequest(flow, req, res));
      server.on("error", reject);
      server.listen(0, "127.0.0.1", () => {
        flow.origin = `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
        timer = setTimeout(
          () => reject(new Error("timed out waiting for GitHub to redirect back")),
          options.timeoutMs ?? 15 * 60_000,
        );
        deps.onReady(`${flow.origin}/`);
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

/** `/`: the setup page; `/callback`: GitHub's redirect, answered with the result page. */
function handleRequest(flow: Flow, req: IncomingMessage, res: ServerResponse): void {
  const { ready, origin, deps } = flow;
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
    const { target } = ready;
    const manifest = appManifest({
      ...target,
      redirectUrl: `${origin}/callback`,
      webhookUrl: ready.webhookUrl,
    });
    const action = newAppUrl(target.githubUrl, target.owner, target.user ? "user" : "org", flow.state);
    reply(200, setupPage({ ...target, stack: ready.stack, action, manifest }));
    return;
  }
  if (req.method !== "GET" || url.pathname !== "/callback") {
    reply(404, messagePage("Not found", `This setup serves ${origin}/ only.`));
    return;
  }
  const code = url.searchParams.get("code");
  // The state proves the redirect answers our own form, not a request forged by another page.
  if (flow.done || !code || !sameText(url.searchParams.get("state") ?? "", flow.state)) {
    deps.log("ignored a callback without our state (or after the App was created)");
    reply(400, messagePage("Not this setup's request", "This request does not belong to the running setup."));
    return;
  }
  flow.done = true;
  exchangeAndStore(code, ready, flow.options, deps).then(
    (outcome) => {
      res.on("finish", () => (outcome.error ? flow.reject(outcome.error) : flow.resolve(outcome.app)));
      reply(200, resultPage(outcome.view));
    },
    (error: unknown) => {
      res.on("finish", () => flow.reject(error));
      reply(
        502,
        messagePage("Creating the App failed", error instanceof Error ? error.message : String(error)),
      );
    },
  );
}

const EXCHANGE_ATTEMPTS = 3;

/**
 * `POST /app-manifests/{code}/conversions`, unauthenticated (the one-time code is the credential),
 * tried again on a network error or a 5xx: GitHub has created the App, and this is the only answer
 * that carries its private key.
 */
async function exchangeCode(code: string, ready: Ready): Promise<Conversion> {
  const { target } = ready;
  const octokit = new Octokit({ baseUrl: target.apiUrl });
  for (let attempt = 1; ; attempt++) {
    try {
      const { data } = await octokit.request("POST /app-manifests/{code}/conversions", { code });
      return data as unknown as Conversion;
    } catch (error) {
      const status = (error as { status?: number }).status ?? 500;
      if (status < 500 || attempt === EXCHANGE_ATTEMPTS) {
        const apps = appsSettingsUrl(target.githubUrl, target.owner, target.user ? "user" : "org");
        throw new Error(
          `exchanging GitHub's one-time code failed: ${error instanceof Error ? error.message : String(error)}. ` +
            `GitHub may have created the App without handing over its key: in ${apps}, generate a private key ` +
            "for it and store it (pulumi config set --secret runner-fleet:githubAppPrivateKey < key.pem), or delete it and run this again.",
        );
      }
      await new Promise((resolve) => setTimeout(resolve, attempt * 1000));
    }
  }
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
  const app = await exchangeCode(code, ready);
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
  const { appId, slug, htmlUrl } = saved;
  const created: CreatedApp = { appId, slug, htmlUrl, installUrl: saved.installUrl, stack, webhookSecret };
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
  if (storeError) return reportStoreFailure(storeError, { saved, file, entries, created, view }, deps.log);
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

/** The file stays; the terminal and the result page get its path and the commands that finish the job. */
function reportStoreFailure(
  storeError: Error,
  run: {
    saved: SavedApp;
    file: string | undefined;
    entries: StoreEntry[];
    created: CreatedApp;
    view: ResultView;
  },
  log: Log,
): Outcome {
  const { saved, file, view } = run;
  const commands = file ? finishCommands(file, saved.stack, run.entries) : [];
  log(`Storing the credentials in stack ${saved.stack} failed: ${storeError.message}`);
  if (file) {
    log(`Nothing is lost: the App's id, private key and webhook secret are in ${file} (mode 0600).`);
    log(`Finish with these commands, then install the App (${saved.installUrl}) and run \`pulumi up\`:`);
    for (const command of commands) log(`  ${command}`);
  } else {
    // Neither a file nor the stack took them: the terminal is the last place left.
    log(
      `No file could be written either. The App's credentials, to store by hand:\n${JSON.stringify(saved, null, 2)}`,
    );
  }
  const error = new Error(
    `storing the App's credentials in stack ${saved.stack} failed${file ? `; ${file} keeps them` : ""}`,
  );
  return {
    app: run.created,
    view: { ...view, failure: { error: storeError.message, file, commands } },
    error,
  };
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
