/**
 * The reconciler Lambda (EventBridge schedule, every minute): reads the ledger, the stack's instances,
 * its runners on GitHub and the hand-off reports; plans with lambda/core/reconcile.ts; applies each
 * action as a conditional write or an idempotent API call, so two runs at once, or a run racing the
 * launcher, cannot launch a job twice or lose one. Then asks GitHub to redeliver failed
 * `workflow_job` webhooks (the App's webhook, or in token mode the ones the program created). Work
 * is bounded (actions per run, GitHub look-ups, a time budget); every count is a metric, and every
 * decision is logged with its reason.
 */
import type { Context, ScheduledEvent } from "aws-lambda";
import pMap from "p-map";
import { describeRunnerInstances, terminateInstances } from "../adapters/ec2";
import { type GitHub, githubApp, githubForInstallation } from "../adapters/github-client";
import { listFailedDeliveries, redeliver, webhookSource } from "../adapters/github-hooks";
import { getWorkflowJob, rerunJob } from "../adapters/github-jobs";
import { deleteRunner, listRunners, scopeFor } from "../adapters/github-runners";
import { deleteHandoff, listHandoffReports } from "../adapters/handoff";
import {
  jobsOnInstance,
  listInterruptedCompletions,
  listJobsByState,
  recentlyClosedJobScopes,
} from "../adapters/job-queries";
import {
  getJob,
  markJobEnqueued,
  releaseToQueue,
  transitionIf,
  updateJobFields,
} from "../adapters/jobs-table";
import { loadLabelConfigs } from "../adapters/label-configs";
import { enqueueLaunches } from "../adapters/launch-queue";
import {
  createRetryMarker,
  readRedeliveryState,
  releaseRetryMarker,
  writeRedeliveryState,
} from "../adapters/reserved-items";
import { ENQUEUE_CLAIM_SECONDS } from "../core/intake-decision";
import { decideRetryOnInterruption } from "../core/lifecycle";
import {
  type GithubRunner,
  planReconcile,
  type ReconcileAction,
  type StackInstance,
} from "../core/reconcile";
import { planRedeliveries, readSince, webhooksToScan } from "../core/redelivery";
import { isStackRunner, LIVE_INSTANCE_STATES, type RunnerScope } from "../core/stack-identity";
import type { JobRecord, JobState } from "../shared/job";
import { type GitHubWebhook, settings, webhookOwner } from "../shared/settings";
import { logger, MetricUnit, metrics } from "../shared/telemetry";

/** The states the reconciler reads from the ledger (terminal jobs come in only via their instance). */
const LIVE_STATES: readonly JobState[] = ["queued", "launching", "launched", "running", "interrupted"];
const MAX_JOBS_PER_STATE = 2000;
const MAX_ACTIONS = 200;
const MAX_GITHUB_CHECKS = 30;
const MAX_INSTANCE_LOOKUPS = 200;
/** Scopes (org or repo) whose runners are listed in one run. */
const MAX_RUNNER_SCOPES = 10;
const CONCURRENCY = 8;
/** Runs of the reconciler (minutes) between two listings of the stack's runners on GitHub. */
const RUNNER_SWEEP_MINUTES = 5;
/** The sweep also covers the scopes of jobs closed this recently (leftovers of an idle fleet). */
const SWEEP_LOOKBACK_SECONDS = 2 * 3600;
/** How far back the re-run step looks for interrupted jobs that completed (several runs' worth). */
const RERUN_WINDOW_SECONDS = 30 * 60;
const REDELIVERY = { maxAttempts: 6, baseBackoffSeconds: 60, maxPerRun: 50 };
/**
 * Token mode, repository scope: webhooks whose deliveries one run reads (one GitHub call each). With
 * more, each is read every few minutes (core/redelivery.ts webhooksToScan): 5 a minute is 300 of the
 * token's 5,000 calls an hour.
 */
