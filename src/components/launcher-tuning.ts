/**
 * How the launch queue feeds the launcher and how long the launcher may run, as plain values (no
 * Pulumi import) so the benchmark models exactly what the program deploys.
 */

/** Launcher timeout; the queue's visibility timeout is six times it, as Lambda advises for SQS sources. */
export const LAUNCHER_TIMEOUT_SECONDS = 60;

export const LAUNCHER_EVENT_SOURCE = {
  /** Messages per invocation: one CreateFleet per label config per batch. */
  batchSize: 10,
  /**
   * No batching window: a lone job must not wait for company that never comes (measured: a 2 s
   * window added 1.9 s to queued → handed off), and in a burst the backlog fills batches anyway
   * (205 fleets for 1,000 jobs without a window, 204 with 2 s).
   */
  windowSeconds: 0,
  /** Launcher invocations at most at once: EC2 mutating calls are throttled per account. */
  maxConcurrency: 5,
} as const;

/**
 * GitHub registers about 180 JIT runners a minute per App: the rate of the one budget every
 * launcher takes from (lambda/adapters/github-budget.ts), whatever their number.
 */
export const GITHUB_JIT_PER_MINUTE_PER_APP = 180;
