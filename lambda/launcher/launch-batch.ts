/**
 * One batch of launch messages, from queued jobs to instances whose runners are registered.
 *
 * Steps: drop messages whose job is gone or no longer `queued`; time out jobs that waited past the
 * queue timeout; keep jobs over the runner limits or beyond the GitHub grant waiting in the queue;
 * claim the rest (queued → launching, conditional, so duplicates and concurrent launchers cannot
 * double-launch) and check the limits again (admit-jobs.ts); then per label config with a stopped
 * pool its ready members, one claimed (conditionally) and started per job (start-pool-members.ts),
 * and for the other jobs ONE `instant` CreateFleet with the spot fallback per policy
 * (launch-fleets.ts); per instance, started or launched, a JIT registration handed off through the
 * hand-off table (register-runners.ts). A message comes back (batchItemFailures, after a visibility
 * delay) only when its job was released to `queued` for a later try. Pool members change nothing
 * about the limits: a stopped member is no runner, a started one runs its job's admitted runner.
 *
 * Limits and concurrency: limits are checked before claiming and again after, counting the byState
 * index's active jobs plus the launchers' register of recent claims, which shows racing launchers'
 * claims the lagging index does not yet; the others' claims count first (core/admission.ts
 * claimsOverLimits), so whoever sees both gives way. The event source's MaximumConcurrency (a few)
 * keeps races rare. GitHub's JIT registrations are paced by one budget shared by every launcher
 * (github-grants.ts).
 *
 * Crash points (each leaves a state the reconciler finishes):
 *  1. after a claim, before CreateFleet: job `launching` without instanceId → released after the
 *     launching timeout and re-enqueued.
 *  2. after CreateFleet, before the instance is recorded on its job: instance tagged with the stack
 *     and config but no job names it → reaped as an orphan; job as in 1.
 *  3. after the record, before/while registering with GitHub: job `launching` with instanceId, no
 *     hand-off item → instance terminated, runner (named stack-instanceId) deleted, job released.
 *  4. after the hand-off write, before `launched`: the instance boots and runs; the job moves on
 *     from `launching` when the runner takes it (`running` is allowed from `launching`), or as in 3.
 * A pool member's start takes the place of CreateFleet: a crash after its claim, before or after its
 * start, leaves the member `claimed` without a job naming it (its instance stopped or running); the
 * reconciler terminates it after the claim's grace, and the job is released as in 1 (or 3, once
 * the instance is recorded).
 */
import { admitWithinLimits, claimJobs, forgetClaims, giveBackOverLimits, screenJobs } from "./admit-jobs";
import type { LaunchEntry, Settled } from "./batch-records";
import { returnUnused } from "./github-grants";
import { launchFleets } from "./launch-fleets";

/** Launches what it may of `entries` (one per job); returns what became of each message it settled. */
export async function launchBatch(entries: LaunchEntry[]): Promise<Settled[]> {
  const screened = await screenJobs(entries);
  if (screened.next.length === 0) return screened.settled;
  const admitted = await admitWithinLimits(screened.next);
  const claimed = await claimJobs(admitted.next);
  const kept = await giveBackOverLimits(claimed.next);
  const launched = await launchFleets(kept.next);

  // Claims released for a later try stop counting against the limits now, not when they expire.
  const retried = new Set(launched.settled.filter((s) => s.outcome.kind === "retry").map((s) => s.record));
  await forgetClaims(kept.next.filter((c) => retried.has(c.record)));
  await returnUnused(admitted.grant, launched.registrations);

  return [screened, admitted, claimed, kept, launched].flatMap((step) => step.settled);
}