const WEBHOOKS_PER_RUN = 5;

export interface ReconcileReport {
  /** Actions applied, by kind. */
  applied: Record<string, number>;
  /** Actions whose condition no longer held (someone else acted first), by kind. */
  skipped: Record<string, number>;
  failed: number;
  /** Planned but left for the next run (action cap or time budget). */
  deferred: number;
  redelivered: number;
  /** Interrupted jobs re-run on on-demand capacity (retryOnInterruption). */
  rerun: number;
  /** Stack instances pending or running (the RunnerInstances metric; undefined when EC2 was unreadable). */
  instances?: number;
  /** Parts that could not be read this run (their rules were skipped). */
  unreadable: string[];
}

export async function handler(_event: ScheduledEvent, context?: Context): Promise<ReconcileReport> {
  // Leave 10 s of the Lambda's timeout for the last in-flight calls and the metrics.
  const budgetMs = context ? Math.max(5_000, context.getRemainingTimeInMillis() - 10_000) : 50_000;
  const report = await reconcile({ now: new Date(), deadline: Date.now() + budgetMs });
  for (const [kind, n] of Object.entries(report.applied)) {
    // e.g. ReconcileDeleteRunner: how many offline runners were removed this run.
    const name = kind.replace(/(^|-)([a-z])/g, (_m, _d, c: string) => c.toUpperCase());
    metrics.addMetric(`Reconcile${name}`, MetricUnit.Count, n);
  }
  metrics.addMetric("ReconcileSkipped", MetricUnit.Count, sum(report.skipped));
  metrics.addMetric("ReconcileFailed", MetricUnit.Count, report.failed);
  metrics.addMetric("ReconcileDeferred", MetricUnit.Count, report.deferred);
  metrics.addMetric("WebhooksRedelivered", MetricUnit.Count, report.redelivered);
  metrics.addMetric("InterruptedJobsRerun", MetricUnit.Count, report.rerun);
  if (report.instances !== undefined)
    metrics.addMetric("RunnerInstances", MetricUnit.Count, report.instances);
  metrics.publishStoredMetrics();
  logger.info("reconciled", { ...report });
  return report;
}

const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

