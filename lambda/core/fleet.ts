/**
 * The launcher's decisions, pure: which jobs may launch now (limits), what one CreateFleet request
 * for a group of jobs looks like, what its result means, and what happens to a job whose launch
 * failed. "Where is the spot fallback decided?" — `decideAfterFailure`, below; the error codes it
 * acts on are sorted in `classifyFleetError`.
 */
import { createHash } from "node:crypto";
import type { CreateFleetCommandInput, CreateFleetCommandOutput } from "@aws-sdk/client-ec2";
import type { Market } from "../shared/job";
import type { LabelConfig } from "../shared/label-config";
import { TAGS } from "./stack-identity";

/**
 * Launch template version every fleet uses. `$Latest`: each `pulumi up` that changes a template
 * writes a new version, and it is live for the next launch without also moving `$Default`.
 */
export const LAUNCH_TEMPLATE_VERSION = "$Latest";

// ---------------------------------------------------------------------------------------------
// Grouping and limits

/** Items grouped by label config (`configName`, or what `configOf` says), in order within each group. */
export function groupByConfig<T>(
  items: T[],
  configOf: (item: T) => string = (item) => (item as { configName: string }).configName,
): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const name = configOf(item);
    const group = groups.get(name);
    if (group) group.push(item);
    else groups.set(name, [item]);
  }
  return groups;
}

export interface SlotRequest {
  configName: string;
  maxRunners: number;
  /** How many jobs of this config want to launch now. */
  wanted: number;
}

/**
 * How many jobs of each config may launch now, so that neither the config's `maxRunners` nor the
 * total `maxRunnersTotal` is exceeded, counting the `active` jobs (launching, launched, running)
 * of each config. The total is shared in request order (the caller passes oldest groups first).
 */
export function allocateSlots(
  requests: SlotRequest[],
  active: ReadonlyMap<string, number>,
  maxRunnersTotal: number,
): Map<string, number> {
  let totalActive = 0;
  for (const n of active.values()) totalActive += n;
  let totalFree = Math.max(0, maxRunnersTotal - totalActive);
  const slots = new Map<string, number>();
  for (const { configName, maxRunners, wanted } of requests) {
    const configFree = Math.max(0, maxRunners - (active.get(configName) ?? 0));
    const granted = Math.min(wanted, configFree, totalFree);
    slots.set(configName, (slots.get(configName) ?? 0) + granted);
    totalFree -= granted;
  }
  return slots;
}

export interface ActiveClaim {
  jobId: string;
  configName: string;
  state: string;
  /** When the job was claimed (queued → launching). */
  launchingAt?: string;
}

/**
 * The active jobs the limits count: the byState index's, plus the claims in the launchers' register
 * (adapters/claims-register.ts registerClaims) that the index does not show yet. The index lags its
 * table; the register is read in the very write that adds this launcher's claims.
 */
export function withRecentClaims(indexed: ActiveClaim[], registered: ActiveClaim[]): ActiveClaim[] {
  const seen = new Set(indexed.map((job) => job.jobId));
  return [...indexed, ...registered.filter((claim) => !seen.has(claim.jobId))];
}

/**
 * After claiming, which of `mine` (this invocation's claims) must be given back so the limits
 * hold even when launchers race. Jobs already `launched`/`running` and every other launcher's
 * `launching` claims count first; then this invocation's claims, oldest first, stay while both
 * limits hold.
 *
 * Why the others go first rather than a shared ranking by claim time: a claim's time is taken before
 * its write, so launcher B can see launcher A's claims as older than its own although A checked the
 * limits before B's claims were visible. Ranked by time, B would keep its own "older" claims and A
 * would already have kept its own: over the limit. With the others first, whoever sees both gives
 * way; when both see both, both may give some back (those jobs wait a little; the limit holds).
 */
export function claimsOverLimits(
  active: ActiveClaim[],
  mine: ReadonlySet<string>,
  maxRunnersOf: (configName: string) => number,
  maxRunnersTotal: number,
): Set<string> {
  const counted = new Map<string, number>();
  let total = 0;
  const myClaims: ActiveClaim[] = [];
  for (const job of active) {
    if (job.state === "launching" && mine.has(job.jobId)) myClaims.push(job);
    else {
      counted.set(job.configName, (counted.get(job.configName) ?? 0) + 1);
      total++;
    }
  }
  myClaims.sort(
    (a, b) => (a.launchingAt ?? "").localeCompare(b.launchingAt ?? "") || a.jobId.localeCompare(b.jobId),
  );
  const giveBack = new Set<string>();
  for (const job of myClaims) {
    const n = counted.get(job.configName) ?? 0;
    if (n >= maxRunnersOf(job.configName) || total >= maxRunnersTotal) {
      giveBack.add(job.jobId);
      continue;
    }
    counted.set(job.configName, n + 1);
    total++;
  }
  return giveBack;
}

// ---------------------------------------------------------------------------------------------
// The fleet request

/** What decides a config's market. */
type SpotRules = Pick<LabelConfig, "spotPolicy" | "spotFailuresBeforeOnDemand">;

/** spotPreferred: after this many spot failures, a job goes to on-demand. */
function spotGivenUp(config: SpotRules, spotFailures: number): boolean {
  return config.spotPolicy === "spotPreferred" && spotFailures >= config.spotFailuresBeforeOnDemand;
}

