/**
 * GitHub REST API (github.com, or GHES at `https://HOST/api/v3`: `settings().githubApiUrl`).
 *
 * Auth: a GitHub App (`@octokit/auth-app`: a JWT for `/app/...` routes, an installation token for
 * the rest; auth-app caches each installation's token in memory for 59 of its 60 minutes and shares
 * one in-flight token request between concurrent callers, so this module keeps one client per
 * installation for the life of the process) or a fine-grained PAT (token mode).
 *
 * Resilience: `@octokit/plugin-retry` retries 5xx and network errors (after 1 s, then 4 s);
 * `@octokit/plugin-throttling` waits out primary and secondary rate limits (Retry-After) within
 * the budget below, and paces this process's write requests with a token bucket of
 * `settings().githubWritesPerMinute` (GitHub's per-App rate), a few in flight at once. The launcher
 * admits only the registrations the budget shared by all launchers grants (github-budget.ts), and
 * hears of every rate-limit answer (onGitHubHold) to hold them all back. A request still failing
 * after that throws a RequestError with `status`; the caller decides (the launcher releases the job).
 *
 * Every function is small and typed: the reconciler reuses them.
 */
import { createAppAuth } from "@octokit/auth-app";
import { Octokit } from "@octokit/core";
import { retry } from "@octokit/plugin-retry";
import { throttling } from "@octokit/plugin-throttling";
import Bottleneck from "bottleneck/light.js";
import { delivered, type HookDelivery } from "../core/redelivery";
import { logger } from "../shared/observability";
import { type GitHubWebhook, settings } from "../shared/settings";
import { readSecret } from "./secrets";

const FleetOctokit = Octokit.plugin(retry, throttling);
export type GitHub = InstanceType<typeof FleetOctokit>;

/** Timing knobs; production uses the defaults, tests shrink the waits. */
export interface GitHubTuning {
  /** Milliseconds per second of a Retry-After or retry delay (1000 = real time). */
  retryAfterBaseValue: number;
  /** Retries of a 5xx / network error (plugin-retry waits 1 s, 4 s, 9 s…). */
  serverErrorRetries: number;
  /** Retries of a rate-limited request before giving up. */
  rateLimitRetries: number;
  /** Longest Retry-After (seconds) worth waiting inside one Lambda invocation. */
  maxRetryAfterSeconds: number;
  /** Write requests in flight at once. */
  writeConcurrency: number;
}

// Sized for a launcher with a 60 s timeout: waits beyond these are better spent back in the queue.
const DEFAULT_TUNING: GitHubTuning = {
  retryAfterBaseValue: 1000,
  serverErrorRetries: 2,
  rateLimitRetries: 2,
  maxRetryAfterSeconds: 20,
  writeConcurrency: 8,
};

let tuning: GitHubTuning = DEFAULT_TUNING;
const clients = new Map<string, Promise<GitHub>>();
let writeLimiter: { perMinute: number; group: Bottleneck.Group } | undefined;
/** Until when GitHub asked this process to hold back (epoch ms): set by any rate-limit answer. */
let holdBackUntil = 0;
const LIMITER_ID = "runner-fleet";

/** Overrides timing knobs (tests) and forgets every client. */
export function tuneGitHub(overrides: Partial<GitHubTuning> = {}): void {
  tuning = { ...DEFAULT_TUNING, ...overrides };
  forgetGitHubClients();
}

/** Forgets the clients (and with them the cached installation tokens). */
export function forgetGitHubClients(): void {
  clients.clear();
  writeLimiter = undefined;
  holdBackUntil = 0;
}

/** Until when (epoch ms) GitHub's last rate-limit answer to this process says to hold back. */
export function githubHeldUntil(): number {
  return holdBackUntil;
}

type HoldListener = (untilMs: number) => Promise<void> | void;
let holdListener: HoldListener | undefined;

/**
 * Who else must hear that GitHub asked to wait (the launcher: every launcher, through the shared
 * budget). Awaited before the request is retried or fails; a failing listener is ignored.
 */
export function onGitHubHold(listener: HoldListener | undefined): void {
  holdListener = listener;
}

/**
 * One write limiter for every client of the process (GitHub counts JIT registrations per App): a
 * token bucket of `githubWritesPerMinute` tokens refilled at that rate, so a burst of jobs is
 * registered at once and a sustained stream at the documented pace, instead of plugin-throttling's
 * default of one write per second.
 */
