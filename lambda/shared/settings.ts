/**
 * Every setting of every Lambda, read from the environment in this one module (docs/architecture.md lists
 * them). Each value is parsed where it is read, not at start-up, so a Lambda only needs the variables
 * it uses, and a missing or malformed one fails with its name. Secrets are never here: only the names of the SSM
 * SecureString parameters that hold them. AWS endpoints come from the SDK's own AWS_ENDPOINT_URL*
 * variables (awsEndpointUrl reads them for the calls made without an SDK client).
 */
import type { LabelRoute } from "./label-config";

/** A webhook the program created in token mode: an organization's (no `repo`) or a repository's. */
export interface GitHubWebhook {
  owner: string;
  repo?: string;
  hookId: number;
}

/** Where a token-mode webhook lives: "owner" or "owner/repo". */
export const webhookOwner = (webhook: GitHubWebhook): string =>
  webhook.repo ? `${webhook.owner}/${webhook.repo}` : webhook.owner;

type Env = Record<string, string | undefined>;

/** The longest queue timeout the stack config accepts (src/config/schema.ts limits). */
export const MAX_QUEUE_TIMEOUT_MINUTES = 7 * 24 * 60;
/** GitHub keeps deliveries for redelivery 3 days on github.com and 7 on GHES (its docs). */
export const REDELIVERY_WINDOW_DAYS = 7;
/**
 * The shortest job TTL (days). A job item is what turns a replayed or redelivered `queued` delivery
 * into a duplicate; the webhook ignores a `queued` older than the queue timeout, so the item must
 * outlive the longest queue timeout and the redelivery window, with a day to spare.
 */
export const MIN_JOB_TTL_DAYS = Math.max(REDELIVERY_WINDOW_DAYS, MAX_QUEUE_TIMEOUT_MINUTES / (24 * 60)) + 1;

export class SettingsError extends Error {
  constructor(variable: string, problem: string) {
    super(`setting ${variable}: ${problem}`);
    this.name = "SettingsError";
  }
}

function reader(env: Env) {
  const raw = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value === "" ? undefined : value;
  };
  const str = (name: string, fallback?: string): string => {
    const value = raw(name) ?? fallback;
    if (value === undefined) throw new SettingsError(name, "is required but not set");
    return value;
  };
  /** A whole number >= 0; one below `floor` is raised to it. */
  const int = (name: string, fallback?: number, floor = 0): number => {
    const value = raw(name);
    if (value === undefined) {
      if (fallback === undefined) throw new SettingsError(name, "is required but not set");
      return Math.max(fallback, floor);
    }
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0)
      throw new SettingsError(name, `expected a whole number >= 0, got "${value}"`);
    return Math.max(n, floor);
  };
  /** A whole number that may be unset (undefined). */
  const optionalInt = (name: string): number | undefined => (raw(name) === undefined ? undefined : int(name));
  const json = <T>(name: string, fallback?: T): T => {
    const value = raw(name);
    if (value === undefined) {
      if (fallback === undefined) throw new SettingsError(name, "is required but not set");
      return fallback;
    }
    try {
      return JSON.parse(value) as T;
    } catch {
      throw new SettingsError(name, "expected JSON");
    }
  };
  const list = (name: string, fallback?: string): string[] =>
    str(name, fallback)
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
  const oneOf = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const value = raw(name) ?? fallback;
    if (!allowed.includes(value as T)) {
      throw new SettingsError(name, `expected one of ${allowed.join(", ")}, got "${value}"`);
    }
    return value as T;
  };
  return { str, int, optionalInt, json, list, oneOf, raw };
}

