/**
 * How long an EC2 instance takes between the states EC2 reports, and from `running` to the point
 * where its OS runs the user data: what the sandbox's EC2 fake (ec2.ts) applies on its clock. Tests
 * use `INSTANT_BOOT` (every transition at the next read); the benchmark uses `EC2_BOOT_MODEL`, whose
 * figures come from published measurements (docs/performance.md "Boot model" cites each and says
 * which are assumptions). A duration is a fixed number of milliseconds or a median and a 90th
 * percentile, drawn per instance from the log-normal distribution through both.
 */

export type Duration = number | { p50: number; p90: number };

export interface BootModel {
  /** RunInstances / CreateFleet accepted → `running`. */
  launchPendingMs: Duration;
  /** `running` → user data starts (kernel, systemd, cloud-init up to scripts-user), first boot from a new volume. */
  firstBootMs: Duration;
  /** StartInstances of a stopped instance accepted → `running`. */
  startPendingMs: Duration;
  /** `running` → user data again after a start: the OS boots again, the volume is already read once. */
  restartBootMs: Duration;
  /** StartInstances of a hibernated instance accepted → `running`. */
  resumePendingMs: Duration;
  /** `running` → the processes run again after hibernation (RAM restored from the root volume). */
  resumeMs: Duration;
  /** StopInstances → `stopped` (ACPI shutdown of the OS, then EC2 releases the host). */
  stoppingMs: Duration;
  /** StopInstances with Hibernate → `stopped` (the RAM written to the root volume first). */
  hibernatingMs: Duration;
  /** TerminateInstances → `terminated`. */
  shutdownMs: Duration;
}

export const INSTANT_BOOT: BootModel = {
  launchPendingMs: 0,
  firstBootMs: 0,
  startPendingMs: 0,
  restartBootMs: 0,
  resumePendingMs: 0,
  resumeMs: 0,
  stoppingMs: 0,
  hibernatingMs: 0,
  shutdownMs: 0,
};

/**
 * Ubuntu 24.04 on a current x64/arm64 xlarge type with a gp3 root volume restored from the AMI's
 * snapshot. Sources and assumptions: docs/performance.md "Boot model".
 */
export const EC2_BOOT_MODEL: BootModel = {
  // ec2-boot-bench (Percival, 2021): pending → running 4.9 s on c5.xlarge, polled finely.
  launchPendingMs: { p50: 5_000, p90: 8_000 },
  // Depot (2025), Ubuntu 24.04: systemd startup 1.8 s kernel + 7.0 s userspace; a first boot also
  // reads its blocks lazily from the snapshot (Depot, 2024) and runs cloud-init's per-instance modules.
  firstBootMs: { p50: 10_000, p90: 15_000 },
  // brevdev/ec2-coldboot-research (2026): a start's pending phase within 1.4 s of a launch's.
  startPendingMs: { p50: 5_000, p90: 8_000 },
  restartBootMs: { p50: 7_000, p90: 10_000 },
  // brevdev (2026): a hibernated instance's pending phase as long as a stopped one's; RAM restored in
  // about 0.6 s less than a boot to SSH.
  resumePendingMs: { p50: 5_000, p90: 8_000 },
  resumeMs: { p50: 2_500, p90: 4_000 },
  stoppingMs: { p50: 15_000, p90: 30_000 },
  hibernatingMs: { p50: 30_000, p90: 60_000 },
  shutdownMs: { p50: 15_000, p90: 30_000 },
};

/** z of the 90th percentile of the standard normal distribution. */
const Z90 = 1.2815515655446004;

/** One draw of `duration` (ms): log-normal through its median and 90th percentile. */
export function sampleMs(duration: Duration, random: () => number = Math.random): number {
  if (typeof duration === "number") return duration;
  const { p50, p90 } = duration;
  if (p50 <= 0 || p90 <= p50) return p50;
  const sigma = Math.log(p90 / p50) / Z90;
  // Box–Muller: two uniform draws in (0, 1] give one standard normal one.
  const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  return Math.round(p50 * Math.exp(sigma * z));
}

/** A seeded uniform generator in [0, 1) (mulberry32): the same draws on every run. */
export function seededRandom(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
