/**
 * `npm run doctor`: after a deploy, is everything between GitHub and the fleet in place? The stack
 * (Pulumi CLI, outputs, config), the GitHub App (installation, webhook config, deliveries, the
 * secret on both sides), then AWS (label configs, AMIs, reconciler, queues, alarms, stopped pools).
 * Each check is ✔, ! or ✖ with its fix (doctor-check.ts); one failing check never hides the others
 * that can still run.
 */
import { parseArgs } from "node:util";
import { ConfigError } from "../../src/config/errors";
import { githubApiUrlOf } from "../../src/config/load";
import type { StackConfig } from "../../src/config/schema";
import { explainAwsError, useRegion } from "./aws-session";
import { readStackConfig, type StackOutputs } from "./deployed-stack";
import {
  type AwsContext,
  alarmsCheck,
  amiChecks,
  heartbeatCheck,
  labelConfigsCheck,
  queueChecks,
} from "./doctor-aws";
import { type Check, fail, guarded, pass, renderChecks, skip } from "./doctor-check";
import {
  type AppContext,
  activeCheck,
  DELIVERY_RETENTION_MS,
  hookConfigCheck,
  installationCheck,
  readApp,
  readDeliveries,
  recentDeliveriesCheck,
} from "./doctor-github";
import { readPoolChecks } from "./doctor-pools";
import { type PingAnswer, pingWebhook, secretCheck } from "./doctor-webhook";
import { PROJECT, type Pulumi, projectKey, pulumiCli } from "./pulumi";
import {
  checkDeployed,
  checkGitHubServer,
  checkPulumiCli,
  checkStack,
  type GitHubServer,
  PreflightError,
} from "./setup-preflight";
import { appOctokit } from "./setup-webhook";

type Env = Record<string, string | undefined>;

export interface DoctorOptions {
  /** The AWS region (default: AWS_REGION, the stack's aws:region, the profile's). */
  region?: string;
  /** GitHub's API base (default: derived from runner-fleet:github.url). */
  apiUrl?: string;
  now?: Date;
}

export interface DoctorDeps {
  pulumi: Pulumi;
  fetch?: typeof fetch;
  env?: Env;
}

interface DeployedStack {
  stack: string;
  outputs: StackOutputs;
  config: StackConfig;
  webhookUrl: string;
  prefix: string;
}

const SECRETS_FIX =
  "a passphrase stack needs PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) in this shell; " +
  "a cloud secrets provider needs that cloud's credentials";

/** GitHub's refusals in plain words (Octokit's RequestError carries the status). */
function explainGitHubError(error: unknown): string | undefined {
  const status = (error as { status?: number }).status;
  if (status === 401)
    return "GitHub refuses the App's key: store the App's current key (runner-fleet:githubAppPrivateKey)";
  if (status === 403) return "GitHub refused: a rate limit, or a permission the App lacks (see the error)";
  if (status === 404)
    return "GitHub does not know it: is runner-fleet:github.appId this App's id, and the URL its host?";
  return undefined;
}

/** The CLI, the stack and its outputs, and its config; undefined (with the failure) when one is missing. */
async function readDeployed(pulumi: Pulumi, checks: Check[]): Promise<DeployedStack | undefined> {
  let stack: string;
  let webhookUrl: string;
  try {
    const version = await checkPulumiCli(pulumi);
    stack = await checkStack(pulumi);
    webhookUrl = await checkDeployed(pulumi, stack);
    checks.push(pass("Pulumi stack", `${stack}, deployed (Pulumi CLI ${version})`));
  } catch (error) {
    if (!(error instanceof PreflightError)) throw error;
    checks.push(fail("Pulumi stack", error.problem, error.fix));
    return undefined;
  }
  const outputs = (await pulumi.stackOutputs()) as StackOutputs;
  try {
    const config = await readStackConfig(pulumi, stack);
    const { authMode, scope, owner } = config.github;
    const configs = Object.keys(config.labelConfigs).length;
    checks.push(
      pass("stack config", `valid: ${authMode} mode, ${scope} scope on ${owner}, ${configs} label configs`),
    );
    return { stack, outputs, config, webhookUrl, prefix: `${PROJECT}-${stack}` };
  } catch (error) {
    const message = error instanceof ConfigError ? error.message : `not read: ${(error as Error).message}`;
    checks.push(
      fail(
        "stack config",
        message,
        "fix each key named above with `pulumi config set` (as `pulumi up` asks)",
      ),
    );
    return undefined;
  }
}