function writeGroup(): Bottleneck.Group {
  const perMinute = Math.max(1, settings().githubWritesPerMinute);
  if (!writeLimiter || writeLimiter.perMinute !== perMinute) {
    // A changed rate (tests) must not leave clients pacing on the old bucket.
    if (writeLimiter) clients.clear();
    // Refill at least every 250 ms (Bottleneck's heartbeat), in proportional steps.
    const interval = Math.max(250, Math.floor(60_000 / perMinute));
    writeLimiter = {
      perMinute,
      group: new Bottleneck.Group({
        maxConcurrent: tuning.writeConcurrency,
        reservoir: perMinute,
        reservoirIncreaseMaximum: perMinute,
        reservoirIncreaseInterval: interval,
        reservoirIncreaseAmount: Math.max(1, Math.round((perMinute * interval) / 60_000)),
      }),
    };
  }
  return writeLimiter.group;
}

function clientOptions() {
  const retryWithin =
    (kind: string) =>
    async (retryAfter: number, options: { method: string; url: string }, _o: unknown, retryCount: number) => {
      const again = retryCount < tuning.rateLimitRetries && retryAfter <= tuning.maxRetryAfterSeconds;
      const until = Date.now() + retryAfter * tuning.retryAfterBaseValue;
      holdBackUntil = Math.max(holdBackUntil, until);
      await Promise.resolve(holdListener?.(until)).catch(() => undefined);
      logger.warn("GitHub rate limit", {
        kind,
        method: options.method,
        url: options.url,
        retryAfter,
        retryCount,
        again,
      });
      return again;
    };
  return {
    baseUrl: settings().githubApiUrl,
    userAgent: "runner-fleet",
    // Octokit's own notices (deprecations, retries) as structured logs; never request bodies.
    log: {
      debug: () => {},
      info: () => {},
      warn: (message: string) => logger.warn(message),
      error: (message: string) => logger.error(message),
    },
    retry: { retryAfterBaseValue: tuning.retryAfterBaseValue, retries: tuning.serverErrorRetries },
    throttle: {
      id: LIMITER_ID,
      Bottleneck,
      write: writeGroup(),
      retryAfterBaseValue: tuning.retryAfterBaseValue,
      onRateLimit: retryWithin("primary"),
      onSecondaryRateLimit: retryWithin("secondary"),
    },
  };
}

/**
 * The client acting for an installation (app mode; `installationId` from the job record) or with
 * the PAT (token mode, installation ignored).
 */
export function githubForInstallation(installationId?: number): Promise<GitHub> {
  const s = settings();
  const key =
    s.githubAuthMode === "token"
      ? `${s.githubApiUrl}|token`
      : `${s.githubApiUrl}|app|${installationId ?? ""}`;
  let client = clients.get(key);
  if (!client) {
    client = createClient(installationId);
    client.catch(() => clients.delete(key));
    clients.set(key, client);
  }
  return client;
}

/** The client acting as the App itself (JWT): `/app/...` routes such as webhook deliveries. */
export function githubApp(): Promise<GitHub> {
  return githubForInstallation(undefined);
}

/**
 * Starts getting what registering runners for these installations needs (the App key, the client,
 * an installation token: ~0.5 s the first time), so that it overlaps other work (CreateFleet)
 * instead of following it. Best effort: a failure here is met again, and reported, by the call.
 */
export function prepareGitHub(installationIds: (number | undefined)[]): void {
  const app = settings().githubAuthMode === "app";
  for (const id of new Set(app ? installationIds : [undefined])) {
    if (app && !id) continue;
    githubForInstallation(id)
      .then((gh) => (app ? gh.auth({ type: "installation" }) : undefined))
      .catch(() => undefined);
  }
}

async function createClient(installationId: number | undefined): Promise<GitHub> {
  const s = settings();
  if (s.githubAuthMode === "token") {
    return new FleetOctokit({ ...clientOptions(), auth: await readSecret(s.githubTokenParam) });
  }
  const privateKey = await readSecret(s.githubPrivateKeyParam);
  return new FleetOctokit({
    ...clientOptions(),
    authStrategy: createAppAuth,
    auth: { appId: s.githubAppId, privateKey, ...(installationId ? { installationId } : {}) },
  });
}

// ---------------------------------------------------------------------------------------------
// Runners

