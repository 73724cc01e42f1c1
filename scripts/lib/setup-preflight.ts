/**
 * What `setup:github-app create` checks before it serves its page, so nothing can fail after GitHub
 * has created the App: the Pulumi CLI, a stack, its deployed webhook URL, secrets the CLI can decrypt
 * and write, and a GitHub it can reach and supports. Each failure says what is wrong and the fix.
 * The checks are exported one by one for `npm run doctor`.
 */
import { randomBytes } from "node:crypto";
import { githubApiUrlOf } from "../../src/config/load";
import { type Scope, trimUrl } from "./manifest";
import { PROJECT, type Pulumi, PulumiError, PulumiNotFoundError, projectKey } from "./pulumi";

export class PreflightError extends Error {
  constructor(
    readonly problem: string,
    readonly fix: string,
  ) {
    super(`${problem}\n  fix: ${fix}`);
    this.name = "PreflightError";
  }
}

const detail = (error: unknown) =>
  error instanceof PulumiError
    ? error.result.stderr.trim() || `exit ${error.result.code}`
    : error instanceof Error
      ? error.message
      : String(error);

export async function checkPulumiCli(pulumi: Pulumi): Promise<string> {
  try {
    return await pulumi.version();
  } catch (error) {
    if (error instanceof PulumiNotFoundError) {
      throw new PreflightError(
        "the Pulumi CLI is not on PATH",
        "install it (https://www.pulumi.com/docs/install/), open a new shell, then run this again",
      );
    }
    throw new PreflightError(`the Pulumi CLI does not run: ${detail(error)}`, "run `pulumi version`");
  }
}

/** The stack the tool acts on (the selected one unless `--stack`). */
export async function checkStack(pulumi: Pulumi): Promise<string> {
  try {
    return await pulumi.stackName();
  } catch (error) {
    throw new PreflightError(
      `no stack to act on: ${detail(error)}`,
      pulumi.stack
        ? `check the name with \`pulumi stack ls\` (after \`pulumi login\`)`
        : "select the stack with `pulumi stack select NAME` (or pass --stack NAME), after `pulumi login`",
    );
  }
}

/** The deployed stack's webhook URL: the App is created after the first `pulumi up`, pointing at it. */
export async function checkDeployed(pulumi: Pulumi, stack: string): Promise<string> {
  let url: string | undefined;
  try {
    url = await pulumi.stackOutput("webhookUrl");
  } catch (error) {
    throw new PreflightError(
      `cannot read stack ${stack}'s outputs: ${detail(error)}`,
      "run `pulumi stack output`",
    );
  }
  if (!url) {
    throw new PreflightError(
      `stack ${stack} is not deployed yet (it has no webhookUrl output)`,
      "run `pulumi up` first: the App is created after it, with its webhook on the stack's live URL",
    );
  }
  return url;
}

/** A throwaway key outside the project's namespace: stored encrypted, then removed at once. */
export const SECRETS_PROBE_KEY = "setupcheck:secretsWritable";

const SECRETS_FIX =
  "a passphrase stack needs PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) in this shell; " +
  "a cloud secrets provider (awskms://, azurekeyvault://, …) needs that cloud's credentials";

/**
 * Secrets work both ways: the stack's `webhookSecret` output is decrypted (returned, `undefined` when
 * the stack exports none), and a throwaway secret is written to the stack's config and removed.
 */
