/**
 * What happens to a job whose launch failed, pure: the market a job asks for first, what an EC2 or
 * GitHub error means, and the spot fallback. "Where is the spot fallback decided?" —
 * `decideAfterFailure`, below; the error codes it acts on are sorted in `classifyFleetError`.
 */
import type { Market } from "../shared/job";
import type { LabelConfig } from "../shared/label-config";

/** What decides a config's market. */
export type SpotRules = Pick<LabelConfig, "spotPolicy" | "spotFailuresBeforeOnDemand">;

/** spotPreferred: after this many spot failures, a job goes to on-demand. */
export function spotGivenUp(config: SpotRules, spotFailures: number): boolean {
  return config.spotPolicy === "spotPreferred" && spotFailures >= config.spotFailuresBeforeOnDemand;
}

/** The market a job's next launch asks for, before anything failed in this invocation. */
export function initialMarket(config: SpotRules, spotFailures = 0): Market {
  if (config.spotPolicy === "onDemandOnly" || spotGivenUp(config, spotFailures)) return "on-demand";
  return "spot";
}

/**
 * - `capacity`: no capacity in these pools now; another market (on-demand) or a later try may work.
 * - `throttled`: EC2 rate limit; retry later with jittered backoff, not a spot failure.
 * - `config`: the request itself is wrong (template, parameters, permissions); retrying will not
 *   help, the job fails with the reason.
 * - `transient`: anything else (5xx, unknown code): retry later, bounded by the queue timeout.
 */
export type FailureClass = "capacity" | "throttled" | "config" | "transient";

const CAPACITY_CODES = new Set([
  "InsufficientInstanceCapacity",
  "InsufficientCapacity",
  "InsufficientHostCapacity",
  "InsufficientReservedInstanceCapacity",
  "MaxSpotInstanceCountExceeded",
  "MaxSpotFleetRequestCountExceeded",
  "SpotMaxPriceTooLow",
  "UnfulfillableCapacity",
  "InstanceLimitExceeded",
  "VcpuLimitExceeded",
  "MaxFleetCountExceeded",
  // "instance type not supported in this AZ": another pool may still work.
  "Unsupported",
]);

const THROTTLE_CODES = new Set([
  "RequestLimitExceeded",
  "Throttling",
  "ThrottlingException",
  "RequestThrottled",
]);

const CONFIG_CODE_PREFIXES = [
  "InvalidLaunchTemplate",
  "InvalidParameter",
  "InvalidFleetConfiguration",
  "InvalidAMIID",
  "InvalidSubnetID",
  "InvalidSubnet",
  "InvalidGroup",
  "InvalidKeyPair",
  "InvalidIamInstanceProfile",
  "InvalidBlockDeviceMapping",
  "InvalidInstanceType",
  "MissingParameter",
  "Unauthorized",
  "UnauthorizedOperation",
  "AuthFailure",
  "OptInRequired",
  "PendingVerification",
];

export function classifyFleetError(code: string | undefined): FailureClass {
  if (!code) return "transient";
  if (CAPACITY_CODES.has(code)) return "capacity";
  if (THROTTLE_CODES.has(code)) return "throttled";
  if (CONFIG_CODE_PREFIXES.some((prefix) => code === prefix || code.startsWith(prefix))) return "config";
  return "transient";
}

/**
 * One class for the jobs a fleet left unserved: if any pool reported a capacity problem another
 * market may help (other pools' configuration errors, e.g. a type missing in one AZ, do not
 * matter then); the request is only "wrong" when every error says so. No errors at all but fewer
 * instances than asked means capacity too.
 */
export function classifyFleetErrors(codes: string[]): FailureClass {
  if (codes.length === 0) return "capacity";
  const classes = new Set(codes.map(classifyFleetError));
  if (classes.has("capacity")) return "capacity";
  if (classes.has("throttled")) return "throttled";
  if (classes.has("transient")) return "transient";
  return "config";
}