/** Where runners register: an organization, or one repository. */
export type RunnerScope = { kind: "org"; org: string } | { kind: "repo"; owner: string; repo: string };

/** The scope a job's runner registers in, per `settings().runnerScope`. `repo` is `owner/name`. */
export function scopeFor(job: { owner: string; repo: string }, mode = settings().runnerScope): RunnerScope {
  if (mode === "org") return { kind: "org", org: job.owner };
  const [owner = job.owner, name = ""] = job.repo.includes("/")
    ? job.repo.split("/", 2)
    : [job.owner, job.repo];
  return { kind: "repo", owner, repo: name };
}

export interface JitRequest {
  name: string;
  /** Org scope: the label config's runner group. Repository runners have no groups: 1 (Default). */
  runnerGroupId: number;
  labels: string[];
  workFolder?: string;
}

export interface JitConfig {
  runnerId: number;
  runnerName: string;
  /** Secret: hand it to the instance, never log it. */
  encodedJitConfig: string;
}

/** `generate-jitconfig`: registers a one-job runner and returns its encoded config. */
export async function generateJitConfig(
  gh: GitHub,
  scope: RunnerScope,
  request: JitRequest,
): Promise<JitConfig> {
  const body = {
    name: request.name,
    runner_group_id: scope.kind === "org" ? request.runnerGroupId : 1,
    labels: request.labels,
    work_folder: request.workFolder ?? "_work",
  };
  const { data } =
    scope.kind === "org"
      ? await gh.request("POST /orgs/{org}/actions/runners/generate-jitconfig", { org: scope.org, ...body })
      : await gh.request("POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig", {
          owner: scope.owner,
          repo: scope.repo,
          ...body,
        });
  return {
    runnerId: data.runner.id,
    runnerName: data.runner.name,
    encodedJitConfig: data.encoded_jit_config,
  };
}

export interface Runner {
  id: number;
  name: string;
  status: string;
  busy: boolean;
  labels: string[];
}

/** Self-hosted runners of a scope (all pages), optionally only those named `name`. */
export async function listRunners(
  gh: GitHub,
  scope: RunnerScope,
  options: { name?: string } = {},
): Promise<Runner[]> {
  const runners: Runner[] = [];
  for (let page = 1; ; page++) {
    const query = { per_page: 100, page, ...(options.name ? { name: options.name } : {}) };
    const { data } =
      scope.kind === "org"
        ? await gh.request("GET /orgs/{org}/actions/runners", { org: scope.org, ...query })
        : await gh.request("GET /repos/{owner}/{repo}/actions/runners", {
            owner: scope.owner,
            repo: scope.repo,
            ...query,
          });
    for (const r of data.runners) {
      runners.push({
        id: r.id,
        name: r.name,
        status: r.status,
        busy: r.busy,
        labels: r.labels.map((l) => l.name),
      });
    }
    if (data.runners.length < 100 || runners.length >= data.total_count) return runners;
  }
}

