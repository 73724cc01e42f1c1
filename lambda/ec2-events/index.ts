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
 * (EventBridge delivers at least once) changes nothing. The entry finds the instance's job and the
 * decision; apply-decision.ts and count-interruption.ts act on it.
 */
import type { EventBridgeEvent } from "aws-lambda";
import { deleteHandoff } from "../adapters/handoff";
import { jobsOnInstance } from "../adapters/job-queries";
import { decideInstanceStopped, decideInterruption } from "../core/lifecycle";
import { logger, MetricUnit, metrics } from "../shared/telemetry";
import { applyInstanceDecision, type Ec2EventResult } from "./apply-decision";
import { countSpotInterruption } from "./count-interruption";

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

export async function handler(event: Ec2Event): Promise<Ec2EventResult> {
  const result = await handleEc2Event(event);
  logger.info("ec2 event", { detailType: event["detail-type"], ...result });
  // Most events count nothing; publishing nothing only logs a warning.
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  return result;
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
    const result = await applyInstanceDecision(decision, job, instanceId, now);
    const opened = await countSpotInterruption(job?.configName, at);
    if (opened !== undefined) result.breakerOpened = opened;
    return result;
  }
  if (event["detail-type"] === STATE_CHANGE) {
    const state = event.detail.state;
    const decision = decideInstanceStopped(job, instanceId, state, at);
    const result = await applyInstanceDecision(decision, job, instanceId, now);
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
