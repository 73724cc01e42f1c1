/**
 * Undoing a launch that did not work out: a claimed job goes back to `queued` for a later try, an
 * instance nobody will use is terminated. Both are best effort: what fails here is left to the
 * reconciler (a job `launching` past its timeout, a stack-tagged instance without a live job).
 */
import { terminateInstances } from "../adapters/ec2";
import { transitionJob } from "../adapters/jobs-table";
import { backoffSeconds } from "../core/spot-fallback";
import { logger } from "../shared/telemetry";
import { type Candidate, retryAfter, type Settled } from "./batch-records";

/** Fields describing an instance, cleared when a job is released to the queue. */
export const INSTANCE_FIELDS = [
  "instanceId",
  "instanceType",
  "availabilityZone",
  "market",
  "runnerName",
] as const;

/** Back to `queued` with the reason; its message returns after `delaySeconds`. */
export async function releaseForRetry(
  c: Candidate,
  reason: string,
  delaySeconds: number,
  countSpotFailure = false,
): Promise<Settled> {
  try {
    await transitionJob(c.job.jobId, "queued", {
      set: { reason },
      remove: [...INSTANCE_FIELDS],
      ...(countSpotFailure ? { add: { spotFailures: 1 } } : {}),
    });
  } catch (error) {
    // Still launching: the reconciler releases it after the launching timeout.
    logger.error("could not release a job", { jobId: c.job.jobId, error: String(error) });
  }
  return retryAfter(c, delaySeconds);
}

/** Released after its instance could not be registered: retried with the job's backoff. */
export function releaseAfterRegistrationFailure(c: Candidate, reason: string): Promise<Settled> {
  return releaseForRetry(c, reason, backoffSeconds(c.job.attempts ?? 1));
}

export async function terminateQuietly(instanceIds: string[], why: string): Promise<void> {
  try {
    await terminateInstances(instanceIds);
    logger.info("terminated instances", { why, instanceIds });
  } catch (error) {
    // Left for the reconciler's orphan reaping (stack-tagged instance without a live job).
    logger.error("could not terminate instances", { why, instanceIds, error: String(error) });
  }
}
