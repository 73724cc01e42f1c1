/**
 * The EC2 events Lambda's count of a spot interruption towards its config's circuit breaker
 * (core/lifecycle.ts recordInterruption decides, adapters/reserved-items.ts keeps the count): while
 * it is open, a spotPreferred config launches on-demand (launcher/launch-market.ts).
 */
import { recordSpotInterruption } from "../adapters/reserved-items";
import type { BreakerPolicy } from "../core/lifecycle";
import { settings } from "../shared/settings";
import { logger, MetricUnit, metrics } from "../shared/telemetry";

export function breakerPolicy(): BreakerPolicy {
  const s = settings();
  return {
    threshold: s.spotBreakerInterruptions,
    windowSeconds: s.spotBreakerWindowMinutes * 60,
    cooldownSeconds: s.spotBreakerCooldownMinutes * 60,
  };
}

/**
 * Counts one interruption of a job of `configName` at `at`. Returns whether it opened the breaker;
 * undefined when nothing was counted (no job on the instance, or the breaker is off).
 */
export async function countSpotInterruption(
  configName: string | undefined,
  at: Date,
): Promise<boolean | undefined> {
  const policy = breakerPolicy();
  if (configName === undefined || policy.threshold <= 0) return undefined;
  const { opened } = await recordSpotInterruption(configName, at, policy);
  if (opened) {
    metrics.addMetric("SpotBreakerOpened", MetricUnit.Count, 1);
    logger.warn("spot circuit breaker opened", { configName, until: policy.cooldownSeconds });
  }
  return opened;
}
