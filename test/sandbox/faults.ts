/**
 * Per-test controls shared by every sandbox fake (AWS and GitHub): injected latency, failures and
 * token-bucket throttling, and a record of every call. A fake asks `intercept()` before serving a
 * request and `record()`s the outcome; tests configure rules and read `calls`.
 */
import { type Clock, sleep } from "./http";

export type ServiceName = "dynamodb" | "sqs" | "ec2" | "ssm" | "github" | (string & {});

/** What a rule's `when` sees: the operation and its parsed parameters (service-specific shape). */
export interface FaultRequest {
  service: ServiceName;
  operation: string;
  params: unknown;
  /**
   * Set when a fake asks about one part of a request that can fail on its own, e.g. one
   * launch template override of an EC2 CreateFleet: `{ instanceType, subnetId, availabilityZone,
   * lifecycle }`.
   */
  part?: Record<string, unknown>;
}

export interface FaultError {
  /** The error code the SDK (or Octokit) sees, e.g. `RequestLimitExceeded`, `InternalError`. */
  code: string;
  message?: string;
  /** HTTP status; each fake has defaults for the codes it knows (else 400). */
  status?: number;
  /**
   * For operations that report some failures in their answer rather than as an HTTP error (EC2
   * CreateFleet's errorSet): force (true) or prevent (false) that. By default the fake decides
   * from the code (capacity errors are inline).
   */
  inline?: boolean;
  /** Extra response headers (e.g. GitHub's `retry-after`). */
  headers?: Record<string, string>;
}

export interface FailOptions {
  /** Fail this many matching requests, then stop (default: every one). */
  times?: number;
  /** Fail only requests for which this returns true. */
  when?(request: FaultRequest): boolean;
}

export interface ThrottleOptions {
  /** Bucket size: calls allowed in a burst. */
  burst: number;
  /** Refill rate, tokens per second. */
  perSecond: number;
  /** The error to answer with; default: the service's own throttling error. */
  error?: FaultError;
}

/** EC2's documented request-rate buckets (per account and region). */
export const EC2_THROTTLE = {
  mutating: { burst: 50, perSecond: 5 },
  nonMutating: { burst: 100, perSecond: 20 },
} as const;

export interface CallRecord {
  service: ServiceName;
  operation: string;
  params: unknown;
  status: number;
  errorCode?: string;
  /** Sandbox clock, epoch ms. */
  at: number;
}

/** What a fake tells `intercept()` about the request it is serving. */
export interface InterceptOptions {
  /** Counts against `throttle(service, "mutating")` buckets. */
  mutating: boolean;
  /** The service's throttling error (EC2: RequestLimitExceeded, 503). */
  throttleError: FaultError;
  /** Codes this operation reports inline (not as an HTTP error); rules with them are left to `inlineFailures`. */
  inlineCodes?: ReadonlySet<string>;
}

interface FailRule {
  service: ServiceName;
  operation: string;
  error: FaultError;
  remaining: number;
  when?: (request: FaultRequest) => boolean;
}

interface Bucket {
  service: ServiceName;
  operation: string;
  burst: number;
  perSecond: number;
  tokens: number;
  updatedAt: number;
  error?: FaultError;
}

function matches(ruleOp: string, operation: string, mutating: boolean): boolean {
  return ruleOp === "*" || ruleOp === operation || (ruleOp === "mutating" && mutating);
}

/** Token-bucket refill: `rate` tokens per `periodMs` since `updatedAt`, up to `burst`; then `updatedAt = now`. */
export function refill(
  bucket: { burst: number; tokens: number; updatedAt: number },
  now: number,
  rate: number,
  periodMs: number,
): void {
  bucket.tokens = Math.min(bucket.burst, bucket.tokens + ((now - bucket.updatedAt) / periodMs) * rate);
  bucket.updatedAt = now;
}

export class Faults {
  readonly calls: CallRecord[] = [];
  private latencies: { service: ServiceName; operation: string; ms: number }[] = [];
  private failures: FailRule[] = [];
  private buckets: Bucket[] = [];

  constructor(private readonly clock: Clock) {}

