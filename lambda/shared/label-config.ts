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
}

/** The part of a label config the webhook needs to route a job: passed in its environment. */
export interface LabelRoute {
  name: string;
  labels: string[];
}
