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

// ---- Webhook fuzzing (test/webhook-fuzz.test.ts) ---------------------------------------------------

/** The seed of every webhook property: a run is reproducible, and a failure names its case. */
export const WEBHOOK_FUZZ_SEED = 20_251_212;
/** Deliveries without a valid signature, over every bad-signature mode (WEBHOOK_BAD_SIGNATURE_MODES). */
export const WEBHOOK_BAD_SIGNATURE_CASES = 5_000;
/** Validly signed random bodies: any JSON, workflow_job-shaped nonsense, odd unicode, deep nesting, non-UTF-8 bytes. */
export const WEBHOOK_SIGNED_RANDOM_CASES = 3_000;
/** Validly signed real workflow_job payloads with fields changed, retyped, removed, enlarged (1,000 labels) or nested. */
export const WEBHOOK_SIGNED_MUTATED_CASES = 2_000;
/** Validly signed (and unsigned) bodies of 30 MB, raw and base64. */
export const WEBHOOK_HUGE_BODY_CASES = 4;
/** Every webhook case of one run. */
export const WEBHOOK_FUZZ_CASES =
  WEBHOOK_BAD_SIGNATURE_CASES +
  WEBHOOK_SIGNED_RANDOM_CASES +
  WEBHOOK_SIGNED_MUTATED_CASES +
  WEBHOOK_HUGE_BODY_CASES;

/** The ways a delivery's signature is wrong, each tried in WEBHOOK_BAD_SIGNATURE_CASES. */
export const WEBHOOK_BAD_SIGNATURE_MODES = [
  "no signature",
  "signed with another secret",
  "SHA-1 only (X-Hub-Signature)",
  "SHA-1 in the SHA-256 header",
  "a SHA-1 digest as sha256=",
  "the signature of another body",
  "upper-case hex",
  "upper-case prefix",
  "header name in another case, with a wrong signature",
  "the header repeated (API Gateway joins it with a comma)",
  "the header twice under two cases",
  "truncated",
  "padded",
  "base64 flag set on a body signed as sent",
  "signed over the base64 text",
  "base64 text sent without the flag",
  "an empty body",
  "garbage",
] as const;

/** One row per webhook property, for the docs table: what is tried, how many times, what holds. */
export const WEBHOOK_FUZZ_PROPERTIES = [
  {
    tried: `deliveries with a bad signature (${WEBHOOK_BAD_SIGNATURE_MODES.length} modes)`,
    cases: WEBHOOK_BAD_SIGNATURE_CASES,
    holds: "401 (or 400 when oversized), no DynamoDB or SQS call: nothing recorded, enqueued or launched",
  },
  {
    tried: "validly signed random bodies (ids of every type, odd unicode, deep nesting, non-UTF-8 bytes)",
    cases: WEBHOOK_SIGNED_RANDOM_CASES,
    holds: "only 2xx/4xx, never an exception; nothing written unless a job was recorded",
  },
  {
    tried: "validly signed mutations of real workflow_job payloads (up to 1,000 labels of 500 characters)",
    cases: WEBHOOK_SIGNED_MUTATED_CASES,
    holds: "only 2xx/4xx, never an exception; one launch message per accepted job, none otherwise",
  },
  {
    tried: "30 MB bodies, signed and unsigned, raw and base64",
    cases: WEBHOOK_HUGE_BODY_CASES,
    holds: "400 before decoding or verifying; nothing written",
  },
] as const;

// ---- Concurrent deliveries and racing launchers (test/adversarial-concurrency.test.ts) -------------

/** test/adversarial-concurrency.test.ts: every job delivered many times at once while launchers race. */
export const CONCURRENCY_SUITE = {
  /** Jobs queued at GitHub, each delivered `deliveriesPerJob` times at once. */
  jobs: 100,
  deliveriesPerJob: 10,
  /** Of a job's deliveries, how many are the same delivery sent again (same id); the rest are redeliveries (new ids). */
  sameDeliveryRepeats: 4,
  /**
   * Jobs whose deliveries are in flight together (a wave), while the launchers run. Small enough that
   * no request waits out the Lambdas' 10 s request timeout in the sandbox on a busy machine.
   */
  jobsPerWave: 2,
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