/** Builds the settings view over an environment; properties are parsed on first read. */
export function loadSettings(env: Env = process.env) {
  const r = reader(env);
  return {
    /** Pulumi stack name; prefixes runner names and is the value of the stack tag. */
    get stackName() {
      return r.str("STACK_NAME");
    },
    get jobsTable() {
      return r.str("JOBS_TABLE");
    },
    get handoffTable() {
      return r.str("HANDOFF_TABLE");
    },
    /** The stopped pools' members (POOL_TABLE in tables.ts). */
    get poolTable() {
      return r.str("POOL_TABLE");
    },
    get launchQueueUrl() {
      return r.str("LAUNCH_QUEUE_URL");
    },
    /** SSM path under which each label config is one JSON parameter. */
    get labelConfigPath() {
      return r.str("LABEL_CONFIG_PATH");
    },
    /** Label sets of the configs, for routing in the webhook without an SSM call. */
    get labelRoutes() {
      return r.json<LabelRoute[]>("LABEL_ROUTES");
    },
    /** The label every routed job must carry. */
    get requiredLabel() {
      return r.str("REQUIRED_LABEL", "self-hosted");
    },
    /** `https://api.github.com` or `https://HOST/api/v3` for GitHub Enterprise Server. */
    get githubApiUrl() {
      return r.str("GITHUB_API_URL", "https://api.github.com").replace(/\/+$/, "");
    },
    get githubAuthMode() {
      return r.oneOf("GITHUB_AUTH_MODE", ["app", "token"] as const, "app");
    },
    get githubAppId() {
      return r.str("GITHUB_APP_ID");
    },
    /**
     * `pending` while an App-mode stack has no App yet (its first deploy): the webhook answers 503 to
     * jobs, the reconciler and the janitor leave GitHub alone. The program sets it, nobody else.
     */
    get githubAppState() {
      return r.oneOf("GITHUB_APP_STATE", ["ready", "pending"] as const, "ready");
    },
    /** SSM SecureString holding the App's private key (PEM), app mode. */
    get githubPrivateKeyParam() {
      return r.str("GITHUB_PRIVATE_KEY_PARAM");
    },
    /** SSM SecureString holding the fine-grained personal access token, token mode. */
    get githubTokenParam() {
      return r.str("GITHUB_TOKEN_PARAM");
    },
    /** SSM SecureString holding the webhook secret. */
    get webhookSecretParam() {
      return r.str("WEBHOOK_SECRET_PARAM");
    },
    /**
     * GitHub's JIT registrations (generate-jitconfig) per minute per App (about 180/min; more are
     * answered with secondary rate limits): the rate of the budget every launcher shares
     * (adapters/github-budget.ts, which holds as many at once), and each process's write pacing.
     */
    get githubWritesPerMinute() {
      return r.int("GITHUB_WRITES_PER_MINUTE", 180);
    },
    /** Webhook: the organization or user (login) whose jobs this stack serves (github.owner). */
    get servedOwner() {
      return r.str("GITHUB_OWNER");
    },
    /**
     * Webhook: the GitHub web host this stack serves (github.url's host): `github.com`, a GHES host or
     * `TENANT.ghe.com`, as the host of a delivery's repository URL.
     */
    get servedHost() {
      return r.str("GITHUB_HOST", "github.com").toLowerCase();
    },
    /**
     * Webhook, repo scope: the repositories (names without owner) this stack serves. Empty in repo
     * scope serves none (fail closed); org scope serves every repository of the owner.
     */
    get servedRepositories() {
      return r.list("GITHUB_REPOSITORIES", "");
    },
    /** Webhook, App mode: the one installation served, when known (else unset: see record-delivery.ts). */
    get servedInstallationId() {
      return r.optionalInt("GITHUB_INSTALLATION_ID");
    },
    /** Where JIT runners register: the organization or each job's repository. */
    get runnerScope() {
      return r.oneOf("RUNNER_SCOPE", ["org", "repo"] as const, "org");
    },
    /** Unique id (AROA…) of the runners' IAM role: the first half of every hand-off key. */
    get runnerRoleId() {
      return r.str("RUNNER_ROLE_ID");
    },
    /** Subnets a fleet may use (all of them, in every request). */
    get subnetIds() {
      return r.list("SUBNET_IDS");
    },
    get maxRunnersTotal() {
      return r.int("MAX_RUNNERS_TOTAL", 100);
    },
    get maxRuntimeMinutes() {
      return r.int("MAX_RUNTIME_MINUTES", 360);
    },
    get idleTimeoutMinutes() {
      return r.int("IDLE_TIMEOUT_MINUTES", 10);
    },
    get queueTimeoutMinutes() {
      return r.int("QUEUE_TIMEOUT_MINUTES", 60);
    },
    /**
     * How long a job item is kept after its last change; never less than MIN_JOB_TTL_DAYS (a lower
     * value is raised to it), as the item is what makes a replayed delivery a duplicate.
     */
    get jobTtlDays() {
      return r.int("JOB_TTL_DAYS", 30, MIN_JOB_TTL_DAYS);
    },
    /** How long an unread JIT config stays in the hand-off table. */
    get handoffTtlSeconds() {
      return r.int("HANDOFF_TTL_SECONDS", 900);
    },
    /** Reconciler: a queued job with a launch message but no launch for this long is enqueued again. */
    get requeueAfterSeconds() {
      return r.int("REQUEUE_AFTER_SECONDS", 600);
    },
    /** Reconciler: a job `launching` this long lost its launcher (keep above the launcher's timeout). */
    get launchingTimeoutSeconds() {
      return r.int("LAUNCHING_TIMEOUT_SECONDS", 300);
    },
    /** Reconciler: an instance with no job and no hand-off this long after launch is terminated. */
    get orphanGraceSeconds() {
      return r.int("ORPHAN_GRACE_SECONDS", 300);
    },
    /** Reconciler: an instance still up this long after its job completed is terminated. */
    get completedGraceSeconds() {
      return r.int("COMPLETED_GRACE_SECONDS", 120);
    },
    /** Spot interruptions of one config within the window that stop spot for it (0: never). */
    get spotBreakerInterruptions() {
      return r.int("SPOT_BREAKER_INTERRUPTIONS", 3);
    },
    get spotBreakerWindowMinutes() {
      return r.int("SPOT_BREAKER_WINDOW_MINUTES", 30);
    },
    /** How long an open spot breaker keeps a spotPreferred config on on-demand. */
    get spotBreakerCooldownMinutes() {
      return r.int("SPOT_BREAKER_COOLDOWN_MINUTES", 60);
    },
    /**
     * The region of the calls made without an SDK client: AWS_REGION (Lambda sets it), else
     * AWS_DEFAULT_REGION (an operator's shell, for the scripts that reuse the adapters).
     */
    get awsRegion() {
      return r.str("AWS_REGION", r.raw("AWS_DEFAULT_REGION"));
    },
    /**
     * The SDK's endpoint override for a service, if any: AWS_ENDPOINT_URL_<SERVICE> (e.g.
     * AWS_ENDPOINT_URL_DYNAMODB), else AWS_ENDPOINT_URL. Read for the calls made without an SDK client.
     */
    awsEndpointUrl(service: string) {
      return r.raw(`AWS_ENDPOINT_URL_${service.toUpperCase()}`) ?? r.raw("AWS_ENDPOINT_URL");
    },
    /** Reconciler: how far back its first run looks for failed webhook deliveries. */
    get redeliveryLookbackHours() {
      return r.int("REDELIVERY_LOOKBACK_HOURS", 6);
    },
    /**
     * Reconciler, token mode: the webhooks the program created (the organization's, or one per
     * repository), whose failed deliveries it redelivers. App mode uses the App's own webhook.
     */
    get githubWebhooks() {
      return r.json<GitHubWebhook[]>("GITHUB_WEBHOOKS", []);
    },
  };
}

export type Settings = ReturnType<typeof loadSettings>;

let current: Settings | undefined;

/** The settings of this process (memoized view over process.env). */
export function settings(): Settings {
  current ??= loadSettings();
  return current;
}