/** One reconciler pass at `now`; stops starting new work after `deadline` (epoch ms). */
export async function reconcile(
  options: { now?: Date; deadline?: number; sweepRunners?: boolean } = {},
): Promise<ReconcileReport> {
  const now = options.now ?? new Date();
  const deadline = options.deadline ?? Date.now() + 50_000;
  const s = settings();
  const report: ReconcileReport = {
    applied: {},
    skipped: {},
    failed: 0,
    deferred: 0,
    redelivered: 0,
    rerun: 0,
    unreadable: [],
  };

  const skip = (part: string, what: string) => (error: unknown) => {
    logger.warn(`could not read ${what}: its rules are skipped this run`, error as Error);
    report.unreadable.push(part);
    return undefined;
  };
  // The reads are independent: in parallel, so a run stays short.
  const [jobs, instances, handoffs = []] = await Promise.all([
    Promise.all(LIVE_STATES.map((state) => listJobsByState(state, { limit: MAX_JOBS_PER_STATE }))).then(
      (all) => all.flat(),
    ),
    readInstances(s.stackName).catch(skip("instances", "the stack's instances")),
    listHandoffReports().catch(skip("handoffs", "the hand-off reports")),
  ]);
  // Terminal jobs matter only for instances still up: "its job completed, the instance did not stop".
  const held = new Set(jobs.map((j) => j.instanceId).filter(Boolean));
  const alive = instances?.filter((i) => i.state === "running" || i.state === "pending");
  const unheld = (alive ?? []).filter((i) => !held.has(i.instanceId));
  // Offline runners are harmless for a few minutes: list them every few runs (GitHub rate limits).
  const sweepRunners =
    options.sweepRunners ?? Math.floor(now.getTime() / 60_000) % RUNNER_SWEEP_MINUTES === 0;
  const [finished, runners] = await Promise.all([
    // One job per instance tells the planner what it was for (a stolen runner's has two: the first).
    pMap(unheld.slice(0, MAX_INSTANCE_LOOKUPS), async (i) => (await jobsOnInstance(i.instanceId))[0], {
      concurrency: CONCURRENCY,
    }),
    sweepRunners
      ? recentlyClosedJobScopes(new Date(now.getTime() - SWEEP_LOOKBACK_SECONDS * 1000))
          .then((recent) => readRunners(runnerScopes([...jobs, ...recent]), s.stackName))
          .catch(skip("runners", "the stack's runners on GitHub"))
      : undefined,
  ]);
  for (const job of finished) if (job) jobs.push(job);
  report.instances = alive?.length;

  const plan = planReconcile({
    jobs,
    instances,
    runners: runners?.list,
    handoffs,
    now,
    policy: {
      stackName: s.stackName,
      enqueueClaimSeconds: ENQUEUE_CLAIM_SECONDS,
      requeueAfterSeconds: s.requeueAfterSeconds,
      launchingTimeoutSeconds: s.launchingTimeoutSeconds,
      queueTimeoutSeconds: s.queueTimeoutMinutes * 60,
      maxRuntimeSeconds: s.maxRuntimeMinutes * 60,
      idleTimeoutSeconds: s.idleTimeoutMinutes * 60,
      orphanGraceSeconds: s.orphanGraceSeconds,
      completedGraceSeconds: s.completedGraceSeconds,
      maxActions: MAX_ACTIONS,
      maxGithubChecks: MAX_GITHUB_CHECKS,
    },
  });
  report.deferred = plan.deferred;

  const byId = new Map(jobs.map((j) => [j.jobId, j]));
  const ctx: ApplyContext = { now, byId, runnerScopes: runners?.scopeOf ?? new Map(), toEnqueue: [] };
  // Terminations first, in one call: they stop spend, and the job actions after them assume them.
  const terminations = plan.actions.filter((a) => a.kind === "terminate");
  if (terminations.length) {
    try {
      await terminateInstances([...new Set(terminations.map((a) => a.instanceId))]);
      for (const a of terminations) logAction(a, "applied", report);
    } catch (error) {
      logger.error("terminate failed", error as Error);
      report.failed += terminations.length;
    }
  }
  const rest = plan.actions.filter((a) => a.kind !== "terminate");
  const applyRest = async () => {
    await pMap(
      rest,
      async (action) => {
        if (Date.now() > deadline) {
          report.deferred++;
          return;
        }
        try {
          const outcome = await apply(action, ctx);
          logAction(action, outcome, report);
        } catch (error) {
          report.failed++;
          logger.error("reconcile action failed", {
            action: describe(action),
            error: (error as Error).message,
          });
        }
      },
      { concurrency: CONCURRENCY },
    );
    await sendLaunches(ctx, report);
  };
  // Independent of the plan's actions: re-runs of interrupted jobs and webhook redelivery.
  const rerunStep = async () => {
    if (Date.now() > deadline) return;
    report.rerun = await rerunInterruptedJobs(now).catch((error: unknown) => {
      logger.warn("re-run of interrupted jobs skipped", error as Error);
      report.unreadable.push("interrupted-jobs");
      return 0;
    });
  };
  const redeliveryStep = async () => {
    if (Date.now() > deadline) return;
    // One webhook that cannot be read (say, the token lost its Webhooks permission) skips only itself.
    const counts = await pMap(
      webhooksToRead(now),
      async (webhook) =>
        redeliverFailedWebhooks(webhook, now).catch((error: unknown) => {
          logger.warn("webhook redelivery skipped", { ...webhookFields(webhook), error: String(error) });
          if (!report.unreadable.includes("deliveries")) report.unreadable.push("deliveries");
          return 0;
        }),
      { concurrency: 2 },
    );
    report.redelivered = counts.reduce((sum, n) => sum + n, 0);
  };
  await Promise.all([applyRest(), rerunStep(), redeliveryStep()]);
  return report;
}

