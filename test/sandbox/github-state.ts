/**
 * What the GitHub fake knows (App, installations, repositories, runner groups, runners, jobs,
 * webhook deliveries, tokens, rate-limit windows), with the helpers tests use to seed and steer it.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { GHES_SPEC_VERSION, type GitHubFlavour, type Violation } from "./github-openapi";
import { Clock } from "./http";

export type Permission = "read" | "write";
export type Permissions = Record<string, Permission>;

export interface Installation {
  id: number;
  account: { login: string; id: number; type: "Organization" | "User" };
  permissions: Permissions;
  repositorySelection: "all" | "selected";
  /** With `selected`: the repositories (names, lower case) the installation covers. */
  repositories?: string[];
  createdAt: string;
}

export interface RunnerGroup {
  id: number;
  name: string;
  default: boolean;
}

export type RunnerScope = { org: string } | { owner: string; repo: string };

export interface Runner {
  id: number;
  name: string;
  scope: RunnerScope;
  runnerGroupId: number;
  labels: string[];
  os: string;
  status: "online" | "offline";
  busy: boolean;
  ephemeral: boolean;
  workFolder: string;
  encodedJitConfig: string;
  createdAt: number;
  deleted: boolean;
}

export interface Job {
  id: number;
  owner: string;
  repo: string;
  run_id: number;
  run_attempt: number;
  name: string;
  workflow_name: string | null;
  head_branch: string | null;
  head_sha: string;
  status: "queued" | "in_progress" | "completed" | "waiting" | "requested" | "pending";
  conclusion:
    | "success"
    | "failure"
    | "neutral"
    | "cancelled"
    | "skipped"
    | "timed_out"
    | "action_required"
    | null;
  labels: string[];
  runner_id: number | null;
  runner_name: string | null;
  runner_group_id: number | null;
  runner_group_name: string | null;
  created_at: string;
  started_at: string;
  completed_at: string | null;
}

export interface Delivery {
  id: number;
  guid: string;
  delivered_at: string;
  redelivery: boolean;
  duration: number;
  /** "OK", or the failure GitHub shows, e.g. "Invalid HTTP Response: 502", "timed out". */
  status: string;
  status_code: number;
  event: string;
  action: string | null;
  installation_id: number | null;
  repository_id: number | null;
  throttled_at: string | null;
  payload: Record<string, unknown>;
  /** The organization or repository webhook it was sent by (`addWebhook`); none: the App's webhook. */
  hookId?: number;
}

/** An organization's webhook (no `repo`) or a repository's, as created in token mode. */
export interface Webhook {
  id: number;
  owner: string;
  repo?: string;
}

export interface TokenRecord {
  installationId: number;
  permissions: Permissions;
  repositories?: string[];
  expiresAt: number;
}

export interface ManifestCode {
  manifest: Record<string, unknown>;
  issuedAt: number;
  used: boolean;
}

export interface HookConfig {
  url: string;
  content_type: string;
  insecure_ssl: string;
  secret?: string;
}

export interface RateWindow {
  limit: number;
  used: number;
  resetAt: number;
}

// What runner-fleet's App asks for: JIT registration (org runners / repo administration) and
// re-running jobs (actions: write).
export const DEFAULT_PERMISSIONS: Permissions = {
  actions: "write",
  administration: "write",
  metadata: "read",
  organization_self_hosted_runners: "write",
};

export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

export function scopeKey(scope: RunnerScope): string {
  return "org" in scope
    ? `org:${scope.org.toLowerCase()}`
    : `repo:${scope.owner}/${scope.repo}`.toLowerCase();
}

/** Everything the fake knows, with helpers for tests to seed and steer it. */
export class GitHubState {
  readonly appId: number;
  readonly appSlug = "runner-fleet-sandbox";
  readonly clientId: string;
  /** The sandbox clock: throttling and the call record (auth uses `now()`, wall time). */
  readonly clock: Clock;
  /** Shift GitHub's clock (JWT checks, Date header) to test the client's clock-skew handling. */
  clockSkewMs = 0;
  /** Per-identity primary rate limit per hour; `undefined` disables it (GHES default). */
  primaryRateLimit: number | undefined;
  /** JIT registrations per App: token bucket (about 180 per minute), on the sandbox clock like the AWS buckets. */
  jitBucket: { burst: number; perMinute: number; tokens: number; updatedAt: number };
  /** Outcome recorded for redelivery attempts. */
  redeliveryOutcome: { status: string; status_code: number } = { status: "OK", status_code: 200 };