/** The market a job's next launch asks for, before anything failed in this invocation. */
export function initialMarket(config: SpotRules, spotFailures = 0): Market {
  if (config.spotPolicy === "onDemandOnly" || spotGivenUp(config, spotFailures)) return "on-demand";
  return "spot";
}

/**
 * Idempotency token of one CreateFleet: the same jobs at the same attempt on the same market give
 * the same token, so an SDK retry of a request whose answer was lost returns the first fleet
 * instead of launching a second one. A new attempt (after a release) gets a new token.
 */
export function clientTokenFor(jobs: { jobId: string; attempts?: number }[], market: Market): string {
  const key = jobs
    .map((job) => `${job.jobId}@${job.attempts ?? 0}`)
    .sort()
    .join(",");
  // ClientToken: at most 64 ASCII characters.
  return createHash("sha256").update(`${market}|${key}`).digest("hex");
}

export interface FleetRequestInput {
  config: LabelConfig;
  subnetIds: string[];
  market: Market;
  count: number;
  clientToken: string;
  stackName: string;
}

/**
 * One `instant` CreateFleet for `count` runners of a config: every instance type × every subnet as
 * overrides, so EC2 picks the deepest spot pool (capacity-optimized) or the cheapest on-demand one.
 * Tags name the stack, the config and the market (see TAGS for why not the job). Volume tags belong in the launch
 * template (an instant fleet tags only `fleet` and `instance`).
 */
export function buildFleetRequest(input: FleetRequestInput): CreateFleetCommandInput {
  const { config, subnetIds, market, count } = input;
  if (subnetIds.length === 0) throw new Error("no runner subnets configured (SUBNET_IDS)");
  if (config.instanceTypes.length === 0) throw new Error(`label config ${config.name} has no instance types`);
  const overrides = config.instanceTypes.flatMap((instanceType) =>
    subnetIds.map((subnetId) => ({ InstanceType: instanceType as never, SubnetId: subnetId })),
  );
  const tags = [
    { Key: TAGS.stack, Value: input.stackName },
    { Key: TAGS.config, Value: config.name },
    { Key: TAGS.market, Value: market },
  ];
  return {
    Type: "instant",
    ClientToken: input.clientToken,
    LaunchTemplateConfigs: [
      {
        LaunchTemplateSpecification: {
          LaunchTemplateId: config.launchTemplateId,
          Version: LAUNCH_TEMPLATE_VERSION,
        },
        Overrides: overrides,
      },
    ],
    TargetCapacitySpecification: {
      TotalTargetCapacity: count,
      DefaultTargetCapacityType: market,
      ...(market === "spot" ? { SpotTargetCapacity: count } : { OnDemandTargetCapacity: count }),
    },
    ...(market === "spot"
      ? { SpotOptions: { AllocationStrategy: config.allocationStrategy ?? "capacity-optimized" } }
      : { OnDemandOptions: { AllocationStrategy: "lowest-price" } }),
    TagSpecifications: [
      { ResourceType: "instance", Tags: tags },
      { ResourceType: "fleet", Tags: tags },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// The fleet result

export interface LaunchedInstance {
  instanceId: string;
  instanceType?: string;
  subnetId?: string;
  availabilityZone?: string;
  market: Market;
}

export interface FleetError {
  code: string;
  message?: string;
  instanceType?: string;
  subnetId?: string;
}

export interface FleetResult {
  instances: LaunchedInstance[];
  errors: FleetError[];
}

/** Flattens an instant fleet's answer: one entry per instance, and the per-override errors. */
export function readFleetResult(output: Pick<CreateFleetCommandOutput, "Instances" | "Errors">): FleetResult {
  const instances: LaunchedInstance[] = [];
  for (const group of output.Instances ?? []) {
    const overrides = group.LaunchTemplateAndOverrides?.Overrides;
    for (const instanceId of group.InstanceIds ?? []) {
      instances.push({
        instanceId,
        instanceType: group.InstanceType ?? overrides?.InstanceType,
        subnetId: overrides?.SubnetId,
        availabilityZone: overrides?.AvailabilityZone,
        market: group.Lifecycle === "on-demand" ? "on-demand" : "spot",
      });
    }
  }
  const errors: FleetError[] = (output.Errors ?? []).map((error) => ({
    code: error.ErrorCode ?? "Unknown",
    message: error.ErrorMessage,
    instanceType: error.LaunchTemplateAndOverrides?.Overrides?.InstanceType,
    subnetId: error.LaunchTemplateAndOverrides?.Overrides?.SubnetId,
  }));
  return { instances, errors };
}

/**
 * Pairs jobs with instances in order (the caller sorts jobs oldest first, so the oldest get
 * capacity first). Jobs beyond the instances are `unserved`.
 */
export function assignInstances<J>(
  jobs: J[],
  instances: LaunchedInstance[],
): { assigned: { job: J; instance: LaunchedInstance }[]; unserved: J[]; surplus: LaunchedInstance[] } {
  const n = Math.min(jobs.length, instances.length);
  return {
    assigned: jobs.slice(0, n).map((job, i) => ({ job, instance: instances[i] as LaunchedInstance })),
    unserved: jobs.slice(n),
    surplus: instances.slice(n),
  };
}

// ---------------------------------------------------------------------------------------------
// Failure classification and the spot fallback

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

/** Whether a job queued at `queuedAt` has waited past the queue timeout at `now`. */
export function queueTimedOut(queuedAt: string, now: Date, queueTimeoutMinutes: number): boolean {
  return now.getTime() - Date.parse(queuedAt) > queueTimeoutMinutes * 60_000;
}
