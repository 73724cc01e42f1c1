/**
 * The jobs table's reserved keys: small items beside the job items, under keys starting with `#`
 * (GitHub job ids are numbers, so they never collide; the items have no `state` or `instanceId`, so
 * they are in neither index). All of them are listed here, so two can never share a key: the
 * launchers' register of recent claims (adapters/claims-register.ts), GitHub's registration budget
 * (adapters/github-budget.ts), and the spot circuit breakers, re-run markers, webhook-redelivery
 * bookmarks, the reconciler's heartbeat and the deliveries that matched no config
 * (adapters/reserved-items.ts).
 */
import { type GitHubWebhook, webhookOwner } from "./settings";

/** The prefix of every unmatched-delivery key (status lists them by it). */
export const UNMATCHED_PREFIX = "#unmatched#";

export const RESERVED_KEYS = {
  claims: "#launcher#recent-claims",
  /** The launchers' shared GitHub registration budget (github-budget.ts). */
  githubBudget: "#github#jit-budget",
  breaker: (configName: string) => `#spot-breaker#${configName}`,
  retry: (repo: string, runId: number) => `#rerun-on-demand#${repo}#${runId}`,
  /** The App's webhook: "#reconciler#webhook-redelivery"; a token mode one: "…#<owner>[/<repo>]#<hook id>". */
  redelivery: (webhook?: GitHubWebhook) =>
    webhook
      ? `#reconciler#webhook-redelivery#${webhookOwner(webhook)}#${webhook.hookId}`
      : "#reconciler#webhook-redelivery",
  /** When the reconciler last finished a run (`npm run doctor` reads it). */
  reconcilerHeartbeat: "#reconciler#heartbeat",
  /** A `workflow_job` delivery whose labels matched no config, kept for a day (`npm run status`). */
  unmatched: (jobId: string) => `${UNMATCHED_PREFIX}${jobId}`,
} as const;
