/**
 * `npm run doctor`'s GitHub App checks, with the App's JWT: where it is installed (and on which
 * repositories), its webhook's config, whether GitHub delivers to it (the API has no "active" flag:
 * deliveries are the evidence) and the last hour's deliveries. The webhook's secret is checked by
 * doctor-webhook.ts.
 */
import { createAppAuth } from "@octokit/auth-app";
import { Octokit } from "@octokit/core";
import { delivered, type HookDelivery } from "../../lambda/core/redelivery";
import type { StackConfig } from "../../src/config/schema";
import { type Check, fail, pass, warn } from "./doctor-check";
import { formatDuration } from "./explain";
import { appPermissions, appsSettingsUrl, installUrl } from "./manifest";

/** GitHub keeps an App's deliveries for 3 days (its docs: "the past 3 days"). */
export const DELIVERY_RETENTION_MS = 3 * 24 * 3600_000;

export interface AppContext {
  octokit: Octokit;
  config: StackConfig;
  apiUrl: string;
  appId: number;
  privateKey: string;
  webhookUrl: string;
  /** `runner-fleet-<stack>`: the Lambdas' names start with it. */
  prefix: string;
  now: Date;
}

/** What GET /app says about the App, as the checks use it. */
export interface AppInfo {
  slug: string;
  htmlUrl: string;
  /** The App's settings page (the webhook's Active box is there). */
  settingsUrl: string;
  createdAt: string;
}

export type Delivery = HookDelivery & { status: string };

const ago = (iso: string, now: Date) => `${formatDuration((now.getTime() - Date.parse(iso)) / 1000)} ago`;
const SET_WEBHOOK = "npm run setup:github-app -- set-webhook";

export async function readApp(octokit: Octokit, githubUrl: string): Promise<AppInfo> {
  const { data } = await octokit.request("GET /app");
  const owner = data?.owner as { login?: string; type?: string } | undefined;
  const type = owner?.type === "Organization" ? "org" : "user";
  return {
    slug: data?.slug ?? "",
    htmlUrl: data?.html_url ?? "",
    settingsUrl: `${appsSettingsUrl(githubUrl, owner?.login ?? "", type)}/${data?.slug ?? ""}`,
    createdAt: data?.created_at ?? "",
  };
}

interface Installation {
  id: number;
  account: { login?: string } | null;
  repository_selection: "all" | "selected";
  html_url: string;
  permissions: Record<string, string | undefined>;
  events: string[];
  created_at: string;
  suspended_at: string | null;
}

async function findInstallation(octokit: Octokit, owner: string): Promise<Installation | undefined> {
  for (let page = 1; page <= 10; page++) {
    const { data } = await octokit.request("GET /app/installations", { per_page: 100, page });
    const found = data.find((i) => i.account?.login?.toLowerCase() === owner.toLowerCase());
    if (found) return found as Installation;
    if (data.length < 100) return undefined;
  }
  return undefined;
}

/** The repositories a `selected` installation covers, through an installation token. */
async function installationRepos(app: AppContext, installationId: number): Promise<string[]> {
  const octokit = new Octokit({
    baseUrl: app.apiUrl,
    authStrategy: createAppAuth,
    auth: { appId: app.appId, privateKey: app.privateKey, installationId },
  });
  const names: string[] = [];
  for (let page = 1; page <= 50; page++) {
    const { data } = await octokit.request("GET /installation/repositories", { per_page: 100, page });
    names.push(...data.repositories.map((r) => r.name));
    if (names.length >= data.total_count || data.repositories.length === 0) break;
  }
  return names;
}

function missingPermissions(installation: Installation, scope: "org" | "repo"): string[] {
  return Object.entries(appPermissions(scope))
    .filter(([name, level]) => {
      const granted = installation.permissions[name];
      return !(granted === "write" || (level === "read" && granted === "read"));
    })
    .map(([name, level]) => `${name} (${level})`);
}

/** The App is installed on the owner, with its permissions and events, on the repositories needed. */
export async function installationCheck(
  app: AppContext,
  info: AppInfo,
): Promise<{ check: Check; installation?: Installation }> {
  const name = "App installed";
  const { owner, scope, repositories } = app.config.github;
  const installation = await findInstallation(app.octokit, owner);
  if (!installation) {
    const which =
      scope === "repo" && repositories.length
        ? `the repositories ${repositories.join(", ")}`
        : "all repositories";
    return {
      check: fail(
        name,
        `the App is not installed on ${owner}`,
        `install it on ${owner} (${which}): ${installUrl(info.htmlUrl)}`,
      ),
    };
  }
  const settings = installation.html_url;
  if (installation.suspended_at)
    return {
      installation,
      check: fail(name, `the installation on ${owner} is suspended`, `unsuspend it: ${settings}`),
    };
  const lacking = missingPermissions(installation, scope);
  if (lacking.length)
    return {
      installation,
      check: fail(
        name,
        `the installation on ${owner} lacks ${lacking.join(", ")}`,
        `accept the App's permissions at ${settings} (or add them to the App under Permissions: ${info.settingsUrl})`,
      ),
    };
  if (!installation.events.includes("workflow_job"))
    return {
      installation,
      check: fail(
        name,
        "the App is not subscribed to workflow_job events",
        `tick "Workflow job" under Subscribe to events: ${info.settingsUrl}`,
      ),
    };
  return { installation, check: await coverageCheck(app, installation) };
}

