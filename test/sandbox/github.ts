/**
 * A wire-level fake of the GitHub REST API for the sandbox: what runner-fleet calls (App auth,
 * installation tokens, JIT runner registration, runners, jobs, webhook deliveries), spoken closely
 * enough that the real Octokit stack (@octokit/core, auth-app, plugin-retry, plugin-throttling) runs
 * against it unchanged.
 *
 * - Routing and validation follow GitHub's own OpenAPI description (./github-openapi.ts); a request
 *   that breaks it gets GitHub's 422 and is recorded in `violations()`. Responses are checked against
 *   the documented schema too, so a fake that drifts from GitHub shows up as a violation.
 * - App JWTs are verified for real (RS256 with the key generated at start, iss, iat, exp).
 * - Faults, latency, throttling and the call record use the sandbox's shared `Faults` (./faults.ts),
 *   service "github", operation = OpenAPI operationId. GitHub-shaped errors: `githubErrors`.
 * - Auth time is wall time (plus `state.clockSkewMs`), not the sandbox clock: the client's JWTs and
 *   token caches live on the real clock, and GitHub's clock is not ours to advance.
 */
import {
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  randomUUID,
  verify,
} from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { type FaultError, Faults, refill } from "./faults";
import { type GitHubFlavour, loadGitHubOpenApi, type Violation } from "./github-openapi";
import {
  DEFAULT_PERMISSIONS,
  type Delivery,
  GitHubState,
  type Installation,
  isoSeconds,
  type Job,
  type Permission,
  type Permissions,
  type Runner,
  type RunnerScope,
  scopeKey,
  type TokenRecord,
} from "./github-state";
import { serveGitHubWeb } from "./github-web";
import { Clock, listen, readBody } from "./http";

export type { GitHubFlavour, Violation } from "./github-openapi";
export * from "./github-state";

const SERVICE = "github";
const DOCS = "https://docs.github.com/rest";

// ---------------------------------------------------------------------------------------------
// Errors as GitHub sends them, for `faults.fail("github", operationId, githubErrors.x(), ...)`.

export const githubErrors = {
  /** 403 + retry-after + "secondary rate limit" message: what plugin-throttling recognises. */
  secondaryRateLimit(retryAfterSeconds = 1, status: 403 | 429 = 403): FaultError {
    return { code: "secondary_rate_limit", status, headers: { "retry-after": String(retryAfterSeconds) } };
  },
  /** 5xx: plugin-retry retries these. */
  serverError(status = 500): FaultError {
    return { code: "server_error", status };
  },
  /** Primary rate limit exhausted (x-ratelimit-remaining: 0) until `resetInSeconds` from now. */
  rateLimited(resetInSeconds = 1): FaultError {
    return { code: "rate_limited", status: 403, headers: { "x-ratelimit-reset-in": String(resetInSeconds) } };
  },
} as const;

/** Fails the next organization JIT registrations, one per error, in this order. */
export function failNextOrgJitConfigs(faults: Faults, ...errors: FaultError[]): void {
  for (const error of errors) {
    faults.fail(SERVICE, "actions/generate-runner-jitconfig-for-org", error, { times: 1 });
  }
}

const SECONDARY_RATE_LIMIT_MESSAGE =
  "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. " +
  "If you reach out to GitHub Support for help, please include the request ID ";

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
    readonly headers: Record<string, string> = {},
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// Auth

type Caller =
  | { kind: "app" }
  | { kind: "installation"; token: TokenRecord; installation: Installation }
  | { kind: "pat" }
  | { kind: "anonymous" };

const APP_OPERATIONS = new Set([
  "apps/get-authenticated",
  "apps/get-webhook-config-for-app",
  "apps/update-webhook-config-for-app",
  "apps/create-installation-access-token",
  "apps/get-org-installation",
  "apps/get-repo-installation",
  "apps/list-webhook-deliveries",
  "apps/list-installations",
  "apps/get-webhook-delivery",
  "apps/redeliver-webhook-delivery",
]);

/** Operations GitHub serves without authentication (the manifest code is the credential). */
const ANONYMOUS_OPERATIONS = new Set(["apps/create-from-manifest", "meta/get"]);