  readonly installations = new Map<number, Installation>();
  readonly repos = new Map<string, { id: number; owner: string; name: string }>();
  readonly runnerGroups = new Map<string, RunnerGroup[]>();
  readonly runners = new Map<number, Runner>();
  readonly jobs = new Map<number, Job>();
  readonly deliveries: Delivery[] = [];
  /** Organization and repository webhooks (token mode), by id; they stay across `reset()`. */
  readonly webhooks = new Map<number, Webhook>();
  readonly redeliveryAttempts: { deliveryId: number; newDeliveryId: number; at: number }[] = [];
  readonly reruns: { owner: string; repo: string; jobId: number; at: number }[] = [];
  readonly violations: Violation[] = [];
  readonly pat =
    `github_pat_${randomBytes(11).toString("hex")}_${randomBytes(30).toString("hex").slice(0, 59)}`;

  /** The App's private key (PEM), set at start: what the manifest conversion hands out as `pem`. */
  appPrivateKey = "";
  /** Manifest flow: the one-time codes issued by `createAppFromManifest` and the manifest each carries. */
  readonly manifestCodes = new Map<string, ManifestCode>();
  /** The App's webhook config (`/app/hook/config`); `secret` is write-only on the API, as on GitHub. */
  readonly hookConfig: HookConfig = { url: "", content_type: "json", insecure_ssl: "0" };
  /** Whether the App's webhook is active: set by the manifest (`hook_attributes.active`), not by the API. */
  hookActive = true;
  /** GHES only: the version its `X-GitHub-Enterprise-Version` header and `GET /meta` report. */
  enterpriseVersion = `${GHES_SPEC_VERSION}.0`;

  /** @internal */ readonly tokens = new Map<string, TokenRecord>();
  /** @internal */ readonly rateWindows = new Map<string, RateWindow>();
  private readonly labelIds = new Map<string, number>();
  private readonly redeliveryListeners = new Set<(delivery: Delivery) => void>();
  private nextId = 1000;

  constructor(
    readonly flavour: GitHubFlavour,
    options: {
      appId?: number;
      primaryRateLimit?: number;
      jit?: { burst: number; perMinute: number };
      clock?: Clock;
    },
  ) {
    this.clock = options.clock ?? new Clock();
    this.appId = options.appId ?? 424242;
    this.clientId = `Iv23li${randomBytes(7).toString("hex")}`;
    this.primaryRateLimit = options.primaryRateLimit ?? (flavour === "dotcom" ? 5000 : undefined);
    const jit = options.jit ?? { burst: 180, perMinute: 180 };
    this.jitBucket = { ...jit, tokens: jit.burst, updatedAt: this.clock.now() };
  }

  /** GitHub's idea of now (wall clock plus the simulated skew). */
  now(): number {
    return Date.now() + this.clockSkewMs;
  }

  id(): number {
    return ++this.nextId;
  }

  /** Label ids are stable per name, as on GitHub. */
  labelId(name: string): number {
    const id = this.labelIds.get(name.toLowerCase()) ?? this.id();
    this.labelIds.set(name.toLowerCase(), id);
    return id;
  }

  /** Installs the App on an organisation (with a default runner group); returns the installation. */
  addOrg(login: string, options: { installationId?: number; permissions?: Permissions } = {}): Installation {
    const installation: Installation = {
      id: options.installationId ?? this.id(),
      account: { login, id: this.id(), type: "Organization" },
      permissions: options.permissions ?? { ...DEFAULT_PERMISSIONS },
      repositorySelection: "all",
      createdAt: isoSeconds(this.now()),
    };
    this.installations.set(installation.id, installation);
    if (!this.runnerGroups.has(login.toLowerCase())) {
      this.runnerGroups.set(login.toLowerCase(), [{ id: 1, name: "Default", default: true }]);
    }
    return installation;
  }

