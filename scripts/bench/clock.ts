/**
 * A scaled clock for long scenarios: in a process that installs it, `Date`, `performance.now()`,
 * `setTimeout` and `setInterval` run `scale` times faster than the wall clock. Everything that waits
 * or measures in that process (the sandbox's modeled latencies and token buckets, SQS visibility
 * timeouts, Octokit's Retry-After waits and Bottleneck pacing, the launcher's own timers) keeps its
 * production numbers and simply passes faster, so figures read in model time stay comparable with
 * the real service limits. CPU work is not sped up: it costs `scale` times more model time, so a
 * scaled run can only look worse than reality, never better.
 */

let installed = 1;

export function installScaledClock(scale: number): void {
  if (scale === 1 || installed !== 1) return;
  installed = scale;
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  const origin = realNow();
  const now = () => Math.floor(origin + (realNow() - origin) * scale);
  globalThis.Date = new Proxy(RealDate, {
    construct(target, args, newTarget) {
      return args.length === 0
        ? Reflect.construct(target, [now()], newTarget)
        : Reflect.construct(target, args, newTarget);
    },
    apply() {
      return new RealDate(now()).toString();
    },
    get(target, property, receiver) {
      return property === "now" ? now : Reflect.get(target, property, receiver);
    },
  });

  const perfNow = performance.now.bind(performance);
  const perfOrigin = perfNow();
  performance.now = () => perfOrigin + (perfNow() - perfOrigin) * scale;

  const realSetTimeout = globalThis.setTimeout;
  const realSetInterval = globalThis.setInterval;
  globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) =>
    realSetTimeout(fn, (ms ?? 0) / scale, ...args)) as typeof setTimeout;
  globalThis.setInterval = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) =>
    realSetInterval(fn, (ms ?? 0) / scale, ...args)) as typeof setInterval;
}

/** The scale installed in this process (1: wall time). */
export function clockScale(): number {
  return installed;
}
