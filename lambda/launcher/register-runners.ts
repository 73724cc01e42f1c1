/**
 * One launched instance's runner: the instance recorded on its job, a JIT runner registered with
 * GitHub for it, the JIT config handed off (the instance reads it at boot), the job `launched`. On
 * a failure the instance is terminated and the job released, so no instance runs unregistered.
 */
import { githubForInstallation } from "../adapters/github-client";
import {
  deleteRunner,
  generateJitConfig,
  type JitConfig,
  listRunners,
  scopeFor,
} from "../adapters/github-runners";
import { writeHandoff } from "../adapters/handoff";
import { transitionJob, updateJobFields } from "../adapters/jobs-table";
import type { LaunchedInstance } from "../core/fleet-request";
import { classifyRegistrationError } from "../core/spot-fallback";
import { type RunnerScope, runnerNameFor } from "../core/stack-identity";
import { type JobRecord, queuedSince } from "../shared/job";
import type { LabelConfig } from "../shared/label-config";
import { settings } from "../shared/settings";
import { logger, MetricUnit, metrics } from "../shared/telemetry";
import { type Candidate, done, type Settled } from "./batch-records";
import { INSTANCE_FIELDS, releaseAfterRegistrationFailure, terminateQuietly } from "./release-job";

/** Registers the instance given to a job; an unexpected error still leaves no instance unregistered. */
export function registerInstance(c: Candidate, instance: LaunchedInstance): Promise<Settled> {
  return registerAndHandOff(c, instance).catch(async (error: unknown) => {
    // Unexpected (each step handles its own failures).
    logger.error("registration failed unexpectedly", { jobId: c.job.jobId, error: String(error) });
    await terminateQuietly([instance.instanceId], "unexpected error");
    return releaseAfterRegistrationFailure(c, "registration failed unexpectedly");
  });
}

async function registerAndHandOff(c: Candidate, instance: LaunchedInstance): Promise<Settled> {
  const { jobId } = c.job;
  const { instanceId } = instance;
  const runnerName = runnerNameFor(settings().stackName, instanceId);

  const recorded = await updateJobFields(jobId, {
    inStates: ["launching"],
    set: {
      instanceId,
      instanceType: instance.instanceType,
      availabilityZone: instance.availabilityZone,
      market: instance.market,
      runnerName,
    },
  }).catch((error: unknown) => error as Error);
  if (recorded instanceof Error) {
    logger.error("could not record an instance", { jobId, instanceId, error: String(recorded) });
    await terminateQuietly([instanceId], "not recorded");
    return releaseAfterRegistrationFailure(c, "could not record the instance");
  }
  if (!recorded) {
    // The job moved on meanwhile (cancelled, or timed out by the reconciler): nobody needs this one.
    await terminateQuietly([instanceId], "job moved on");
    return done(c);
  }

  const scope = scopeFor(c.job);
  let jit: JitConfig;
  try {
    jit = await registerRunner(c.job, scope, c.config, runnerName);
  } catch (error) {
    return registrationFailed(c, instanceId, error);
  }

  try {
    await writeHandoff({ instanceId, jobId, jitConfig: jit.encodedJitConfig, runnerName });
  } catch (error) {
    logger.error("hand-off write failed", { jobId, instanceId, error: String(error) });
    await terminateQuietly([instanceId], "no hand-off");
    await githubForInstallation(c.job.installationId)
      .then((gh) => deleteRunner(gh, scope, jit.runnerId))
      .catch(() => undefined);
    return releaseAfterRegistrationFailure(c, "hand-off write failed");
  }

  await markLaunched(c.job, instanceId, jit.runnerId);
  return done(c);
}

/** generate-jitconfig; a name already taken (409: an earlier try registered it) is freed once. */
async function registerRunner(
  job: JobRecord,
  scope: RunnerScope,
  config: LabelConfig,
  runnerName: string,
): Promise<JitConfig> {
  const gh = await githubForInstallation(job.installationId);
  const request = {
    name: runnerName,
    runnerGroupId: config.runnerGroupId,
    labels: job.labels.length ? job.labels : config.labels,
  };
  try {
    return await generateJitConfig(gh, scope, request);
  } catch (error) {
    if ((error as { status?: number }).status !== 409) throw error;
    for (const runner of await listRunners(gh, scope, { name: runnerName })) {
      if (runner.name === runnerName) await deleteRunner(gh, scope, runner.id);
    }
    return generateJitConfig(gh, scope, request);
  }
}

/**
 * No JIT config: the instance goes, and the job is retried, or fails when GitHub refuses what time
 * will not fix (core/spot-fallback.ts classifyRegistrationError).
 */
async function registrationFailed(c: Candidate, instanceId: string, error: unknown): Promise<Settled> {
  const { jobId } = c.job;
  const failure = error as {
    status?: number;
    message?: string;
    response?: { headers?: Record<string, string> };
  };
  const { status } = failure;
  logger.warn("JIT registration failed", { jobId, instanceId, status, error: String(error) });
  metrics.addMetric("JitRegistrationFailures", MetricUnit.Count, 1);
  await terminateQuietly([instanceId], "no JIT config");
  const reason = `JIT registration failed${status ? ` (HTTP ${status})` : ""}`;
  if (classifyRegistrationError({ ...failure, headers: failure.response?.headers }) === "fail") {
    await transitionJob(jobId, "failed", {
      set: { reason: `${reason}: GitHub refused it; check the App's permissions and the runner scope` },
      remove: [...INSTANCE_FIELDS],
    }).catch((e) => logger.error("could not fail a job", { jobId, error: String(e) }));
    return done(c);
  }
  return releaseAfterRegistrationFailure(c, reason);
}

/** `launched`, with the launch metrics. */
async function markLaunched(job: JobRecord, instanceId: string, runnerId: number): Promise<void> {
  const launched = await transitionJob(job.jobId, "launched", {
    set: { launchedAt: new Date().toISOString(), runnerId },
  }).catch(() => undefined);
  if (!launched) {
    // Already `running` (the runner was quicker than us) or ended: the instance is registered and
    // runs one job or idles out; the reconciler reaps it if needed.
    logger.info("job moved on before launched was recorded", { jobId: job.jobId, instanceId });
  }
  metrics.addMetric("JobsLaunched", MetricUnit.Count, 1);
  // Queued (recorded by the webhook) to JIT config handed off: what a workflow author waits for,
  // less the instance's boot. The dashboard shows its p50/p95.
  const queuedAt = Date.parse(queuedSince(job));
  if (Number.isFinite(queuedAt)) {
    metrics.addMetric("LaunchLatency", MetricUnit.Milliseconds, Math.max(0, Date.now() - queuedAt));
  }
}