async function coverageCheck(app: AppContext, installation: Installation): Promise<Check> {
  const name = "App installed";
  const { owner, scope, repositories } = app.config.github;
  if (installation.repository_selection === "all") return pass(name, `on ${owner}, all repositories`);
  const covered = await installationRepos(app, installation.id);
  const lower = covered.map((r) => r.toLowerCase());
  const missing = scope === "repo" ? repositories.filter((r) => !lower.includes(r.toLowerCase())) : [];
  const list = covered.length > 10 ? `${covered.slice(0, 10).join(", ")}, …` : covered.join(", ");
  if (missing.length)
    return fail(
      name,
      `on ${owner}, but not on ${missing.join(", ")} (in github.repositories); it covers ${list || "no repository"}`,
      `add them under Repository access: ${installation.html_url}`,
    );
  return pass(name, `on ${owner}, ${covered.length} selected repositories: ${list}`);
}

/** The App's webhook is this stack's: URL, JSON, TLS verified, a secret set. */
export async function hookConfigCheck(app: AppContext): Promise<Check> {
  const name = "App webhook config";
  const { data } = await app.octokit.request("GET /app/hook/config");
  const problems = [
    data.url !== app.webhookUrl &&
      `it points at ${data.url || "nothing"}, not this stack's ${app.webhookUrl}`,
    data.content_type !== "json" && `content type ${data.content_type}, not json`,
    String(data.insecure_ssl) !== "0" && "TLS verification is off",
    !data.secret && "no secret is set",
  ].filter((p): p is string => typeof p === "string");
  return problems.length
    ? fail(name, problems.join("; "), SET_WEBHOOK)
    : pass(name, `${data.url} (json, TLS verified, a secret set)`);
}

/** The App's deliveries back to `since`, newest first (GitHub's cursor pages). */
export async function readDeliveries(octokit: Octokit, since: Date): Promise<Delivery[]> {
  const found: Delivery[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 20; page++) {
    const response = await octokit.request("GET /app/hook/deliveries", {
      per_page: 100,
      ...(cursor ? { cursor } : {}),
    });
    for (const d of response.data as Delivery[]) {
      if (Date.parse(d.delivered_at) < since.getTime()) return found;
      found.push(d);
    }
    const next = /<([^>]+)>;\s*rel="next"/.exec(response.headers.link ?? "")?.[1];
    cursor = next ? (new URL(next).searchParams.get("cursor") ?? undefined) : undefined;
    if (!cursor) break;
  }
  return found;
}

/**
 * Whether GitHub delivers to the webhook: GitHub's API does not show an App webhook's Active box, but
 * an active one gets the App's ping and every installation event, so no delivery at all since the App
 * or its installation was created (within GitHub's retention) means inactive.
 */
export function activeCheck(deliveries: Delivery[], since: string[], info: AppInfo, now: Date): Check {
  const name = "App webhook active";
  const fix = `tick Active under Webhook in the App's settings and save: ${info.settingsUrl}`;
  const newest = deliveries[0];
  if (newest)
    return pass(
      name,
      `GitHub sent ${deliveries.length} deliveries in the last 3 days, the latest ${ago(newest.delivered_at, now)} (${newest.event})`,
    );
  const created = since
    .filter(Boolean)
    .map(Date.parse)
    .sort((a, b) => b - a)[0];
  if (created !== undefined && now.getTime() - created < DELIVERY_RETENTION_MS)
    return fail(
      name,
      `no delivery since the App was installed ${ago(new Date(created).toISOString(), now)}: its webhook is inactive (GitHub sends an active one the installation event)`,
      fix,
    );
  return warn(
    name,
    "no delivery in the last 3 days: a quiet fleet, or an inactive webhook (GitHub's API does not show which)",
    fix,
  );
}

function fixesFor(failed: Delivery[], app: AppContext): string {
  const fixes = new Set<string>();
  for (const d of failed) {
    if (d.status_code === 401) fixes.add(`GitHub signs with another secret: ${SET_WEBHOOK}`);
    else if (d.status_code >= 500)
      fixes.add(`the webhook failed: aws logs tail /aws/lambda/${app.prefix}-webhook --since 1h`);
    else if (d.status_code === 0 || d.status_code >= 300)
      fixes.add(
        `GitHub could not deliver to ${app.webhookUrl} (GHES: can the appliance reach AWS's API Gateway? a proxy?)`,
      );
  }
  return `${[...fixes].join("; ")}; the reconciler redelivers failed workflow_job deliveries for a few hours`;
}

/** The last hour's deliveries: failures that no later attempt delivered. */
export function recentDeliveriesCheck(deliveries: Delivery[], app: AppContext): Check {
  const name = "webhook deliveries (last hour)";
  const hourAgo = app.now.getTime() - 3600_000;
  const recent = deliveries.filter((d) => Date.parse(d.delivered_at) >= hourAgo);
  const deliveredEvents = new Set(deliveries.filter(delivered).map((d) => d.guid));
  const failed = recent.filter((d) => !delivered(d));
  const outstanding = failed.filter((d) => !deliveredEvents.has(d.guid));
  if (outstanding.length) {
    const byStatus = new Map<string, number>();
    for (const d of outstanding) byStatus.set(d.status, (byStatus.get(d.status) ?? 0) + 1);
    const counts = [...byStatus].map(([status, n]) => `${n} × ${status}`).join(", ");
    return fail(
      name,
      `${outstanding.length} of ${recent.length} failed and were not redelivered: ${counts}`,
      fixesFor(outstanding, app),
    );
  }
  const redelivered = failed.length ? `; ${failed.length} failed and were redelivered` : "";
  return pass(name, recent.length ? `${recent.length} delivered${redelivered}` : "none in the last hour");
}
