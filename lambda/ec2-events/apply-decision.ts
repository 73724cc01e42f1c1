/**
 * The EC2 events Lambda's use case: apply what core/lifecycle.ts decided about the job on an
 * instance. A running job on a reclaimed spot instance is marked `interrupted`; a job still waiting
 * for its runner is released to `queued` and relaunched at once (shared/relaunch.ts), its doomed
 * instance terminated when the decision says so. Every write is conditional on the state and
 * instance the decision saw, so a late or duplicate event changes nothing.
 */
import { terminateInstances } from "../adapters/ec2";
import { releaseToQueue, transitionIf } from "../adapters/jobs-table";
import type { InstanceEventDecision } from "../core/lifecycle";
import type { JobRecord } from "../shared/job";
import { enqueueReleased } from "../shared/relaunch";
import { MetricUnit, metrics } from "../shared/telemetry";

export interface Ec2EventResult {
  instanceId?: string;
  jobId?: string;
  decision: InstanceEventDecision["kind"];
  applied: boolean;
  reason: string;
  breakerOpened?: boolean;
}

export async function applyInstanceDecision(
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