async function readInstances(stackName: string): Promise<StackInstance[]> {
  // Terminated instances stay listed for about an hour: that is how a launched job learns its instance died.
  const all = await describeRunnerInstances(stackName, [...LIVE_INSTANCE_STATES, "terminated"]);
  return all.map((i) => ({
    instanceId: i.instanceId,
    state: i.state ?? "unknown",
    launchTime: (i.launchTime ?? new Date(0)).toISOString(),
    configName: i.configName,
  }));
}

/** The runner scopes (org or repo) of the jobs in view, with an installation to ask each one through. */
function runnerScopes(
  jobs: Pick<JobRecord, "owner" | "repo" | "installationId">[],
): { scope: RunnerScope; installationId?: number }[] {
  const scopes = new Map<string, { scope: RunnerScope; installationId?: number }>();
  for (const job of jobs) {
    const scope = scopeFor(job);
    const key = JSON.stringify(scope);
    if (!scopes.has(key) || (job.installationId && !scopes.get(key)?.installationId)) {
      scopes.set(key, { scope, installationId: job.installationId });
    }
  }
  return [...scopes.values()].slice(0, MAX_RUNNER_SCOPES);
}

async function readRunners(scopes: { scope: RunnerScope; installationId?: number }[], stackName: string) {
  const list: GithubRunner[] = [];
  const scopeOf = new Map<number, { gh: GitHub; scope: RunnerScope }>();
  for (const { scope, installationId } of scopes) {
    const gh = await githubForInstallation(installationId);
    for (const runner of await listRunners(gh, scope)) {
      if (!isStackRunner(runner.name, stackName)) continue;
      list.push(runner);
      scopeOf.set(runner.id, { gh, scope });
    }
  }
  return { list, scopeOf };
}

interface ApplyContext {
  now: Date;
  byId: Map<string, JobRecord>;
  runnerScopes: Map<number, { gh: GitHub; scope: RunnerScope }>;
  /** Launch messages to send after the writes, in batches. */
  toEnqueue: { jobId: string; configName: string }[];
}

type Outcome = "applied" | "skipped";

async function apply(action: ReconcileAction, ctx: ApplyContext): Promise<Outcome> {
  const { now } = ctx;
  switch (action.kind) {
    case "enqueue": {
      if (action.check && (await settledOnGitHub(action.jobId, ctx))) return "applied";
      // Only while unchanged since the plan read it: a job launched, or enqueued by another reconciler
      // or the webhook meanwhile, needs no message.
      const job = await transitionIf(action.jobId, {
        from: "queued",
        to: "queued",
        updatedAt: ctx.byId.get(action.jobId)?.updatedAt,
        set: { reason: action.reason, enqueueClaimedAt: now.toISOString() },
        remove: ["enqueuedAt"],
        now,
      });
      if (!job) return "skipped";
      ctx.toEnqueue.push({ jobId: job.jobId, configName: job.configName });
      return "applied";
    }
    case "release": {
      if (action.check && (await settledOnGitHub(action.jobId, ctx))) return "applied";
      const job = await releaseToQueue(action.jobId, {
        from: action.from,
        instanceId: action.instanceId,
        reason: action.reason,
        now,
      });
      if (!job) return "skipped";
      ctx.toEnqueue.push({ jobId: job.jobId, configName: job.configName });
      return "applied";
    }
    case "expire": {
      const job = await transitionIf(action.jobId, {
        from: action.from,
        to: "timed-out",
        set: { reason: action.reason, completedAt: now.toISOString() },
        now,
      });
      return job ? "applied" : "skipped";
    }
    case "check":
      return (await settledOnGitHub(action.jobId, ctx)) ? "applied" : "skipped";
    case "interrupt": {
      const job = await transitionIf(action.jobId, {
        from: "running",
        to: "interrupted",
        set: { interruptedAt: action.interruptedAt, reason: action.reason },
        now,
      });
      return job ? "applied" : "skipped";
    }
    case "delete-handoff":
      await deleteHandoff(action.instanceId);
      return "applied";
    case "delete-runner": {
      const where = ctx.runnerScopes.get(action.runnerId);
      if (!where) return "skipped";
      await deleteRunner(where.gh, where.scope, action.runnerId);
      return "applied";
    }
    case "terminate":
      // Applied in one batch before the others (see reconcile).
      return "skipped";
  }
}

