/**
 * How many cases the adversarial suites try, as named constants: the suites run with exactly these
 * numbers, and the docs' "Reliability and security" table is generated from them (so the table says
 * what actually ran). Each suite adds its own section.
 */

// ---- Launcher crash points (test/launcher-crash-points.test.ts) -------------------------------------

/** test/launcher-crash-points.test.ts: the launcher dies at each crash point, then the fleet runs on. */
export const LAUNCHER_CRASH_SUITE = {
  /** The launcher's crash points (lambda/launcher/launch-batch.ts lists them). */
  crashPoints: 4,
  /** Jobs whose first launch dies at each crash point, each with its own label config. */
  jobsPerCrashPoint: 3,
  /** Reconciler runs (one a minute on the sandbox clock) after the crashes. */
  reconcilerTicks: 30,
} as const;
