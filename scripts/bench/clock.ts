/**
 * A scaled clock for long scenarios: in a thread that installs it, `Date`, `performance.now()`,
 * `setTimeout` and `setInterval` run `scale` times faster than the wall clock. Everything that waits
 * or measures there (the sandbox's modeled latencies and token buckets, SQS visibility timeouts,
 * Octokit's Retry-After waits and Bottleneck pacing, the launcher's own timers) keeps its production
 * numbers and simply passes faster, so figures read in model time compare with the real service
 * limits. CPU work is not sped up: it costs `scale` times more model time, so a scaled run can only
 * look worse than reality, never better.
 */

const state = { scale: 1, origin: 0 };

/**
 * `origin` (wall-clock epoch ms, default now) is where model time and wall time agree: the threads
 * of one scenario pass the same origin so that they share one model clock.
 */
export function installScaledClock(scale: number, origin = Date.now()): void {
  if (scale === 1 || state.scale !== 1) return;
  state.scale = scale;
  state.origin = origin;
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  const now = () => Math.floor(origin + (realNow() - origin) * scale);
  globalThis.Date = new Proxy(RealDate, {
    construct(target, args, newTarget) {
      return Reflect.construct(target, args.length === 0 ? [now()] : args, newTarget);
    },
    apply() {
      return new RealDate(now()).toString();
    },
    get(target, property, receiver) {
      return property === "now" ? now : Reflect.get(target, property, receiver);
    },
  });

  const perfNow = performance.now.bind(performance);
  const perfOrigin = origin - performance.timeOrigin;
  performance.now = () => perfOrigin + (perfNow() - perfOrigin) * scale;

  const realSetTimeout = globalThis.setTimeout;
  const realSetInterval = globalThis.setInterval;
  globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) =>
    realSetTimeout(fn, (ms ?? 0) / scale, ...args)) as typeof setTimeout;
  globalThis.setInterval = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) =>
    realSetInterval(fn, (ms ?? 0) / scale, ...args)) as typeof setInterval;
}

/** The clock of this thread: scale 1 is wall time. */
export function currentClock(): { scale: number; origin: number } {
  return { ...state };
}