/**
 * Asks GitHub about a job whose webhooks may be lost, and records what GitHub knows: completed →
 * closed with GitHub's conclusion; unknown to GitHub → failed; taken by a runner while the ledger
 * still waits for one → running on that runner (no new launch for it). Returns whether the job was
 * settled that way (false: GitHub still has it queued, or in progress where the ledger says so too).
 */
async function settledOnGitHub(jobId: string, ctx: ApplyContext): Promise<boolean> {
  const job = ctx.byId.get(jobId) ?? (await getJob(jobId));
  if (!job) return false;
  const gh = await githubForInstallation(job.installationId);
  const remote = await getWorkflowJob(gh, job.repo, Number(job.jobId));
  const now = ctx.now.toISOString();
  if (remote?.status === "in_progress" && !["running", "interrupted"].includes(job.state)) {
    const running = await transitionIf(jobId, {
      from: job.state,
      to: "running",
      set: {
        runnerName: remote.runnerName ?? undefined,
        runnerId: remote.runnerId ?? undefined,
        startedAt: now,
        lastAction: "in_progress",
        reason: "in progress on GitHub (read by the reconciler: the in_progress webhook was not seen)",
      },
      now: ctx.now,
    });
    return !!running;
  }
  if (remote && remote.status !== "completed") return false;
  const set: Partial<JobRecord> = remote
    ? {
        conclusion: remote.conclusion ?? undefined,
        completedAt: now,
        lastAction: "completed",
        reason: "completed on GitHub (read by the reconciler: the completed webhook was not seen)",
      }
    : { completedAt: now, reason: "GitHub no longer knows this job" };
  const closed = await transitionIf(jobId, {
    from: job.state,
    to: remote ? "completed" : "failed",
    set,
    now: ctx.now,
  });
  return !!closed;
}

async function sendLaunches(ctx: ApplyContext, report: ReconcileReport): Promise<void> {
  if (!ctx.toEnqueue.length) return;
  try {
    await enqueueLaunches(ctx.toEnqueue);
  } catch (error) {
    // The jobs hold a claim that goes stale: the next run enqueues them.
    logger.error("could not send launch messages", error as Error);
    report.failed += ctx.toEnqueue.length;
    return;
  }
  await pMap(ctx.toEnqueue, (m) => markJobEnqueued(m.jobId, { now: ctx.now }), { concurrency: CONCURRENCY });
}

/**
 * retryOnInterruption: a job that a spot interruption failed is re-run once (GitHub's re-run job API)
 * on on-demand capacity. "Once" is the conditional create of a marker on (repo, run id); the marker is
 * also what tells the launcher to launch the run's next attempt of that config on-demand
 * (launcher/launch-market.ts launchMarketOverrides), since the re-run job arrives as a new `queued` job with a
 * new id and run attempt. Looks at jobs completed in the last RERUN_WINDOW_SECONDS (runs every minute).
 */
