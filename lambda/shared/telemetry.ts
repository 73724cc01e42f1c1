/**
 * Structured JSON logs and EMF metrics (Powertools for AWS Lambda), one logger and one metrics
 * object per process. Log only ids and decisions: never a request body, a token, a JIT config or a
 * secret.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";

export const METRICS_NAMESPACE = "RunnerFleet";

export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? "runner-fleet" });

export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? METRICS_NAMESPACE,
  serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? "runner-fleet",
});

export { MetricUnit };
