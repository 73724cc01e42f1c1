/**
 * The value of every Lambda setting (lambda/shared/settings.ts) this stack defines; each function
 * gets the ones its code reads (settings-env.ts). No secret here: secrets are SSM parameter names.
 */
import type * as pulumi from "@pulumi/pulumi";
import type { GithubSecrets } from "../components/github-secrets";
import { GITHUB_JIT_PER_MINUTE_PER_APP } from "../components/launcher-tuning";
import type { Ledger } from "../components/ledger";
import type { Network } from "../components/network";
import type { Runners } from "../components/runners";
import { labelRoutesOf, REQUIRED_LABEL } from "../config/schema";
import { parameterNames, type StackContext } from "../config/stack-context";

export function fleetSettingsEnvironment(
  ctx: StackContext,
  parts: { ledger: Ledger; network: Network; runners: Runners; secrets: GithubSecrets },
): Record<string, pulumi.Input<string> | undefined> {
  const { config } = ctx;
  const names = parameterNames(ctx);
  const app = config.github.authMode === "app";
  // An App-mode stack deployed before its App exists: no App settings, so the webhook answers 503.
  const appReady = app && config.github.appId !== undefined;
  return {
    STACK_NAME: ctx.stack,
    JOBS_TABLE: parts.ledger.jobsTable.name,
    HANDOFF_TABLE: parts.ledger.handoffTable.name,
    POOL_TABLE: parts.ledger.poolTable.name,
    LAUNCH_QUEUE_URL: parts.ledger.launchQueue.url,
    LABEL_CONFIG_PATH: names.labelConfigPath,
    LABEL_ROUTES: JSON.stringify(labelRoutesOf(config.labelConfigs)),
    REQUIRED_LABEL,
    GITHUB_API_URL: ctx.settings.githubApiUrl,
    GITHUB_AUTH_MODE: config.github.authMode,
    GITHUB_APP_ID: appReady ? String(config.github.appId) : undefined,
    GITHUB_APP_STATE: app && !appReady ? "pending" : undefined,
    GITHUB_PRIVATE_KEY_PARAM: appReady ? names.githubAppPrivateKey : undefined,
    GITHUB_TOKEN_PARAM: app ? undefined : names.githubToken,
    WEBHOOK_SECRET_PARAM: names.webhookSecret,
    // Whose deliveries the webhook serves (its installation is not known at deploy: see
    // lambda/core/workflow-job-payload.ts ServedScope).
    GITHUB_OWNER: config.github.owner,
    GITHUB_HOST: new URL(config.github.url).host.toLowerCase(),
    GITHUB_REPOSITORIES: config.github.scope === "repo" ? config.github.repositories.join(",") : undefined,
    GITHUB_WRITES_PER_MINUTE: String(GITHUB_JIT_PER_MINUTE_PER_APP),
    RUNNER_SCOPE: config.github.scope,
    RUNNER_ROLE_ID: parts.runners.role.uniqueId,
    SUBNET_IDS: parts.network.subnetIds.apply((ids) => ids.join(",")),
    MAX_RUNNERS_TOTAL: String(config.limits.maxRunnersTotal),
    MAX_RUNTIME_MINUTES: String(config.limits.maxRuntimeMinutes),
    IDLE_TIMEOUT_MINUTES: String(config.limits.idleTimeoutMinutes),
    QUEUE_TIMEOUT_MINUTES: String(config.limits.queueTimeoutMinutes),
  };
}