/** A secret of the stack, decrypted by the CLI; undefined when unset. */
async function readSecrets(pulumi: Pulumi, appMode: boolean) {
  const webhookSecret =
    (await pulumi.stackOutput("webhookSecret", { showSecrets: true })) ??
    (await pulumi.configGet(projectKey("webhookSecret")));
  const privateKey = appMode ? await pulumi.configGet(projectKey("githubAppPrivateKey")) : undefined;
  return { webhookSecret, privateKey };
}

async function githubChecks(
  deployed: DeployedStack,
  options: DoctorOptions,
  deps: DoctorDeps,
  now: Date,
): Promise<Check[]> {
  const { config, webhookUrl, prefix, stack } = deployed;
  const appMode = config.github.authMode === "app";
  let secrets: Awaited<ReturnType<typeof readSecrets>>;
  try {
    secrets = await readSecrets(deps.pulumi, appMode);
  } catch (error) {
    return [
      fail(
        "stack secrets",
        `the CLI cannot decrypt stack ${stack}'s secrets: ${(error as Error).message}`,
        SECRETS_FIX,
      ),
    ];
  }
  const fetchImpl = deps.fetch ?? fetch;
  const ping = () =>
    secrets.webhookSecret
      ? pingWebhook(webhookUrl, secrets.webhookSecret, fetchImpl).catch((error: Error) => error)
      : Promise.resolve(new Error("the stack has no webhook secret (output or config)"));
  const secretContext = { webhookUrl, prefix, now };
  if (!appMode)
    return [
      skip("GitHub App", "token mode: the program creates and manages the webhooks"),
      secretCheck(await ping(), undefined, secretContext),
    ];
  const { appId } = config.github;
  if (!appId || !secrets.privateKey)
    return [
      fail(
        "GitHub App",
        `stack ${stack} has no App yet (runner-fleet:github.appId and its key unset)`,
        "npm run setup:github-app -- create",
      ),
    ];
  const apiUrl = options.apiUrl ?? githubApiUrlOf(config.github.url);
  let server: GitHubServer;
  try {
    server = await checkGitHubServer(apiUrl, fetchImpl);
  } catch (error) {
    if (!(error instanceof PreflightError)) throw error;
    return [fail("GitHub reachable", error.problem, error.fix)];
  }
  const app: AppContext = {
    octokit: appOctokit(apiUrl, appId, secrets.privateKey),
    config,
    apiUrl,
    appId,
    privateKey: secrets.privateKey,
    webhookUrl,
    prefix,
    now,
  };
  return appChecks(app, server, ping);
}