async function rerunInterruptedJobs(now: Date): Promise<number> {
  const candidates = await listInterruptedCompletions(new Date(now.getTime() - RERUN_WINDOW_SECONDS * 1000));
  if (candidates.length === 0) return 0;
  const configs = await loadLabelConfigs(now.getTime());
  let rerun = 0;
  for (const job of candidates) {
    const decision = decideRetryOnInterruption(job, job.conclusion, configs.get(job.configName));
    if (!decision.rerun) continue;
    const marker = {
      repo: job.repo,
      runId: job.runId,
      fromAttempt: job.runAttempt ?? 1,
      jobId: job.jobId,
      configName: job.configName,
      reason: decision.reason,
      createdAt: now.toISOString(),
    };
    if (!(await createRetryMarker(marker, now))) continue; // re-run once already
    try {
      await rerunJob(await githubForInstallation(job.installationId), job.repo, Number(job.jobId));
    } catch (error) {
      // Give the marker back: the next run tries again (GitHub refuses while the run is still going).
      await releaseRetryMarker(job.repo, job.runId, now);
      logger.warn("could not re-run an interrupted job", {
        jobId: job.jobId,
        error: (error as Error).message,
      });
      continue;
    }
    await updateJobFields(job.jobId, { set: { reason: decision.reason }, now });
    logger.info("interrupted job re-run on on-demand capacity", {
      jobId: job.jobId,
      repo: job.repo,
      runId: job.runId,
    });
    rerun++;
  }
  return rerun;
}

/**
 * Whose deliveries this run reads (core/redelivery.ts): the App's webhook (`undefined`) in App mode;
 * in token mode the webhooks the program created, a rotating share of them per run.
 */
function webhooksToRead(now: Date): (GitHubWebhook | undefined)[] {
  const s = settings();
  if (s.githubAuthMode === "app") return [undefined];
  return webhooksToScan(s.githubWebhooks, Math.floor(now.getTime() / 60_000), WEBHOOKS_PER_RUN);
}

function webhookFields(webhook: GitHubWebhook | undefined) {
  return webhook ? { hookId: webhook.hookId, hookOwner: webhookOwner(webhook) } : { hookId: "app" };
}

/**
 * Redelivers one webhook's failed `workflow_job` deliveries: reads its failures since the bookmark,
 * saves the plan, asks GitHub. Returns how many it asked for.
 */
async function redeliverFailedWebhooks(webhook: GitHubWebhook | undefined, now: Date): Promise<number> {
  const policy = { ...REDELIVERY, lookbackSeconds: settings().redeliveryLookbackHours * 3600 };
  const source = webhookSource(webhook);
  const stored = await readRedeliveryState(webhook);
  const { version, ...state } = stored ?? { version: undefined, pending: {} };
  const gh = webhook ? await githubForInstallation() : await githubApp();
  const failed = await listFailedDeliveries(gh, readSince(stored, now, policy), source);
  const plan = planRedeliveries(stored ? state : undefined, failed, now, policy);
  // Save first: a crash after asking GitHub must not ask again at once.
  if (!(await writeRedeliveryState(webhook, plan.state, version, now))) return 0; // another run got there
  let sent = 0;
  const hook = webhookFields(webhook);
  for (const { id, guid, attempt } of plan.redeliver) {
    try {
      await redeliver(gh, id, source);
      sent++;
      logger.info("webhook redelivered", { deliveryId: id, guid, attempt, ...hook });
    } catch (error) {
      logger.warn("webhook redelivery failed", {
        deliveryId: id,
        guid,
        error: (error as Error).message,
        ...hook,
      });
    }
  }
  for (const guid of plan.gaveUp) logger.warn("gave up redelivering a webhook", { guid, ...hook });
  return sent;
}

function describe(action: ReconcileAction) {
  const { kind, reason, ...rest } = action;
  return { kind, reason, ...rest };
}

function logAction(action: ReconcileAction, outcome: Outcome, report: ReconcileReport) {
  const counts = outcome === "applied" ? report.applied : report.skipped;
  counts[action.kind] = (counts[action.kind] ?? 0) + 1;
  if (outcome === "applied") logger.info("reconcile", { ...describe(action) });
}
