/**
 * Serving an AWS JSON-RPC protocol (awsJson1_0 / awsJson1_1: POST /, `X-Amz-Target: Service.Operation`,
 * JSON body), with the sandbox's fault rules and call record in front of every operation.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { FaultError, Faults, ServiceName } from "./faults";
import { ApiError, readBody, send } from "./http";

// biome-ignore lint/suspicious/noExplicitAny: operation inputs are the wire JSON, validated by each operation.
export type JsonOperation = (params: any) => unknown | Promise<unknown>;

export interface JsonRpcService {
  service: ServiceName;
  /** `AmazonSQS`, `AmazonSSM`: the part of X-Amz-Target before the dot. */
  targetPrefix: string;
  contentType: "application/x-amz-json-1.0" | "application/x-amz-json-1.1";
  faults: Faults;
  operations: Record<string, JsonOperation>;
  throttleError: FaultError;
  /** Statuses of injected error codes that carry none (others: 400). */
  statuses: Record<string, number>;
  /** The error body (with `__type`) and headers the SDK expects for this service. */
  renderError(error: ApiError): { body: Record<string, unknown>; headers?: Record<string, string> };
  isMutating(operation: string): boolean;
  /** Codes an operation may report per entry (batch operations) instead of failing the call. */
  inlineCodes?(operation: string): ReadonlySet<string> | undefined;
}

export function jsonRpcHandler(spec: JsonRpcService) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const raw = (await readBody(req)).toString("utf8");
    const target = String(req.headers["x-amz-target"] ?? "");
    const [prefix, operation = ""] = target.split(".");
    let params: unknown = {};
    const answer = (status: number, body: unknown, errorCode?: string, headers?: Record<string, string>) => {
      spec.faults.record({ service: spec.service, operation, params, status, errorCode });
      send(res, status, JSON.stringify(body), { "content-type": spec.contentType, ...headers });
    };
    const answerError = (error: ApiError, extraHeaders?: Record<string, string>) => {
      const { body, headers } = spec.renderError(error);
      answer(error.status, body, error.code, { ...headers, ...extraHeaders });
    };
    try {
      params = raw ? JSON.parse(raw) : {};
    } catch {
      return answerError(new ApiError("SerializationException", "Malformed JSON body"));
    }
    const run = spec.operations[operation];
    if (prefix !== spec.targetPrefix || !run) {
      return answerError(new ApiError("UnknownOperationException", `Unknown operation ${target}`));
    }
    const fault = await spec.faults.intercept(
      { service: spec.service, operation, params },
      {
        mutating: spec.isMutating(operation),
        throttleError: spec.throttleError,
        inlineCodes: spec.inlineCodes?.(operation),
      },
    );
    if (fault) return answerError(ApiError.fromFault(fault, spec.statuses), fault.headers);
    try {
      answer(200, (await run(params)) ?? {});
    } catch (error) {
      if (error instanceof ApiError) return answerError(error);
      throw error;
    }
  };
}

/** Throws the service's validation error unless `condition` holds. */
export function check(condition: unknown, message: string, code = "ValidationException"): asserts condition {
  if (!condition) throw new ApiError(code, message);
}