export type NextStep =
  /** Launch again now, in this invocation, on on-demand capacity. */
  | { kind: "on-demand-now"; countSpotFailure: boolean }
  /** Release the job to `queued` and retry after a delay. */
  | { kind: "retry-later"; delaySeconds: number; countSpotFailure: boolean; reason: string }
  /** Fail the job: retrying cannot help. */
  | { kind: "fail"; reason: string };

export interface FailureContext {
  config: SpotRules;
  market: Market;
  failure: FailureClass;
  /** The job's spot failures before this one. */
  spotFailures: number;
  /** The job's launch attempts so far (including this one), for the backoff. */
  attempts: number;
  detail?: string;
  random?: () => number;
}

/**
 * THE spot fallback decision: what happens to a job whose launch on `market` failed with
 * `failure`.
 * - configuration error: fail, with the reason.
 * - throttling / transient: retry later with jittered exponential backoff; not a spot failure.
 * - capacity on spot: one more spot failure; `spotPreferred` goes on-demand in the same
 *   invocation once the job has `spotFailuresBeforeOnDemand` of them; `spotOnly` (and
 *   `spotPreferred` below the threshold) retries later, until the queue timeout fails it.
 * - capacity on on-demand: retry later (the fallback market was full too).
 */
export function decideAfterFailure(ctx: FailureContext): NextStep {
  const detail = ctx.detail ? `: ${ctx.detail}` : "";
  if (ctx.failure === "config") {
    return { kind: "fail", reason: `launch configuration error${detail}` };
  }
  const delaySeconds = backoffSeconds(ctx.attempts, { random: ctx.random });
  if (ctx.failure === "throttled" || ctx.failure === "transient") {
    return {
      kind: "retry-later",
      delaySeconds,
      countSpotFailure: false,
      reason: `${ctx.failure === "throttled" ? "EC2 throttled the launch" : "launch failed"}${detail}`,
    };
  }
  if (ctx.market === "spot") {
    const spotFailures = ctx.spotFailures + 1;
    if (spotGivenUp(ctx.config, spotFailures)) return { kind: "on-demand-now", countSpotFailure: true };
    return {
      kind: "retry-later",
      delaySeconds,
      countSpotFailure: true,
      reason: `no spot capacity${detail}`,
    };
  }
  return {
    kind: "retry-later",
    delaySeconds,
    countSpotFailure: false,
    reason: `no on-demand capacity${detail}`,
  };
}

/**
 * What a failed JIT registration means (after the GitHub client's own retries): `retry` for what
 * time may fix (5xx, network, rate limits the client gave up waiting for), `fail` for what it will
 * not (the App lacks a permission, the org or repository is unknown, GitHub rejects the request),
 * so a job is not given instance after instance that can never register.
 */
export function classifyRegistrationError(error: {
  status?: number;
  message?: string;
  headers?: Record<string, string | undefined>;
}): "retry" | "fail" {
  const { status } = error;
  if (status === undefined || status >= 500 || status === 429 || status === 409) return "retry";
  const rateLimited =
    error.headers?.["x-ratelimit-remaining"] === "0" ||
    error.headers?.["retry-after"] !== undefined ||
    /rate limit/i.test(error.message ?? "");
  if (status === 403 && rateLimited) return "retry";
  return [400, 401, 403, 404, 410, 422].includes(status) ? "fail" : "retry";
}

/**
 * Exponential backoff with full jitter (AWS Architecture Blog): uniform in
 * [base, min(cap, base·2^(attempt-1))], in whole seconds.
 */
export function backoffSeconds(
  attempt: number,
  options: { baseSeconds?: number; capSeconds?: number; random?: () => number } = {},
): number {
  const base = options.baseSeconds ?? 5;
  const cap = options.capSeconds ?? 300;
  const random = options.random ?? Math.random;
  const ceiling = Math.min(cap, base * 2 ** Math.max(0, attempt - 1));
  return Math.round(base + random() * Math.max(0, ceiling - base));
}