/** Removes a runner registration; an already removed one (404) is fine. */
export async function deleteRunner(gh: GitHub, scope: RunnerScope, runnerId: number): Promise<void> {
  try {
    if (scope.kind === "org") {
      await gh.request("DELETE /orgs/{org}/actions/runners/{runner_id}", {
        org: scope.org,
        runner_id: runnerId,
      });
    } else {
      await gh.request("DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}", {
        owner: scope.owner,
        repo: scope.repo,
        runner_id: runnerId,
      });
    }
  } catch (error) {
    if ((error as { status?: number }).status !== 404) throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Workflow jobs

export interface WorkflowJob {
  id: number;
  runId: number;
  status: string;
  conclusion: string | null;
  labels: string[];
  runnerName: string | null;
  runnerId: number | null;
}

/** A workflow job (`repo` is `owner/name`), or undefined if GitHub no longer knows it. */
export async function getWorkflowJob(
  gh: GitHub,
  repo: string,
  jobId: number,
): Promise<WorkflowJob | undefined> {
  const [owner = "", name = ""] = repo.split("/", 2);
  try {
    const { data } = await gh.request("GET /repos/{owner}/{repo}/actions/jobs/{job_id}", {
      owner,
      repo: name,
      job_id: jobId,
    });
    return {
      id: Number(data.id),
      runId: Number(data.run_id),
      status: data.status,
      conclusion: data.conclusion,
      labels: data.labels,
      runnerName: data.runner_name,
      runnerId: data.runner_id,
    };
  } catch (error) {
    if ((error as { status?: number }).status === 404) return undefined;
    throw error;
  }
}

/** Re-runs one workflow job (and what depends on it). */
export async function rerunJob(gh: GitHub, repo: string, jobId: number): Promise<void> {
  const [owner = "", name = ""] = repo.split("/", 2);
  await gh.request("POST /repos/{owner}/{repo}/actions/jobs/{job_id}/rerun", {
    owner,
    repo: name,
    job_id: jobId,
  });
}

// ---------------------------------------------------------------------------------------------
// Webhook deliveries: the App's (App JWT: use githubApp()), or a webhook the program created in
// token mode (the PAT's client), an organization's or a repository's.

/** Whose deliveries: the App's webhook, or an organization's or repository's (by hook id). */
export type WebhookSource =
  | { kind: "app" }
  | { kind: "org"; org: string; hookId: number }
  | { kind: "repo"; owner: string; repo: string; hookId: number };

/** The source of a token-mode webhook (settings().githubWebhooks); none: the App's. */
export function webhookSource(webhook?: GitHubWebhook): WebhookSource {
  if (!webhook) return { kind: "app" };
  return webhook.repo
    ? { kind: "repo", owner: webhook.owner, repo: webhook.repo, hookId: webhook.hookId }
    : { kind: "org", org: webhook.owner, hookId: webhook.hookId };
}

/** One page of a webhook's deliveries, newest first. */
function deliveriesPage(gh: GitHub, source: WebhookSource, cursor: string | undefined) {
  const page = { per_page: 100, ...(cursor ? { cursor } : {}) };
  switch (source.kind) {
    case "app":
      return gh.request("GET /app/hook/deliveries", page);
    case "org":
      return gh.request("GET /orgs/{org}/hooks/{hook_id}/deliveries", {
        org: source.org,
        hook_id: source.hookId,
        ...page,
      });
    case "repo":
      return gh.request("GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries", {
        owner: source.owner,
        repo: source.repo,
        hook_id: source.hookId,
        ...page,
      });
  }
}

/**
 * A webhook's deliveries that failed (status code not 2xx) since `since`, newest first. A delivery
 * that was later redelivered successfully appears with its guid on a success too: the result leaves
 * out guids that have any successful delivery in the window.
 */
export async function listFailedDeliveries(
  gh: GitHub,
  since: Date,
  source: WebhookSource = { kind: "app" },
): Promise<HookDelivery[]> {
  const all: HookDelivery[] = [];
  let cursor: string | undefined;
  for (;;) {
    const response = await deliveriesPage(gh, source, cursor);
    let reachedSince = false;
    for (const d of response.data) {
      if (Date.parse(d.delivered_at) < since.getTime()) {
        reachedSince = true;
        break;
      }
      all.push({
        id: Number(d.id),
        guid: d.guid,
        delivered_at: d.delivered_at,
        redelivery: d.redelivery,
        status_code: d.status_code,
        event: d.event,
        action: d.action,
      });
    }
    const next = /[?&]cursor=([^&>]+)[^>]*>;\s*rel="next"/.exec(response.headers.link ?? "")?.[1];
    cursor = next && decodeURIComponent(next);
    if (reachedSince || !cursor || response.data.length === 0) break;
  }
  const succeeded = new Set(all.filter(delivered).map((d) => d.guid));
  return all.filter((d) => !delivered(d) && !succeeded.has(d.guid));
}

/** Asks GitHub to deliver a webhook delivery again. */
export async function redeliver(
  gh: GitHub,
  deliveryId: number,
  source: WebhookSource = { kind: "app" },
): Promise<void> {
  switch (source.kind) {
    case "app":
      await gh.request("POST /app/hook/deliveries/{delivery_id}/attempts", { delivery_id: deliveryId });
      return;
    case "org":
      await gh.request("POST /orgs/{org}/hooks/{hook_id}/deliveries/{delivery_id}/attempts", {
        org: source.org,
        hook_id: source.hookId,
        delivery_id: deliveryId,
      });
      return;
    case "repo":
      await gh.request("POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts", {
        owner: source.owner,
        repo: source.repo,
        hook_id: source.hookId,
        delivery_id: deliveryId,
      });
      return;
  }
}