  addRepo(owner: string, name: string): { id: number; owner: string; name: string } {
    const repo = { id: this.id(), owner, name };
    this.repos.set(`${owner}/${name}`.toLowerCase(), repo);
    return repo;
  }

  addRunnerGroup(org: string, name: string): RunnerGroup {
    const groups = this.runnerGroups.get(org.toLowerCase());
    if (!groups) throw new Error(`unknown org ${org}`);
    const group = { id: this.id(), name, default: false };
    groups.push(group);
    return group;
  }

  installationFor(account: string): Installation | undefined {
    for (const installation of this.installations.values()) {
      if (installation.account.login.toLowerCase() === account.toLowerCase()) return installation;
    }
    return undefined;
  }

  repo(owner: string, name: string) {
    return this.repos.get(`${owner}/${name}`.toLowerCase());
  }

  /** Registered (not deleted) runners, optionally of one scope. */
  listRunners(scope?: RunnerScope): Runner[] {
    const key = scope && scopeKey(scope);
    return [...this.runners.values()].filter((r) => !r.deleted && (!key || scopeKey(r.scope) === key));
  }

  /** The runner a JIT config was issued for (what the runner would register as when it starts). */
  runnerForJitConfig(encodedJitConfig: string): Runner | undefined {
    return [...this.runners.values()].find((r) => r.encodedJitConfig === encodedJitConfig && !r.deleted);
  }

  /** Marks a runner online/offline/busy, as the Actions service would see it. */
  setRunner(id: number, change: { status?: "online" | "offline"; busy?: boolean; os?: string }): Runner {
    const runner = this.runners.get(id);
    if (!runner || runner.deleted) throw new Error(`no runner ${id}`);
    Object.assign(runner, change);
    return runner;
  }

  /** Removes a runner as GitHub does when an ephemeral runner finished its job. */
  removeRunner(id: number): void {
    const runner = this.runners.get(id);
    if (runner) runner.deleted = true;
  }

  /**
   * What `run.sh --jitconfig <config>` does on an instance: the runner comes online. Throws, as the
   * real runner fails to start, when the config is unknown or its runner was deleted.
   */
  connectRunner(encodedJitConfig: string, options: { os?: string } = {}): Runner {
    const runner = this.runnerForJitConfig(encodedJitConfig);
    if (!runner) throw new Error("the JIT config belongs to no registered runner");
    return this.setRunner(runner.id, { status: "online", os: options.os ?? "Linux" });
  }

  /** GitHub hands a queued job to an online runner: the runner is busy, the job in progress on it. */
  assignJob(runnerId: number, jobId: number): Job {
    const runner = this.runners.get(runnerId);
    const job = this.jobs.get(jobId);
    if (!runner || runner.deleted || runner.status !== "online")
      throw new Error(`runner ${runnerId} is not online`);
    if (!job) throw new Error(`no job ${jobId}`);
    const groupScope = "org" in runner.scope ? runner.scope.org : runner.scope.owner;
    const group = this.runnerGroups.get(groupScope.toLowerCase())?.find((g) => g.id === runner.runnerGroupId);
    runner.busy = true;
    return Object.assign(job, {
      status: "in_progress",
      conclusion: null,
      started_at: isoSeconds(this.now()),
      runner_id: runner.id,
      runner_name: runner.name,
      runner_group_id: runner.runnerGroupId,
      runner_group_name: group?.name ?? null,
    } satisfies Partial<Job>);
  }

  /** The job ends; its ephemeral runner is removed, as GitHub does. */
  completeJob(jobId: number, conclusion: NonNullable<Job["conclusion"]> = "success"): Job {
    const job = this.jobs.get(jobId);
    if (!job) throw new Error(`no job ${jobId}`);
    Object.assign(job, {
      status: "completed",
      conclusion,
      completed_at: isoSeconds(this.now()),
    } satisfies Partial<Job>);
    const runner = job.runner_id === null ? undefined : this.runners.get(job.runner_id);
    if (runner) {
      runner.busy = false;
      if (runner.ephemeral) runner.deleted = true;
    }
    return job;
  }

