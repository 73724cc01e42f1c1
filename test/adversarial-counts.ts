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

// ---- Concurrent deliveries and racing launchers (test/adversarial-concurrency.test.ts) -------------

/** test/adversarial-concurrency.test.ts: every job delivered many times at once while launchers race. */
export const CONCURRENCY_SUITE = {
  /** Jobs queued at GitHub, each delivered `deliveriesPerJob` times at once. */
  jobs: 100,
  deliveriesPerJob: 10,
  /** Of a job's deliveries, how many are the same delivery sent again (same id); the rest are redeliveries (new ids). */
  sameDeliveryRepeats: 4,
  /** Jobs whose deliveries are in flight together (a wave), while the launchers run. */
  jobsPerWave: 10,
  /** Launcher invocations polling the queue at once; each receive leaves the messages visible, so they race for the same jobs. */
  racingLaunchers: 4,
} as const;

// ---- Secrets scan (test/adversarial-secrets.test.ts, test/infra/program-secrets-scan.test.ts) -------

/** The secrets scan: a full flow on the sandbox, and the program's resources under Pulumi mocks. */
export const SECRETS_SCAN = {
  /**
   * Jobs of the scanned flow: one succeeds, one fails, one's first JIT registration fails, one's
   * runner never starts, one runs in token mode (a PAT); bad-signature deliveries in between.
   */
  jobs: 5,
  /** Reconciler runs (one a minute on the fake clock) that end the instance whose runner never started. */
  reconcilerTicks: 15,
  /** App private key, webhook secret, installation tokens, PAT, JIT configs. */
  secretKinds: 5,
  /**
   * Stacks whose every resource is scanned under Pulumi mocks (test/infra/program-secrets-scan.test.ts):
   * token mode, where the PAT reaches the program (App mode's inputs: test/infra/program-dev.test.ts).
   */
  programStacks: 1,
} as const;
