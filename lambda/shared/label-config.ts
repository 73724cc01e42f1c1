/**
 * A label config as the Lambdas see it at run time: the JSON value of one SSM parameter under
 * `Settings.labelConfigPath`, written by the Pulumi program from the stack config (src/config/schema.ts
 * validates the user-facing shape and derives this one).
 */

export type SpotPolicy = "spotOnly" | "spotPreferred" | "onDemandOnly";
export type AllocationStrategy = "capacity-optimized" | "price-capacity-optimized" | "lowest-price";
export type Arch = "x64" | "arm64";

export interface LabelConfig {
  /** Config name, e.g. `linux-x64-large`. */
  name: string;
  /** The label set a job's `runs-on` is matched against (see lambda/core/routing.ts). */
  labels: string[];
  arch: Arch;
  instanceTypes: string[];
  /** Launch template of this config (its id), created by the program. */
  launchTemplateId: string;
  /**
   * Its latest version (what a launch gets): a stopped pool member keeps the user data and settings
   * it was launched with, so a `pulumi up` that changes the template rotates the pool.
   */
  launchTemplateVersion?: number;
  spotPolicy: SpotPolicy;
  /** spotPreferred: spot failures for one job before its launch goes on-demand. */
  spotFailuresBeforeOnDemand: number;
  allocationStrategy: AllocationStrategy;
  /** Most instances of this config alive at once (launching, launched or running jobs). */
  maxRunners: number;
  /** Re-run a job once on on-demand capacity when a spot interruption failed it. */
  retryOnInterruption: boolean;
  /** GitHub runner group id the JIT runners join (org scope); 1 = Default. */
  runnerGroupId: number;
  /** Root volume size, GiB (what a stopped pool member costs while idle). The program always writes it. */
  diskSizeGb?: number;
  /**
   * Where the launch template's AMI comes from: a fixed id, or the SSM parameter the image pipeline
   * updates. The program always writes it; the pool's rotation compares members' AMIs with it.
   */
  image?: { amiId: string } | { parameter: string };
  /** The config's stopped pool; absent or size 0 outside any schedule = no pool. */
  pool?: PoolSpec;
}

/** A stopped pool's size: `size`, or `schedule.size` while the schedule's window is open. */
export interface PoolSpec {
  size: number;
  schedule?: PoolSchedule;
}

/** A weekly window in a time zone, e.g. Monday–Friday 08:00–19:00 Europe/Berlin. */
export interface PoolSchedule {
  /** IANA time zone, e.g. `Europe/Berlin`. */
  timeZone: string;
  /** Days the window opens, `mon` … `sun`. */
  days: Weekday[];
  /** `HH:MM`, local time; the window is [from, to). */
  from: string;
  to: string;
  size: number;
}

export type Weekday = "mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun";

/** The part of a label config the webhook needs to route a job: passed in its environment. */
export interface LabelRoute {
  name: string;
  labels: string[];
}