  seedJob(job: Partial<Job> & { owner: string; repo: string }): Job {
    const now = isoSeconds(this.now());
    const full: Job = {
      id: this.id(),
      run_id: this.id(),
      run_attempt: 1,
      name: "build",
      workflow_name: "CI",
      head_branch: "main",
      head_sha: createHash("sha1").update(randomUUID()).digest("hex"),
      status: "queued",
      conclusion: null,
      labels: ["self-hosted", "linux", "x64"],
      runner_id: null,
      runner_name: null,
      runner_group_id: null,
      runner_group_name: null,
      created_at: now,
      started_at: now,
      completed_at: null,
      ...job,
    };
    this.jobs.set(full.id, full);
    return full;
  }

  /** An organization's webhook (`{ owner }`) or a repository's (`{ owner, repo }`); returns its id. */
  addWebhook(target: { owner: string; repo?: string }): number {
    const id = this.id();
    this.webhooks.set(id, { id, ...target });
    return id;
  }

  seedDelivery(delivery: Partial<Delivery> & { event: string }): Delivery {
    const full: Delivery = {
      id: this.id(),
      guid: randomUUID(),
      delivered_at: isoSeconds(this.now()),
      redelivery: false,
      duration: 0.05,
      status: "OK",
      status_code: 200,
      action: null,
      installation_id: null,
      repository_id: null,
      throttled_at: null,
      payload: {},
      ...delivery,
    };
    this.deliveries.push(full);
    return full;
  }

  /**
   * What a user does on GitHub's "Create GitHub App" page after the manifest form was posted to it:
   * GitHub keeps the manifest and redirects to its `redirect_url` with this one-time code (valid for an
   * hour), which `POST /app-manifests/{code}/conversions` exchanges for the App's credentials.
   */
  createAppFromManifest(manifest: Record<string, unknown>): string {
    const code = randomBytes(20).toString("hex");
    this.manifestCodes.set(code, { manifest, issuedAt: this.now(), used: false });
    return code;
  }

  /** Called with the new delivery for each redelivery attempt (e.g. to feed the webhook handler). */
  onRedelivery(listener: (delivery: Delivery) => void): () => void {
    this.redeliveryListeners.add(listener);
    return () => this.redeliveryListeners.delete(listener);
  }

  /** Invalidates every installation token (as after revocation or expiry). */
  expireTokens(): void {
    for (const token of this.tokens.values()) token.expiresAt = 0;
  }

  /** Exhausts the primary rate limit of every identity until `resetInSeconds` from now. */
  exhaustRateLimit(resetInSeconds: number): void {
    const limit = this.primaryRateLimit ?? 5000;
    this.primaryRateLimit = limit;
    this.exhaustedUntil = this.now() + resetInSeconds * 1000;
  }

  /**
   * Back to no runners, jobs, deliveries, re-runs, violations and fresh rate limits, between tests.
   * The App, installations, repositories, runner groups and issued tokens stay (clients cache tokens).
   */
  reset(): void {
    this.runners.clear();
    this.jobs.clear();
    this.deliveries.length = 0;
    this.redeliveryAttempts.length = 0;
    this.reruns.length = 0;
    this.violations.length = 0;
    this.resetRateLimits();
    this.jitBucket.tokens = this.jitBucket.burst;
    this.jitBucket.updatedAt = this.clock.now();
  }

  /** Ends an exhaustion and starts every identity's hour afresh. */
  resetRateLimits(): void {
    this.exhaustedUntil = 0;
    this.rateWindows.clear();
  }
  /** @internal */ exhaustedUntil = 0;

  /** @internal */
  redeliver(original: Delivery): Delivery {
    const attempt = this.seedDelivery({
      ...original,
      id: this.id(),
      delivered_at: isoSeconds(this.now()),
      redelivery: true,
      ...this.redeliveryOutcome,
    });
    this.redeliveryAttempts.push({ deliveryId: original.id, newDeliveryId: attempt.id, at: this.now() });
    for (const listener of this.redeliveryListeners) listener(attempt);
    return attempt;
  }
}
