/**
 * The launcher's share of GitHub's JIT registration budget, which every launcher takes from
 * (adapters/github-budget.ts, GITHUB_WRITES_PER_MINUTE per App): a batch launches only as many
 * instances as it was granted registrations, gives back what it did not use, and a rate-limit
 * answer to any launcher holds them all back.
 */
import { holdGitHubWrites, returnGitHubTokens, takeGitHubTokens } from "../adapters/github-budget";
import { githubHeldUntil, onGitHubHold } from "../adapters/github-client";
import type { BudgetAnswer } from "../core/admission";
import { settings } from "../shared/settings";

export interface Grant extends BudgetAnswer {
  /** Registrations this invocation may make. */
  granted: number;
  /** When it asked (epoch ms). */
  askedAt: number;
}

/** Makes GitHub's rate-limit answer to this launcher hold every launcher back (the shared budget). */
export function shareGitHubHolds(): void {
  onGitHubHold((until) => holdGitHubWrites(until));
}

/**
 * Up to `want` registrations from the shared budget. A hold GitHub told this process of counts even
 * if it could not be recorded for the others.
 */
export async function takeRegistrations(want: number): Promise<Grant> {
  const askedAt = Date.now();
  const grant =
    askedAt < githubHeldUntil()
      ? { granted: 0, perMinute: settings().githubWritesPerMinute, nextAt: githubHeldUntil() }
      : await takeGitHubTokens(want, askedAt);
  return { ...grant, askedAt };
}

/**
 * Registrations granted for jobs that got no instance (claims lost or over the limits, no capacity)
 * go back to the other launchers now rather than at the next refill: one write, only when some are left.
 */
export async function returnUnused(grant: Grant, used: number): Promise<void> {
  const unused = grant.granted - used;
  if (unused > 0) await returnGitHubTokens(unused);
}
