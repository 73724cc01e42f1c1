/**
 * Use cases shared by several Lambdas live in lambda/shared/ (the rest of it is models and
 * settings). This one: give a job that lost its launch a new one at once. The EC2 events Lambda
 * (an instance stopped or is being reclaimed) and the webhook (a runner took another job) both
 * release a job to `queued` holding its enqueue claim (jobs-table releaseToQueue), then call this.
 */
import { markJobEnqueued } from "../adapters/jobs-table";
import { enqueueLaunches } from "../adapters/launch-queue";
import type { JobRecord } from "./job";

/** Sends the launch message of a job `releaseToQueue` released, then marks it sent. */
export async function enqueueReleased(job: JobRecord, now: Date): Promise<void> {
  await enqueueLaunches([{ jobId: job.jobId, configName: job.configName }]);
  await markJobEnqueued(job.jobId, { now });
}
