/**
 * The GitHub REST API client (github.com, or GHES at `https://HOST/api/v3`: `settings().githubApiUrl`).
 *
 * Auth: a GitHub App (`@octokit/auth-app`: a JWT for `/app/...` routes, an installation token for
 * the rest; auth-app caches each installation's token in memory for 59 of its 60 minutes and shares
 * one in-flight token request between concurrent callers, so this module keeps one client per
 * installation for the life of the process) or a fine-grained PAT (token mode).
 *
 * Resilience: every request has a deadline (a call GitHub never answers once held a launcher to its
 * Lambda timeout); `@octokit/plugin-retry` retries 5xx, network errors and requests past the deadline
 * (after 1 s, then 4 s);
 * `@octokit/plugin-throttling` waits out primary and secondary rate limits (Retry-After) within
 * the budget below, and paces this process's write requests with a token bucket of
 * `settings().githubWritesPerMinute` (GitHub's per-App rate), a few in flight at once. The launcher
 * admits only the registrations the budget shared by all launchers grants (github-budget.ts), and
 * hears of every rate-limit answer (onGitHubHold) to hold them all back. A request still failing
 * after that throws a RequestError with `status`; the caller decides (the launcher releases the job).
 *
 * The calls themselves, one module per resource, take the client this module gives:
 * github-runners.ts, github-jobs.ts, github-hooks.ts.
 */
import { createAppAuth } from "@octokit/auth-app";
import { Octokit } from "@octokit/core";
import { retry } from "@octokit/plugin-retry";
import { throttling } from "@octokit/plugin-throttling";
import Bottleneck from "bottleneck/light.js";
import { settings } from "../shared/settings";
import { logger } from "../shared/telemetry";
import { readSecret } from "./ssm-secrets";

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
  /** Longest wait (ms) for one try of a request, its answer's body included; then it is abandoned. */
  requestTimeoutMs: number;
}

/**
 * Sized for a launcher with a 60 s timeout (src/components/launcher-tuning.ts; the reconciler has
 * 55 s, the janitor 900 s): waits beyond these are better spent back in the queue. A request that
 * never answers costs at most its tries × requestTimeoutMs plus the retry waits (3 × 10 s + 5 s).
 */
export const DEFAULT_GITHUB_TUNING: Readonly<GitHubTuning> = {
  retryAfterBaseValue: 1000,
  serverErrorRetries: 2,
  rateLimitRetries: 2,
  maxRetryAfterSeconds: 20,
  writeConcurrency: 8,
  requestTimeoutMs: 10_000,
};

let tuning: GitHubTuning = { ...DEFAULT_GITHUB_TUNING };
const clients = new Map<string, Promise<GitHub>>();
let writeLimiter: { perMinute: number; group: Bottleneck.Group } | undefined;
/** Until when GitHub asked this process to hold back (epoch ms): set by any rate-limit answer. */
let holdBackUntil = 0;
const LIMITER_ID = "runner-fleet";

/** Overrides timing knobs (tests) and forgets every client. */
export function tuneGitHub(overrides: Partial<GitHubTuning> = {}): void {
  tuning = { ...DEFAULT_GITHUB_TUNING, ...overrides };
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

/**
 * fetch with a deadline for each try (a signal made once per client would end every later request):
 * past it the request fails as a network error does, so plugin-retry tries again or gives up.
 */
function fetchWithin(timeoutMs: number): typeof fetch {
  return (input, init) => {
    const deadline = AbortSignal.timeout(timeoutMs);
    return fetch(input, {
      ...init,
      signal: init?.signal ? AbortSignal.any([init.signal, deadline]) : deadline,
    });
  };
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
    request: { fetch: fetchWithin(tuning.requestTimeoutMs) },
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