  /** Delays every matching request by `ms` before it is served. `operation` may be "*". */
  latency(service: ServiceName, operation: string, ms: number): this {
    this.latencies.push({ service, operation, ms });
    return this;
  }

  /** Fails matching requests with `error` (a code, or a full error). `operation` may be "*". */
  fail(service: ServiceName, operation: string, error: string | FaultError, options: FailOptions = {}): this {
    this.failures.push({
      service,
      operation,
      error: typeof error === "string" ? { code: error } : error,
      remaining: options.times ?? Number.POSITIVE_INFINITY,
      when: options.when,
    });
    return this;
  }

  /**
   * A token bucket in front of matching requests (`operation`: a name, "mutating" or "*"); a request
   * finding it empty gets the service's throttling error. Buckets start full.
   */
  throttle(service: ServiceName, operation: string, options: ThrottleOptions): this {
    this.buckets.push({
      service,
      operation,
      burst: options.burst,
      perSecond: options.perSecond,
      tokens: options.burst,
      updatedAt: this.clock.now(),
      error: options.error,
    });
    return this;
  }

  /** Removes every latency, failure and throttling rule (the call record stays; see `clearCalls`). */
  clear(): void {
    this.latencies = [];
    this.failures = [];
    this.buckets = [];
  }

  clearCalls(): void {
    this.calls.length = 0;
  }

  callsTo(service: ServiceName, operation?: string): CallRecord[] {
    return this.calls.filter(
      (c) => c.service === service && (operation === undefined || c.operation === operation),
    );
  }

  // ---- used by the fakes ----

  /**
   * Applies latency, then throttling, then failure rules to a request. Returns the error to answer
   * with, or undefined to serve it.
   */
  async intercept(request: FaultRequest, options: InterceptOptions): Promise<FaultError | undefined> {
    const { service, operation } = request;
    let delay = 0;
    for (const rule of this.latencies) {
      if (rule.service === service && matches(rule.operation, operation, options.mutating)) delay += rule.ms;
    }
    if (delay > 0) await sleep(delay);

    const now = this.clock.now();
    const applicable = this.buckets.filter(
      (b) => b.service === service && matches(b.operation, operation, options.mutating),
    );
    for (const bucket of applicable) refill(bucket, now, bucket.perSecond, 1000);
    const empty = applicable.find((b) => b.tokens < 1);
    if (empty) return empty.error ?? options.throttleError;
    for (const bucket of applicable) bucket.tokens -= 1;

    for (const rule of this.failures) {
      if (rule.remaining <= 0 || rule.service !== service) continue;
      if (!matches(rule.operation, operation, options.mutating)) continue;
      if (this.isInline(rule.error, options.inlineCodes)) continue;
      if (rule.when && !rule.when(request)) continue;
      rule.remaining--;
      return rule.error;
    }
    return undefined;
  }

  /**
   * For operations that fail part by part (CreateFleet overrides, SQS batch entries): returns a
   * function giving the inline error, if any, of each part the fake tries. A rule that fires for
   * parts of one request counts once against its `times`, and fires for every matching part of it.
   */
  inlineFailures(
    request: Omit<FaultRequest, "part">,
    inlineCodes: ReadonlySet<string>,
  ): (part: Record<string, unknown>) => FaultError | undefined {
    const fired = new Set<FailRule>();
    return (part) => {
      for (const rule of this.failures) {
        if (rule.service !== request.service) continue;
        if (rule.remaining <= 0 && !fired.has(rule)) continue;
        if (!matches(rule.operation, request.operation, false)) continue;
        if (!this.isInline(rule.error, inlineCodes)) continue;
        if (rule.when && !rule.when({ ...request, part })) continue;
        if (!fired.has(rule)) {
          fired.add(rule);
          rule.remaining--;
        }
        return rule.error;
      }
      return undefined;
    };
  }

  record(call: Omit<CallRecord, "at">): void {
    this.calls.push({ ...call, at: this.clock.now() });
  }

  /** Only operations that report failures inline (they pass inlineCodes) can take an inline error. */
  private isInline(error: FaultError, inlineCodes?: ReadonlySet<string>): boolean {
    if (!inlineCodes) return false;
    return error.inline ?? inlineCodes.has(error.code);
  }
}