function decodeJwtPart(part: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as unknown;
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** GitHub's checks of an App JWT, with GitHub's messages (auth-app recognises the clock ones). */
function verifyAppJwt(jwt: string, state: GitHubState, publicKey: KeyObject): void {
  const undecodable = new HttpError(401, "A JSON web token could not be decoded", "jwt_undecodable");
  const parts = jwt.split(".");
  if (parts.length !== 3) throw undecodable;
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  const header = decodeJwtPart(headerPart);
  const claims = decodeJwtPart(payloadPart);
  if (!header || !claims || header.alg !== "RS256") throw undecodable;
  const signed = verify(
    "RSA-SHA256",
    Buffer.from(`${headerPart}.${payloadPart}`),
    publicKey,
    Buffer.from(signaturePart, "base64url"),
  );
  if (!signed) throw undecodable;
  const now = Math.floor(state.now() / 1000);
  const { iat, exp, iss } = claims;
  if (typeof iat !== "number" || !Number.isInteger(iat) || iat > now + 60) {
    throw new HttpError(
      401,
      "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
      "jwt_iat",
    );
  }
  if (typeof exp !== "number" || exp <= now) {
    throw new HttpError(
      401,
      "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
      "jwt_exp",
    );
  }
  if (exp - now > 600) {
    throw new HttpError(401, "'Expiration time' claim ('exp') is too far in the future", "jwt_exp");
  }
  if (String(iss) !== String(state.appId) && iss !== state.clientId) {
    throw new HttpError(401, "'Issuer' claim ('iss') must be an Integer", "jwt_iss");
  }
}

// ---------------------------------------------------------------------------------------------
// Handlers

interface Ctx {
  state: GitHubState;
  caller: Caller;
  params: Record<string, string>;
  query: Record<string, unknown>;
  body: Record<string, unknown> | undefined;
  /** API base URL (with /api/v3 on GHES). */
  apiUrl: string;
  /** Web URL (github.com, or the GHES host). */
  webUrl: string;
  requestUrl: URL;
}

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

type Handler = (ctx: Ctx) => Reply;

function notFound(): HttpError {
  return new HttpError(404, "Not Found", "not_found");
}

/** The installation a caller acts as must cover `account`; GitHub answers 404 otherwise. */
function requireAccount(ctx: Ctx, account: string, permission: string, level: Permission): void {
  if (ctx.caller.kind === "pat") return;
  if (ctx.caller.kind !== "installation") throw new HttpError(401, "Bad credentials", "bad_credentials");
  if (ctx.caller.installation.account.login.toLowerCase() !== account.toLowerCase()) throw notFound();
  const granted = ctx.caller.token.permissions[permission];
  if (!granted || (level === "write" && granted !== "write")) {
    throw new HttpError(403, "Resource not accessible by integration", "forbidden");
  }
}

function requireRepo(ctx: Ctx, permission: string, level: Permission) {
  const { owner, repo } = ctx.params as { owner: string; repo: string };
  requireAccount(ctx, owner, permission, level);
  const found = ctx.state.repo(owner, repo);
  if (!found) throw notFound();
  if (ctx.caller.kind === "installation" && ctx.caller.token.repositories) {
    if (!ctx.caller.token.repositories.includes(found.name.toLowerCase())) throw notFound();
  }
  return found;
}

function simpleUser(ctx: Ctx, login: string, id: number, type: string) {
  const api = `${ctx.apiUrl}/users/${login}`;
  return {
    login,
    id,
    node_id: Buffer.from(`04:${type}${id}`).toString("base64"),
    avatar_url: `https://avatars.githubusercontent.com/u/${id}?v=4`,
    gravatar_id: "",
    url: api,
    html_url: `${ctx.webUrl}/${login}`,
    followers_url: `${api}/followers`,
    following_url: `${api}/following{/other_user}`,
    gists_url: `${api}/gists{/gist_id}`,
    starred_url: `${api}/starred{/owner}{/repo}`,
    subscriptions_url: `${api}/subscriptions`,
    organizations_url: `${api}/orgs`,
    repos_url: `${api}/repos`,
    events_url: `${api}/events{/privacy}`,
    received_events_url: `${api}/received_events`,
    type,
    site_admin: false,
  };
}

function installationBody(ctx: Ctx, installation: Installation) {
  const { account } = installation;
  return {
    id: installation.id,
    account: simpleUser(ctx, account.login, account.id, account.type),
    repository_selection: installation.repositorySelection,
    access_tokens_url: `${ctx.apiUrl}/app/installations/${installation.id}/access_tokens`,
    repositories_url: `${ctx.apiUrl}/installation/repositories`,
    html_url: `${ctx.webUrl}/organizations/${account.login}/settings/installations/${installation.id}`,
    app_id: ctx.state.appId,
    client_id: ctx.state.clientId,
    target_id: account.id,
    target_type: account.type,
    permissions: installation.permissions,
    events: ["workflow_job"],
    created_at: installation.createdAt,
    updated_at: installation.createdAt,
    single_file_name: null,
    has_multiple_single_files: false,
    single_file_paths: [],
    app_slug: ctx.state.appSlug,
    suspended_by: null,
    suspended_at: null,
  };
}

function runnerBody(state: GitHubState, runner: Runner) {
  return {
    id: runner.id,
    runner_group_id: runner.runnerGroupId,
    name: runner.name,
    os: runner.os,
    status: runner.status,
    busy: runner.busy,
    labels: runner.labels.map((name) => ({ id: state.labelId(name), name, type: "custom" as const })),
    ephemeral: runner.ephemeral,
  };
}

/** `per_page`: 30 unless asked, 1 to 100. */
function perPageOf(ctx: Ctx): number {
  return Math.min(Math.max(Number(ctx.query.per_page ?? 30), 1), 100);
}

/** GitHub's page-number pagination: slice plus the Link header Octokit's paginate() follows. */
function paginate<T>(ctx: Ctx, items: T[]): { page: T[]; headers: Record<string, string> } {
  const perPage = perPageOf(ctx);
  const page = Math.max(Number(ctx.query.page ?? 1), 1);
  const last = Math.max(Math.ceil(items.length / perPage), 1);
  const link = (p: number, rel: string) => {
    const url = new URL(ctx.requestUrl);
    url.searchParams.set("per_page", String(perPage));
    url.searchParams.set("page", String(p));
    return `<${url.toString()}>; rel="${rel}"`;
  };
  const links: string[] = [];
  if (page > 1) links.push(link(page - 1, "prev"), link(1, "first"));
  if (page < last) links.push(link(page + 1, "next"), link(last, "last"));
  return {
    page: items.slice((page - 1) * perPage, page * perPage),
    headers: links.length ? { link: links.join(", ") } : {},
  };
}

function encodeJitConfig(ctx: Ctx, runner: Runner, groupName: string): string {
  // Shaped like the real one (base64 JSON of the runner's .runner/.credentials files); opaque to
  // everyone but the runner, and unique per registration.
  const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64");
  const scopePath = "org" in runner.scope ? runner.scope.org : `${runner.scope.owner}/${runner.scope.repo}`;
  return b64({
    ".runner": b64({
      agentId: runner.id,
      agentName: runner.name,
      poolId: runner.runnerGroupId,
      poolName: groupName,
      serverUrl: `${ctx.webUrl}/_services/pipelines/${randomUUID()}`,
      gitHubUrl: `${ctx.webUrl}/${scopePath}`,
      workFolder: runner.workFolder,
      ephemeral: true,
    }),
    ".credentials": b64({
      scheme: "OAuthAccessToken",
      data: { clientId: randomUUID(), authorizationUrl: `${ctx.webUrl}/_apis/oauth2/token` },
    }),
    ".credentials_rsaparams": randomBytes(96).toString("base64"),
  });
}

function takeJitToken(state: GitHubState): void {
  const bucket = state.jitBucket;
  refill(bucket, state.clock.now(), bucket.perMinute, 60_000);
  if (bucket.tokens < 1) {
    const retryAfter = Math.max(1, Math.ceil(((1 - bucket.tokens) / bucket.perMinute) * 60));
    throw secondaryRateLimitError(403, retryAfter);
  }
  bucket.tokens -= 1;
}

function secondaryRateLimitError(status: number, retryAfterSeconds: number | string): HttpError {
  return new HttpError(
    status,
    `${SECONDARY_RATE_LIMIT_MESSAGE}${randomUUID().toUpperCase()}.`,
    "secondary_rate_limit",
    { "retry-after": String(retryAfterSeconds) },
    {
      documentation_url:
        "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
    },
  );
}

function generateJitConfig(ctx: Ctx, scope: RunnerScope, org: string): Reply {
  const body = ctx.body as { name: string; runner_group_id: number; labels: string[]; work_folder?: string };
  const group = ctx.state.runnerGroups.get(org.toLowerCase())?.find((g) => g.id === body.runner_group_id);
  if (!group) throw notFound();
  takeJitToken(ctx.state);
  const clash = ctx.state.listRunners(scope).find((r) => r.name.toLowerCase() === body.name.toLowerCase());
  if (clash) {
    throw new HttpError(
      409,
      `Already exists - A runner with the name ${body.name} already exists.`,
      "conflict",
    );
  }
  const runner: Runner = {
    id: ctx.state.id(),
    name: body.name,
    scope,
    runnerGroupId: group.id,
    labels: [...body.labels],
    os: "unknown",
    status: "offline",
    busy: false,
    ephemeral: true,
    workFolder: body.work_folder ?? "_work",
    encodedJitConfig: "",
    createdAt: ctx.state.now(),
    deleted: false,
  };
  runner.encodedJitConfig = encodeJitConfig(ctx, runner, group.name);
  ctx.state.runners.set(runner.id, runner);
  return {
    status: 201,
    body: { runner: runnerBody(ctx.state, runner), encoded_jit_config: runner.encodedJitConfig },
  };
}

function listRunnersReply(ctx: Ctx, scope: RunnerScope): Reply {
  const name = ctx.query.name as string | undefined;
  const runners = ctx.state.listRunners(scope).filter((r) => !name || r.name === name);
  const { page, headers } = paginate(ctx, runners);
  return {
    status: 200,
    body: { total_count: runners.length, runners: page.map((r) => runnerBody(ctx.state, r)) },
    headers,
  };
}

function findRunner(ctx: Ctx, scope: RunnerScope): Runner {
  const runner = ctx.state.runners.get(Number(ctx.params.runner_id));
  if (!runner || runner.deleted || scopeKey(runner.scope) !== scopeKey(scope)) throw notFound();
  return runner;
}

function deleteRunnerReply(ctx: Ctx, scope: RunnerScope): Reply {
  const runner = findRunner(ctx, scope);
  if (runner.busy) {
    throw new HttpError(422, `Bad request - Runner "${runner.name}" is still running a job"`, "runner_busy");
  }
  runner.deleted = true;
  return { status: 204 };
}

function orgScope(ctx: Ctx, level: Permission): RunnerScope {
  const org = ctx.params.org!;
  requireAccount(ctx, org, "organization_self_hosted_runners", level);
  if (!ctx.state.runnerGroups.has(org.toLowerCase())) throw notFound();
  return { org };
}

function repoScope(ctx: Ctx, level: Permission): RunnerScope {
  const repo = requireRepo(ctx, "administration", level);
  return { owner: repo.owner, repo: repo.name };
}

function jobBody(ctx: Ctx, job: Job) {
  const repoApi = `${ctx.apiUrl}/repos/${job.owner}/${job.repo}`;
  const repoWeb = `${ctx.webUrl}/${job.owner}/${job.repo}`;
  const { owner: _owner, repo: _repo, ...fields } = job;
  return {
    ...fields,
    node_id: Buffer.from(`CR_${job.id}`).toString("base64"),
    run_url: `${repoApi}/actions/runs/${job.run_id}`,
    url: `${repoApi}/actions/jobs/${job.id}`,
    html_url: `${repoWeb}/actions/runs/${job.run_id}/job/${job.id}`,
    check_run_url: `${repoApi}/check-runs/${job.id}`,
    steps: [],
  };
}

/** The webhook a route names: the App's (no `hook_id`), or an organization's or repository's. */
function hookOf(ctx: Ctx): number | undefined {
  if (ctx.params.hook_id === undefined) return undefined;
  const hook = ctx.state.webhooks.get(Number(ctx.params.hook_id));
  const { org, owner, repo } = ctx.params as { org?: string; owner?: string; repo?: string };
  const same = (a: string | undefined, b: string | undefined) => a?.toLowerCase() === b?.toLowerCase();
  if (
    !hook ||
    !(org ? same(hook.owner, org) && !hook.repo : same(hook.owner, owner) && same(hook.repo, repo))
  )
    throw notFound();
  return hook.id;
}

/** Organization webhooks need `organization_hooks`, repository webhooks `repository_hooks` (a PAT: its own). */
function requireHookAccess(ctx: Ctx, level: Permission): number | undefined {
  const { org } = ctx.params as { org?: string };
  if (org) requireAccount(ctx, org, "organization_hooks", level);
  else if (ctx.params.repo) requireRepo(ctx, "repository_hooks", level);
  return hookOf(ctx);
}

function findDelivery(ctx: Ctx, hookId: number | undefined): Delivery {
  const delivery = ctx.state.deliveries.find(
    (d) => d.id === Number(ctx.params.delivery_id) && d.hookId === hookId,
  );
  if (!delivery) throw notFound();
  return delivery;
}

function deliverySummary(delivery: Delivery) {
  const { payload: _payload, hookId: _hook, ...summary } = delivery;
  return summary;
}

/** A webhook's deliveries, newest first; the cursor is opaque to clients (GitHub's are too) and only followed via Link. */
function listDeliveries(ctx: Ctx, hookId: number | undefined): Reply {
  const perPage = perPageOf(ctx);
  const status = ctx.query.status as "success" | "failure" | undefined;
  let list = ctx.state.deliveries
    .filter((d) => d.hookId === hookId)
    .sort((a, b) => b.id - a.id)
    .filter((d) => !status || (status === "success") === (d.status === "OK"));
  const cursor = ctx.query.cursor as string | undefined;
  if (cursor) {
    const match = /^v1_(\d+)$/.exec(cursor);
    if (!match) throw new HttpError(422, "Invalid cursor", "validation");
    list = list.filter((d) => d.id < Number(match[1]));
  }
  const page = list.slice(0, perPage);
  const headers: Record<string, string> = {};
  if (list.length > perPage) {
    const next = new URL(ctx.requestUrl);
    next.searchParams.set("per_page", String(perPage));
    next.searchParams.set("cursor", `v1_${page[page.length - 1]!.id}`);
    headers.link = `<${next.toString()}>; rel="next"`;
  }
  return { status: 200, headers, body: page.map(deliverySummary) };
}

function redeliverReply(ctx: Ctx, hookId: number | undefined): Reply {
  ctx.state.redeliver(findDelivery(ctx, hookId));
  return { status: 202, body: {} };
}

// Organization and repository webhooks: one handler each, the route names the hook (see hookOf).
const listHookDeliveries: Handler = (ctx) => listDeliveries(ctx, requireHookAccess(ctx, "read"));
const redeliverHookDelivery: Handler = (ctx) => redeliverReply(ctx, requireHookAccess(ctx, "write"));

/** The job a route names, which must belong to `repo`. */
function findJob(ctx: Ctx, repo: { owner: string; name: string }): Job {
  const job = ctx.state.jobs.get(Number(ctx.params.job_id));
  if (!job || `${job.owner}/${job.repo}`.toLowerCase() !== `${repo.owner}/${repo.name}`.toLowerCase()) {
    throw notFound();
  }
  return job;
}

const HANDLERS: Record<string, Handler> = {
  "apps/get-authenticated": (ctx) => {
    const owner = [...ctx.state.installations.values()][0]?.account ?? {
      login: "octo-owner",
      id: 1,
      type: "Organization",
    };
    const created = isoSeconds(ctx.state.now());
    return {
      status: 200,
      body: {
        id: ctx.state.appId,
        slug: ctx.state.appSlug,
        node_id: Buffer.from(`A_${ctx.state.appId}`).toString("base64"),
        client_id: ctx.state.clientId,
        owner: simpleUser(ctx, owner.login, owner.id, owner.type),
        name: "runner-fleet (sandbox)",
        description: "Ephemeral self-hosted runners",
        external_url: ctx.webUrl,
        html_url: `${ctx.webUrl}/apps/${ctx.state.appSlug}`,
        created_at: created,
        updated_at: created,
        permissions: { ...DEFAULT_PERMISSIONS },
        events: ["workflow_job"],
        installations_count: ctx.state.installations.size,
      },
    };
  },

  "apps/create-installation-access-token": (ctx) => {
    const installation = ctx.state.installations.get(Number(ctx.params.installation_id));
    if (!installation) throw notFound();
    const body = (ctx.body ?? {}) as { permissions?: Permissions; repositories?: string[] };
    const requested = body.permissions ?? installation.permissions;
    for (const [name, level] of Object.entries(requested)) {
      const granted = installation.permissions[name];
      if (!granted || (level === "write" && granted !== "write")) {
        throw new HttpError(
          422,
          "The permissions requested are not granted to this installation.",
          "validation",
        );
      }
    }
    const token = `ghs_${randomBytes(18).toString("hex")}`;
    const expiresAt = Math.floor(ctx.state.now() / 1000) * 1000 + 3_600_000;
    ctx.state.tokens.set(token, {
      installationId: installation.id,
      permissions: requested,
      repositories: body.repositories?.map((r) => r.toLowerCase()),
      expiresAt,
    });
    return {
      status: 201,
      body: {
        token,
        expires_at: isoSeconds(expiresAt),
        permissions: requested,
        repository_selection: body.repositories ? "selected" : installation.repositorySelection,
      },
    };
  },

  "apps/get-org-installation": (ctx) => {
    const installation = ctx.state.installationFor(ctx.params.org!);
    if (!installation) throw notFound();
    return { status: 200, body: installationBody(ctx, installation) };
  },

  "apps/get-repo-installation": (ctx) => {
    const installation = ctx.state.installationFor(ctx.params.owner!);
    if (!installation || !ctx.state.repo(ctx.params.owner!, ctx.params.repo!)) throw notFound();
    return { status: 200, body: installationBody(ctx, installation) };
  },

  "actions/generate-runner-jitconfig-for-org": (ctx) => {
    const scope = orgScope(ctx, "write");
    return generateJitConfig(ctx, scope, ctx.params.org!);
  },

  "actions/generate-runner-jitconfig-for-repo": (ctx) => {
    const scope = repoScope(ctx, "write");
    return generateJitConfig(ctx, scope, ctx.params.owner!);
  },

  "actions/list-self-hosted-runner-groups-for-org": (ctx) => {
    const { org } = orgScope(ctx, "read") as { org: string };
    const groups = ctx.state.runnerGroups.get(org.toLowerCase()) ?? [];
    const { page, headers } = paginate(ctx, groups);
    const base = `${ctx.apiUrl}/orgs/${org}/actions/runner-groups`;
    return {
      status: 200,
      headers,
      body: {
        total_count: groups.length,
        runner_groups: page.map((g) => ({
          id: g.id,
          name: g.name,
          visibility: "all",
          default: g.default,
          runners_url: `${base}/${g.id}/runners`,
          inherited: false,
          allows_public_repositories: false,
          restricted_to_workflows: false,
          selected_workflows: [],
          workflow_restrictions_read_only: false,
        })),
      },
    };
  },

  "actions/list-self-hosted-runners-for-org": (ctx) => listRunnersReply(ctx, orgScope(ctx, "read")),
  "actions/list-self-hosted-runners-for-repo": (ctx) => listRunnersReply(ctx, repoScope(ctx, "read")),
  "actions/get-self-hosted-runner-for-org": (ctx) => ({
    status: 200,
    body: runnerBody(ctx.state, findRunner(ctx, orgScope(ctx, "read"))),
  }),
  "actions/get-self-hosted-runner-for-repo": (ctx) => ({
    status: 200,
    body: runnerBody(ctx.state, findRunner(ctx, repoScope(ctx, "read"))),
  }),
  "actions/delete-self-hosted-runner-from-org": (ctx) => deleteRunnerReply(ctx, orgScope(ctx, "write")),
  "actions/delete-self-hosted-runner-from-repo": (ctx) => deleteRunnerReply(ctx, repoScope(ctx, "write")),

  "actions/get-job-for-workflow-run": (ctx) => {
    const job = findJob(ctx, requireRepo(ctx, "actions", "read"));
    return { status: 200, body: jobBody(ctx, job) };
  },

  "actions/re-run-job-for-workflow-run": (ctx) => {
    const repo = requireRepo(ctx, "actions", "write");
    const job = findJob(ctx, repo);
    if (job.status !== "completed") {
      throw new HttpError(403, `This job cannot be rerun: it is ${job.status}.`, "forbidden");
    }
    Object.assign(job, {
      run_attempt: job.run_attempt + 1,
      status: "queued",
      conclusion: null,
      completed_at: null,
      runner_id: null,
      runner_name: null,
    });
    ctx.state.reruns.push({ owner: repo.owner, repo: repo.name, jobId: job.id, at: ctx.state.now() });
    return { status: 201, body: {} };
  },

  "apps/list-webhook-deliveries": (ctx) => listDeliveries(ctx, undefined),
  "orgs/list-webhook-deliveries": listHookDeliveries,
  "repos/list-webhook-deliveries": listHookDeliveries,

  "apps/get-webhook-delivery": (ctx) => {
    const delivery = findDelivery(ctx, undefined);
    return {
      status: 200,
      body: {
        ...deliverySummary(delivery),
        url: "",
        request: {
          headers: {
            "X-GitHub-Delivery": delivery.guid,
            "X-GitHub-Event": delivery.event,
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "Content-Type": "application/json",
          },
          payload: delivery.payload,
        },
        response: { headers: {}, payload: null },
      },
    };
  },

  "apps/redeliver-webhook-delivery": (ctx) => redeliverReply(ctx, undefined),
  "orgs/redeliver-webhook-delivery": redeliverHookDelivery,
  "repos/redeliver-webhook-delivery": redeliverHookDelivery,
};

// The App setup tooling (scripts/github-app.ts): the manifest conversion and the App's webhook config.

function hookConfigBody(state: GitHubState) {
  const { secret, ...config } = state.hookConfig;
  // GitHub never returns the secret, only whether one is set.
  return secret ? { ...config, secret: "********" } : config;
}

HANDLERS["apps/create-from-manifest"] = (ctx) => {
  const issued = ctx.state.manifestCodes.get(ctx.params.code!);
  if (!issued || issued.used || ctx.state.now() - issued.issuedAt > 3_600_000) throw notFound();
  issued.used = true;
  const manifest = issued.manifest as {
    name?: string;
    url?: string;
    description?: string;
    hook_attributes?: { url?: string; active?: boolean };
    default_permissions?: Permissions;
    default_events?: string[];
  };
  const webhookSecret = randomBytes(20).toString("hex");
  ctx.state.hookActive = manifest.hook_attributes?.active ?? true;
  Object.assign(ctx.state.hookConfig, {
    url: manifest.hook_attributes?.url ?? "",
    content_type: "json",
    insecure_ssl: "0",
    secret: webhookSecret,
  });
  const app = HANDLERS["apps/get-authenticated"]!(ctx).body as Record<string, unknown>;
  return {
    status: 201,
    body: {
      ...app,
      name: manifest.name ?? app.name,
      description: manifest.description ?? null,
      external_url: manifest.url ?? app.external_url,
      permissions: manifest.default_permissions ?? {},
      events: manifest.default_events ?? [],
      client_secret: randomBytes(20).toString("hex"),
      webhook_secret: webhookSecret,
      pem: ctx.state.appPrivateKey,
    },
  };
};

// What the setup's reachability check reads: GHES names its version.
HANDLERS["meta/get"] = (ctx) => ({
  status: 200,
  body: {
    verifiable_password_authentication: false,
    ...(ctx.state.flavour === "ghes" ? { installed_version: ctx.state.enterpriseVersion } : {}),
  },
});

HANDLERS["apps/get-webhook-config-for-app"] = (ctx) => ({ status: 200, body: hookConfigBody(ctx.state) });

HANDLERS["apps/update-webhook-config-for-app"] = (ctx) => {
  const body = (ctx.body ?? {}) as Partial<Record<keyof typeof ctx.state.hookConfig, string | number>>;
  for (const key of ["url", "content_type", "insecure_ssl", "secret"] as const) {
    if (body[key] !== undefined) ctx.state.hookConfig[key] = String(body[key]);
  }
  return { status: 200, body: hookConfigBody(ctx.state) };
};

// `npm run doctor`: where the App is installed, and which repositories an installation covers.

HANDLERS["apps/list-installations"] = (ctx) => {
  const { page, headers } = paginate(ctx, [...ctx.state.installations.values()]);
  // GitHub's description of this list joins the user and enterprise shapes of `account` (allOf where
  // the single installation has anyOf), so an account here carries the fields of both.
  const body = page.map((i) => {
    const installation = installationBody(ctx, i);
    const { login } = i.account;
    const account = { ...installation.account, name: login, slug: login.toLowerCase() };
    return { ...installation, account: { ...account, created_at: i.createdAt, updated_at: i.createdAt } };
  });
  return { status: 200, headers, body };
};

const REPO_URL_FIELDS = (
  "archive assignees blobs branches collaborators comments commits compare contents contributors " +
  "deployments downloads events forks git_commits git_refs git_tags hooks issue_comment issue_events " +
  "issues keys labels languages merges milestones notifications pulls releases stargazers statuses " +
  "subscribers subscription tags teams trees"
).split(" ");

/** A repository with every field GitHub's `repository` schema requires. */
function repositoryBody(
  ctx: Ctx,
  repo: { id: number; owner: string; name: string },
  owner: Installation["account"],
) {
  const fullName = `${repo.owner}/${repo.name}`;
  const api = `${ctx.apiUrl}/repos/${fullName}`;
  const web = `${ctx.webUrl}/${fullName}`;
  const created = isoSeconds(ctx.state.now());
  const counts = ["forks", "forks_count", "open_issues", "open_issues_count", "size", "stargazers_count"];
  return {
    ...Object.fromEntries(REPO_URL_FIELDS.map((field) => [`${field}_url`, `${api}/${field}`])),
    ...Object.fromEntries([...counts, "watchers", "watchers_count"].map((field) => [field, 0])),
    id: repo.id,
    node_id: Buffer.from(`R_${repo.id}`).toString("base64"),
    name: repo.name,
    full_name: fullName,
    owner: simpleUser(ctx, owner.login, owner.id, owner.type),
    private: true,
    html_url: web,
    description: null,
    fork: false,
    url: api,
    clone_url: `${web}.git`,
    git_url: `git://${new URL(web).host}/${fullName}.git`,
    ssh_url: `git@${new URL(web).host}:${fullName}.git`,
    svn_url: web,
    homepage: null,
    language: null,
    mirror_url: null,
    license: null,
    default_branch: "main",
    has_downloads: true,
    has_issues: true,
    has_projects: false,
    has_wiki: false,
    has_pages: false,
    archived: false,
    disabled: false,
    pushed_at: created,
    created_at: created,
    updated_at: created,
  };
}

HANDLERS["apps/list-repos-accessible-to-installation"] = (ctx) => {
  if (ctx.caller.kind !== "installation")
    throw new HttpError(403, "This endpoint requires an installation token", "forbidden");
  const { installation, token } = ctx.caller;
  const login = installation.account.login.toLowerCase();
  const repos = [...ctx.state.repos.values()].filter(
    (r) =>
      r.owner.toLowerCase() === login &&
      (installation.repositorySelection === "all" ||
        installation.repositories?.includes(r.name.toLowerCase())) &&
      (!token.repositories || token.repositories.includes(r.name.toLowerCase())),
  );
  const { page, headers } = paginate(ctx, repos);
  return {
    status: 200,
    headers,
    body: {
      total_count: repos.length,
      repository_selection: installation.repositorySelection,
      repositories: page.map((r) => repositoryBody(ctx, r, installation.account)),
    },
  };
};

export const GITHUB_OPERATIONS = Object.keys(HANDLERS);

// ---------------------------------------------------------------------------------------------
// Server

export interface GitHubFakeOptions {
  flavour?: GitHubFlavour;
  /** The sandbox's shared faults and call record (a private one if omitted). */
  faults?: Faults;
  clock?: Clock;
  appId?: number;
  /** Organisation the App is installed on, with one repository (defaults: acme, acme/widgets). */
  org?: string;
  repo?: string;
  installationId?: number;
  /** Per identity per hour; default 5000 on dotcom, off on GHES (as GHES ships). */
  primaryRateLimit?: number;
  /** JIT registration token bucket per App; default burst 180, 180 per minute. */
  jitRateLimit?: { burst: number; perMinute: number };
  /** Check every response against its documented schema (violations with where "response"). Default true. */
  validateResponses?: boolean;
}

export interface GitHubFake {
  /** API base URL: `http://127.0.0.1:PORT` (dotcom) or `http://127.0.0.1:PORT/api/v3` (ghes). */
  url: string;
  flavour: GitHubFlavour;
  appId: number;
  /** PEM (PKCS#1, as GitHub hands out App keys), generated at start. */
  privateKey: string;
  /** A fine-grained personal access token accepted on every non-App endpoint. */
  pat: string;
  installationId: number;
  org: string;
  repo: { owner: string; name: string };
  state: GitHubState;
  faults: Faults;
  /** Schema violations seen so far (requests and, unless disabled, responses). */
  violations(): Violation[];
  /** Forgets the violations seen so far (after a test that provoked one on purpose). */
  clearViolations(): void;
  close(): Promise<void>;
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string>): void {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, {
    ...(body === undefined ? {} : { "content-type": "application/json; charset=utf-8" }),
    "content-length": String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

function errorBody(error: HttpError, status: number) {
  return { message: error.message, documentation_url: DOCS, status: String(status), ...error.extra };
}

function faultToHttpError(fault: FaultError, state: GitHubState, identity: string | undefined): HttpError {
  switch (fault.code) {
    case "secondary_rate_limit":
      return secondaryRateLimitError(fault.status ?? 403, fault.headers?.["retry-after"] ?? "60");
    case "rate_limited": {
      const resetIn = Number(fault.headers?.["x-ratelimit-reset-in"] ?? 1);
      const reset = Math.ceil((state.now() + resetIn * 1000) / 1000);
      return new HttpError(
        fault.status ?? 403,
        fault.message ?? `API rate limit exceeded for ${identity ?? "this client"}.`,
        "rate_limited",
        { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset), "x-ratelimit-limit": "5000" },
      );
    }
    case "server_error":
      return new HttpError(
        fault.status ?? 500,
        fault.message ?? "Server Error",
        "server_error",
        fault.headers,
      );
    default:
      return new HttpError(fault.status ?? 400, fault.message ?? fault.code, fault.code, fault.headers);
  }
}

/** Starts the fake on 127.0.0.1 on a random port. */
export async function startGitHubFake(options: GitHubFakeOptions = {}): Promise<GitHubFake> {
  const flavour = options.flavour ?? "dotcom";
  const clock = options.clock ?? new Clock();
  const faults = options.faults ?? new Faults(clock);
  const validateResponses = options.validateResponses ?? true;
  const openapi = await loadGitHubOpenApi(flavour, GITHUB_OPERATIONS);

  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
  });
  const publicKeyObject = createPublicKey(publicKey);

  const state = new GitHubState(flavour, {
    appId: options.appId,
    primaryRateLimit: options.primaryRateLimit,
    jit: options.jitRateLimit,
    clock,
  });
  state.appPrivateKey = privateKey;
  const orgLogin = options.org ?? "acme";
  const installation = state.addOrg(orgLogin, { installationId: options.installationId });
  const repo = state.addRepo(orgLogin, options.repo ?? "widgets");

  const prefix = flavour === "ghes" ? "/api/v3" : "";
  let origin = "";

  const authenticate = (req: IncomingMessage, operationId: string): Caller => {
    const header = req.headers.authorization;
    const match = header ? /^(token|bearer)\s+(\S+)$/i.exec(header) : null;
    if (ANONYMOUS_OPERATIONS.has(operationId)) return { kind: "anonymous" };
    if (APP_OPERATIONS.has(operationId)) {
      if (!match) throw new HttpError(401, "A JSON web token could not be decoded", "jwt_undecodable");
      verifyAppJwt(match[2]!, state, publicKeyObject);
      return { kind: "app" };
    }
    if (!header) throw new HttpError(401, "Requires authentication", "requires_authentication");
    const secret = match?.[2];
    if (secret && secret === state.pat) return { kind: "pat" };
    const token = secret ? state.tokens.get(secret) : undefined;
    const tokenInstallation = token && state.installations.get(token.installationId);
    if (!token || !tokenInstallation || token.expiresAt <= state.now()) {
      throw new HttpError(401, "Bad credentials", "bad_credentials");
    }
    return { kind: "installation", token, installation: tokenInstallation };
  };

  const identityOf = (caller: Caller): string =>
    caller.kind === "installation"
      ? `installation ID ${caller.installation.id}`
      : caller.kind === "app"
        ? `app ID ${state.appId}`
        : "user";

  /** Primary rate limit: counts the call, throws when the hour's budget is spent. */
  const rateLimit = (caller: Caller): Record<string, string> => {
    if (state.primaryRateLimit === undefined) return {};
    const identity = identityOf(caller);
    const now = state.now();
    let window = state.rateWindows.get(identity);
    if (!window || window.resetAt <= now) {
      window = { limit: state.primaryRateLimit, used: 0, resetAt: now + 3_600_000 };
      state.rateWindows.set(identity, window);
    }
    const exhausted = state.exhaustedUntil > now;
    const resetAt = exhausted ? state.exhaustedUntil : window.resetAt;
    const headers = {
      "x-ratelimit-limit": String(window.limit),
      "x-ratelimit-reset": String(Math.ceil(resetAt / 1000)),
      "x-ratelimit-resource": "core",
    };
    if (exhausted || window.used >= window.limit) {
      throw new HttpError(403, `API rate limit exceeded for ${identity}.`, "rate_limited", {
        ...headers,
        "x-ratelimit-remaining": "0",
        "x-ratelimit-used": String(window.used),
      });
    }
    window.used++;
    return {
      ...headers,
      "x-ratelimit-remaining": String(window.limit - window.used),
      "x-ratelimit-used": String(window.used),
    };
  };

  const serve = async (req: IncomingMessage, res: ServerResponse) => {
    const requestUrl = new URL(req.url ?? "/", origin);
    const method = (req.method ?? "GET").toUpperCase();
    const baseHeaders: Record<string, string> = {
      date: new Date(state.now()).toUTCString(),
      "x-github-request-id": randomBytes(8).toString("hex").toUpperCase(),
      "x-github-api-version-selected": "2022-11-28",
      ...(flavour === "ghes" ? { "x-github-enterprise-version": state.enterpriseVersion } : {}),
    };
    const raw = await readBody(req);
    // The manifest flow's web pages (the browser posts the form there), beside the API.
    if (serveGitHubWeb(req, res, requestUrl, raw, { state, faults })) return;
    const path = requestUrl.pathname.startsWith(`${prefix}/`)
      ? requestUrl.pathname.slice(prefix.length)
      : undefined;
    const route = path === undefined ? undefined : openapi.route(method, path);
    if (!route) {
      json(res, 404, { message: "Not Found", documentation_url: DOCS, status: "404" }, baseHeaders);
      faults.record({
        service: SERVICE,
        operation: `${method} ${requestUrl.pathname}`,
        params: {},
        status: 404,
        errorCode: "not_found",
      });
      return;
    }
    const operation = route.operationId;
    const query: Record<string, unknown> = Object.fromEntries(requestUrl.searchParams);
    const pathParams: Record<string, unknown> = { ...route.pathParams };
    let body: unknown;
    let params: Record<string, unknown> = { ...pathParams, ...query };
    let headers = { ...baseHeaders };

    const violation = (where: Violation["where"], errors: string[]) => {
      state.violations.push({ operation, method, path: requestUrl.pathname, where, errors });
    };
    const reply = (
      status: number,
      replyBody: unknown,
      extraHeaders: Record<string, string>,
      errorCode?: string,
    ) => {
      if (validateResponses) {
        const errors = openapi.validateResponse(operation, status, replyBody);
        if (errors.length) violation("response", errors);
      }
      json(res, status, replyBody, { ...headers, ...extraHeaders });
      faults.record({ service: SERVICE, operation, params, status, ...(errorCode ? { errorCode } : {}) });
    };

    try {
      if (raw.length > 0) {
        try {
          body = JSON.parse(raw.toString("utf8"));
        } catch {
          throw new HttpError(400, "Problems parsing JSON", "bad_json");
        }
        if (typeof body === "object" && body !== null && !Array.isArray(body))
          params = { ...params, ...body };
      }
      const caller = authenticate(req, operation);
      headers = { ...headers, ...rateLimit(caller) };

      const fault = await faults.intercept(
        { service: SERVICE, operation, params },
        {
          mutating: method !== "GET" && method !== "HEAD",
          throttleError: githubErrors.secondaryRateLimit(1),
        },
      );
      if (fault) throw faultToHttpError(fault, state, identityOf(caller));

      const invalid: string[] = [];
      for (const [where, errors] of [
        ["path", openapi.validateParams(operation, "path", pathParams)],
        ["query", openapi.validateParams(operation, "query", query)],
        ["body", openapi.validateBody(operation, body)],
      ] as const) {
        if (errors.length === 0) continue;
        violation(where, errors);
        invalid.push(...errors.map((e) => `${where} ${e}`));
      }
      if (invalid.length) {
        throw new HttpError(422, `Invalid request.\n\n${invalid.join("\n")}`, "validation_failed");
      }

      const handler = HANDLERS[operation]!;
      const result = handler({
        state,
        caller,
        params: pathParams as Record<string, string>,
        query,
        body: body as Record<string, unknown> | undefined,
        apiUrl: `${origin}${prefix}`,
        webUrl: flavour === "ghes" ? origin : "https://github.com",
        requestUrl,
      });
      reply(result.status, result.body, result.headers ?? {});
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      reply(error.status, errorBody(error, error.status), error.headers, error.code);
    }
  };

  const server = await listen(serve);
  origin = server.url;
  return {
    url: `${server.url}${prefix}`,
    flavour,
    appId: state.appId,
    privateKey,
    pat: state.pat,
    installationId: installation.id,
    org: orgLogin,
    repo: { owner: repo.owner, name: repo.name },
    state,
    faults,
    violations: () => [...state.violations],
    clearViolations: () => {
      state.violations.length = 0;
    },
    close: () => server.close(),
  };
}