export async function checkSecrets(pulumi: Pulumi, stack: string): Promise<string | undefined> {
  let webhookSecret: string | undefined;
  try {
    webhookSecret = await pulumi.stackOutput("webhookSecret", { showSecrets: true });
  } catch (error) {
    throw new PreflightError(`cannot decrypt stack ${stack}'s secrets: ${detail(error)}`, SECRETS_FIX);
  }
  try {
    await pulumi.configSet(SECRETS_PROBE_KEY, randomBytes(8).toString("hex"), { secret: true });
  } catch (error) {
    throw new PreflightError(
      `cannot store a secret in stack ${stack}'s config: ${detail(error)}`,
      `${SECRETS_FIX}; and the stack's config file (Pulumi.${stack}.yaml) must be writable`,
    );
  }
  try {
    await pulumi.configRemove(SECRETS_PROBE_KEY);
  } catch (error) {
    throw new PreflightError(
      `stored a test secret but cannot remove it: ${detail(error)}`,
      `pulumi config rm ${SECRETS_PROBE_KEY} --stack ${stack}`,
    );
  }
  return webhookSecret;
}

/** A second App would replace the stack's credentials: only on request. */
export async function checkNoApp(pulumi: Pulumi, stack: string, replace: boolean): Promise<void> {
  const appId = await pulumi.configGet(projectKey("github.appId"), { path: true });
  if (appId && !replace) {
    throw new PreflightError(
      `stack ${stack} already has a GitHub App (${PROJECT}:github.appId is ${appId})`,
      "to point that App at the stack: `npm run setup:github-app -- set-webhook`; to create a new one " +
        "anyway, add --replace (the old App stays on GitHub until you delete it in its settings)",
    );
  }
}

/** GHES from 3.10 on: just-in-time runner registration. */
export const MIN_GHES_VERSION = "3.10";

export interface GitHubServer {
  /** `GET /meta`, the URL checked. */
  metaUrl: string;
  /** The GHES version from its `X-GitHub-Enterprise-Version` header; absent on github.com and ghe.com. */
  ghesVersion?: string;
}

function versionAtLeast(version: string, minimum: string): boolean {
  const [major = 0, minor = 0] = version.split(".").map(Number);
  const [minMajor = 0, minMinor = 0] = minimum.split(".").map(Number);
  return major > minMajor || (major === minMajor && minor >= minMinor);
}

const TLS_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

function unreachable(metaUrl: string, error: unknown): PreflightError {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (error as { name?: string }).name ?? "";
  const reason = cause?.message ?? detail(error);
  const problem = `cannot reach GitHub at ${metaUrl}: ${reason}`;
  if (TLS_CODES.has(code)) {
    return new PreflightError(
      problem,
      "GitHub's TLS certificate is not trusted here: for a private CA, run with NODE_EXTRA_CA_CERTS=/path/to/ca.pem",
    );
  }
  if (code === "TimeoutError") {
    return new PreflightError(problem, "no answer: check the VPN, firewall or proxy between here and GitHub");
  }
  return new PreflightError(
    problem,
    "check the GitHub URL (--github-url or runner-fleet:github.url: the web URL, e.g. https://ghes.example.com), DNS and VPN",
  );
}