async function appChecks(
  app: AppContext,
  server: GitHubServer,
  ping: () => Promise<PingAnswer | Error>,
): Promise<Check[]> {
  const checks: Check[] = [];
  const githubUrl = app.config.github.url;
  const info = await readApp(app.octokit, githubUrl).catch((error: Error) => error);
  if (info instanceof Error)
    return [
      fail("GitHub App", `GET /app failed: ${info.message}`, explainGitHubError(info) ?? "see the error"),
    ];
  const ghes = server.ghesVersion ? ` (GitHub Enterprise Server ${server.ghesVersion})` : "";
  checks.push(pass("GitHub App", `${info.slug} (id ${app.appId}) on ${githubUrl}${ghes}`));
  let installedAt: string | undefined;
  checks.push(
    ...(await guarded(
      "App installed",
      async () => {
        const { check, installation } = await installationCheck(app, info);
        installedAt = installation?.created_at;
        return check;
      },
      explainGitHubError,
    )),
    ...(await guarded("App webhook config", () => hookConfigCheck(app), explainGitHubError)),
  );
  const deliveries = await readDeliveries(
    app.octokit,
    new Date(app.now.getTime() - DELIVERY_RETENTION_MS),
  ).catch((error: Error) => error);
  const answer = await ping();
  if (deliveries instanceof Error) {
    const fix = explainGitHubError(deliveries) ?? "see the error";
    return [
      ...checks,
      secretCheck(answer, undefined, app),
      fail("webhook deliveries", `GET /app/hook/deliveries failed: ${deliveries.message}`, fix),
    ];
  }
  checks.push(
    activeCheck(deliveries, [info.createdAt, installedAt ?? ""], info, app.now),
    secretCheck(answer, deliveries, app),
    recentDeliveriesCheck(deliveries, app),
  );
  return checks;
}

async function awsChecks(
  deployed: DeployedStack,
  options: DoctorOptions,
  deps: DoctorDeps,
  now: Date,
): Promise<Check[]> {
  const env = deps.env ?? process.env;
  let region: string;
  try {
    const stackRegion = await deps.pulumi.configGet("aws:region").catch(() => undefined);
    region = useRegion({ flag: options.region, stackRegion }, env);
  } catch (error) {
    return [fail("AWS region", (error as Error).message, "pass --region REGION (the stack's region)")];
  }
  const context: AwsContext = { ...deployed, now, region };
  const explain = (error: unknown) => explainAwsError(error, env);
  const results = await Promise.all([
    guarded("label configs published", () => labelConfigsCheck(context), explain),
    guarded("AMIs", () => amiChecks(context), explain),
    guarded("reconciler", () => heartbeatCheck(context), explain),
    guarded("launch queue", () => queueChecks(context), explain),
    guarded("alarms", () => alarmsCheck(context), explain),
    guarded("pools", () => readPoolChecks(context), explain),
  ]);
  return [pass("AWS region", region), ...results.flat()];
}

/** Every check, in the order that makes the first failure the one to fix first. */
export async function runDoctor(options: DoctorOptions, deps: DoctorDeps): Promise<Check[]> {
  const now = options.now ?? new Date();
  const checks: Check[] = [];
  const deployed = await readDeployed(deps.pulumi, checks);
  if (!deployed) return checks;
  checks.push(...(await githubChecks(deployed, options, deps, now)));
  checks.push(...(await awsChecks(deployed, options, deps, now)));
  return checks;
}

export const DOCTOR_USAGE = `usage: npm run doctor -- [--json] [--stack NAME] [--region REGION] [--api-url URL]
Checks the deployed stack, its GitHub App and its AWS side; exits 1 when a check fails.`;

export interface DoctorCliDeps extends Omit<DoctorDeps, "pulumi"> {
  pulumi?: (stack: string | undefined) => Pulumi;
  out: (line: string) => void;
  err: (line: string) => void;
  now?: Date;
}

/** Runs the tool; returns its exit code (1 when a check failed). */
export async function doctorCli(argv: string[], deps: DoctorCliDeps): Promise<number> {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        json: { type: "boolean", default: false },
        stack: { type: "string" },
        region: { type: "string" },
        "api-url": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
    if (values.help) {
      deps.out(DOCTOR_USAGE);
      return 0;
    }
    const pulumi = (deps.pulumi ?? ((stack) => pulumiCli({ stack })))(values.stack);
    const checks = await runDoctor(
      { region: values.region, apiUrl: values["api-url"], now: deps.now },
      { ...deps, pulumi },
    );
    if (values.json) deps.out(JSON.stringify({ checks }));
    else for (const line of renderChecks(checks)) deps.out(line);
    return checks.some((c) => !c.ok) ? 1 : 0;
  } catch (error) {
    deps.err(`doctor: ${(error as Error).message ?? String(error)}`);
    return 1;
  }
}
