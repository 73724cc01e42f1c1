/**
 * The EC2 events Lambda (EventBridge rule on source `aws.ec2`):
 * - "EC2 Spot Instance Interruption Warning" (two minutes before a spot instance is reclaimed): a job
 *   still waiting for its runner is relaunched at once and the doomed instance terminated; a running
 *   job is marked `interrupted` (GitHub fails it when the runner dies; with `retryOnInterruption` the
 *   webhook re-runs it on on-demand capacity). Every interruption counts towards the config's spot
 *   circuit breaker.
 * - "EC2 Instance State-change Notification" (terminated / stopped / shutting-down): a job launched on
 *   that instance that had not started is relaunched; the instance's hand-off item is deleted.
 * Every write is conditional on the state and instance the decision saw, so a late or duplicate event
 * (EventBridge delivers at least once) changes nothing.
 */
import type { EventBridgeEvent } from "aws-lambda";
import { terminateInstances } from "./adapters/ec2";
import { deleteHandoff } from "./adapters/handoff";
import { jobsOnInstance } from "./adapters/job-queries";
import { releaseToQueue, transitionIf } from "./adapters/jobs-table";
import { recordSpotInterruption } from "./adapters/reserved-items";
import {
  type BreakerPolicy,
  decideInstanceStopped,
  decideInterruption,
  type InstanceEventDecision,
} from "./core/lifecycle";
import type { JobRecord } from "./shared/job";
import { enqueueReleased } from "./shared/relaunch";
import { settings } from "./shared/settings";
import { logger, MetricUnit, metrics } from "./shared/telemetry";

export const INTERRUPTION_WARNING = "EC2 Spot Instance Interruption Warning";
export const STATE_CHANGE = "EC2 Instance State-change Notification";

/** `detail` of a spot interruption warning: `{"instance-id": "i-…", "instance-action": "terminate"}`. */
export interface InterruptionDetail {
  "instance-id": string;
  "instance-action": string;
}

/** `detail` of a state-change notification: `{"instance-id": "i-…", "state": "terminated"}`. */
export interface StateChangeDetail {
  "instance-id": string;
  state: string;
}

export type Ec2Event =
  | EventBridgeEvent<typeof INTERRUPTION_WARNING, InterruptionDetail>
  | EventBridgeEvent<typeof STATE_CHANGE, StateChangeDetail>;

export interface Ec2EventResult {
  instanceId?: string;
  jobId?: string;
  decision: InstanceEventDecision["kind"];
  applied: boolean;
  reason: string;
  breakerOpened?: boolean;
}

export async function handler(event: Ec2Event): Promise<Ec2EventResult> {
  const result = await handleEc2Event(event);
  logger.info("ec2 event", { detailType: event["detail-type"], ...result });
  metrics.publishStoredMetrics();
  return result;
}

export function breakerPolicy(): BreakerPolicy {
  const s = settings();
  return {
    threshold: s.spotBreakerInterruptions,
    windowSeconds: s.spotBreakerWindowMinutes * 60,
    cooldownSeconds: s.spotBreakerCooldownMinutes * 60,
  };
}

export async function handleEc2Event(event: Ec2Event, now = new Date()): Promise<Ec2EventResult> {
  const instanceId = event.detail?.["instance-id"];
  if (!instanceId) return { decision: "none", applied: false, reason: "no instance id in the event" };
  // The event's own time orders it; the interruption is counted at that time, not when it arrives.
  const at = Number.isNaN(Date.parse(event.time)) ? now : new Date(event.time);
  const jobs = await jobsOnInstance(instanceId);
  // A stolen runner maps two jobs to one instance: the one whose runner took it, else the launched one.
  const job = jobs.find((j) => j.state === "running") ?? jobs.find((j) => j.state === "launched") ?? jobs[0];

  if (event["detail-type"] === INTERRUPTION_WARNING) {
    metrics.addMetric("SpotInterruptions", MetricUnit.Count, 1);
    const decision = decideInterruption(job, instanceId);
    const result = await applyDecision(decision, job, instanceId, now);
    const policy = breakerPolicy();
    if (job && policy.threshold > 0) {
      const { opened } = await recordSpotInterruption(job.configName, at, policy);
      if (opened) {
        metrics.addMetric("SpotBreakerOpened", MetricUnit.Count, 1);
        logger.warn("spot circuit breaker opened", {
          configName: job.configName,
          until: policy.cooldownSeconds,
        });
      }
      result.breakerOpened = opened;
    }
    return result;
  }
  if (event["detail-type"] === STATE_CHANGE) {
    const state = event.detail.state;
    const decision = decideInstanceStopped(job, instanceId, state);
    const result = await applyDecision(decision, job, instanceId, now);
    // The JIT config of an instance that is gone must not linger (TTL would take up to its expiry).
    if (state === "terminated") await deleteHandoff(instanceId);
    return result;
  }
  return {
    instanceId,
    decision: "none",
    applied: false,
    reason: `event ${(event as Ec2Event)["detail-type"]}`,
  };
}

async function applyDecision(
  decision: InstanceEventDecision,
  job: JobRecord | undefined,
  instanceId: string,
  now: Date,
): Promise<Ec2EventResult> {
  const base = { instanceId, jobId: job?.jobId, decision: decision.kind, reason: decision.reason };
  if (!job || decision.kind === "none") return { ...base, applied: false };
  if (decision.kind === "mark-interrupted") {
    const updated = await transitionIf(job.jobId, {
      from: "running",
      to: "interrupted",
      instanceId,
      set: { interruptedAt: now.toISOString(), reason: decision.reason },
      now,
    });
    if (updated) metrics.addMetric("JobsInterrupted", MetricUnit.Count, 1);
    return { ...base, applied: !!updated };
  }
  const released = await releaseToQueue(job.jobId, {
    from: decision.from,
    instanceId,
    reason: decision.reason,
    now,
  });
  if (decision.terminate) await terminateInstances([instanceId]);
  if (!released) return { ...base, applied: false };
  await enqueueReleased(released, now);
  metrics.addMetric("JobsRelaunched", MetricUnit.Count, 1);
  return { ...base, applied: true };
}
