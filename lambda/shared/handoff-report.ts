/**
 * What an instance reports on its own hand-off item (runner/bootstrap.sh writes these): read by the
 * reconciler's rules (core/reconcile-plan.ts), listed by the hand-off adapter, shown by `status`.
 */
export interface HandoffReport {
  instanceId: string;
  createdAt?: string;
  fetchedAt?: string;
  runnerStartedAt?: string;
  jobStartedAt?: string;
  jobFinishedAt?: string;
  interruptedAt?: string;
  /** A pool member's first boot finished its warm-up (it waits to be stopped). */
  warmedAt?: string;
}