/** GitHub answers `GET /meta` without credentials; GHES names its version (header, and `installed_version`). */
export async function checkGitHubServer(
  apiUrl: string,
  fetchImpl: typeof fetch = fetch,
): Promise<GitHubServer> {
  const metaUrl = `${trimUrl(apiUrl)}/meta`;
  let response: Response;
  try {
    response = await fetchImpl(metaUrl, {
      headers: { accept: "application/vnd.github+json", "user-agent": "runner-fleet-setup" },
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    throw unreachable(metaUrl, error);
  }
  const body = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined;
  if (!response.ok || typeof body?.verifiable_password_authentication !== "boolean") {
    throw new PreflightError(
      `${metaUrl} answered HTTP ${response.status}, not as GitHub's API does`,
      "check the GitHub URL (--github-url or runner-fleet:github.url): the web URL, e.g. https://github.com or https://ghes.example.com",
    );
  }
  const installed = typeof body.installed_version === "string" ? body.installed_version : undefined;
  const ghesVersion = response.headers.get("x-github-enterprise-version") ?? installed;
  if (ghesVersion && !versionAtLeast(ghesVersion, MIN_GHES_VERSION)) {
    throw new PreflightError(
      `GitHub Enterprise Server ${ghesVersion} is older than ${MIN_GHES_VERSION}`,
      `upgrade GHES to ${MIN_GHES_VERSION} or later: the fleet registers just-in-time runners, which GHES has from ${MIN_GHES_VERSION}`,
    );
  }
  return { metaUrl, ...(ghesVersion ? { ghesVersion } : {}) };
}

/** What the App is created for: flags first, then the stack's config, then defaults. */
export interface SetupFlags {
  owner?: string;
  scope?: string;
  githubUrl?: string;
  /** The owner is a user account (repo scope only). */
  user?: boolean;
  apiUrl?: string;
  name?: string;
  /** Create a new App even though the stack has one. */
  replace?: boolean;
}

export interface SetupTarget {
  owner: string;
  scope: Scope;
  githubUrl: string;
  apiUrl: string;
  user: boolean;
  name?: string;
}

async function resolveTarget(pulumi: Pulumi, flags: SetupFlags): Promise<SetupTarget> {
  const config = (name: string) => pulumi.configGet(projectKey(`github.${name}`), { path: true });
  const owner = flags.owner ?? (await config("owner"));
  if (!owner) {
    throw new PreflightError(
      "no owner for the App",
      `pass --owner ORG, or set it in the stack: pulumi config set --path ${PROJECT}:github.owner ORG`,
    );
  }
  const scope = flags.scope ?? (await config("scope")) ?? "org";
  if (scope !== "org" && scope !== "repo") {
    throw new PreflightError(`scope ${scope} is neither org nor repo`, "pass --scope org or --scope repo");
  }
  if (scope === "org" && flags.user) {
    throw new PreflightError(
      "org scope needs an organization, and --user says the owner is a user account",
      "add --scope repo for a user account",
    );
  }
  const githubUrl = trimUrl(flags.githubUrl ?? (await config("url")) ?? "https://github.com");
  let apiUrl: string;
  try {
    apiUrl = flags.apiUrl ?? githubApiUrlOf(githubUrl);
  } catch {
    throw new PreflightError(
      `the GitHub URL ${githubUrl} is not a URL`,
      "pass --github-url https://HOST (or fix runner-fleet:github.url)",
    );
  }
  return {
    owner,
    scope,
    githubUrl,
    apiUrl,
    user: flags.user ?? false,
    ...(flags.name ? { name: flags.name } : {}),
  };
}

export interface Ready {
  stack: string;
  target: SetupTarget;
  webhookUrl: string;
  /** The secret the deployed webhook verifies with, when the stack exports it. */
  stackWebhookSecret?: string;
  github: GitHubServer;
}

/** Every check, in the order that makes the first failure the one to fix first. */
export async function preflight(
  pulumi: Pulumi,
  flags: SetupFlags,
  deps: { log: (line: string) => void; fetch?: typeof fetch },
): Promise<Ready> {
  const ok = (line: string) => deps.log(`✔ ${line}`);
  ok(`Pulumi CLI ${await checkPulumiCli(pulumi)}`);
  const stack = await checkStack(pulumi);
  const target = await resolveTarget(pulumi, flags);
  await checkNoApp(pulumi, stack, flags.replace ?? false);
  ok(`stack ${stack}, App for ${target.owner} (${target.scope} scope)`);
  const webhookUrl = await checkDeployed(pulumi, stack);
  ok(`deployed: webhook ${webhookUrl}`);
  const stackWebhookSecret = await checkSecrets(pulumi, stack);
  ok("secrets: the CLI decrypts and stores them");
  const github = await checkGitHubServer(target.apiUrl, deps.fetch);
  ok(github.ghesVersion ? `GitHub Enterprise Server ${github.ghesVersion}` : `GitHub at ${target.githubUrl}`);
  return { stack, target, webhookUrl, ...(stackWebhookSecret ? { stackWebhookSecret } : {}), github };
}
