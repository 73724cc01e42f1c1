/**
 * How the stack's instances and runners are identified: the tags the fleet writes on instances,
 * the runner name an instance registers under, which runners and instances are the stack's, and
 * where a runner registers. Pure, and small enough for every bundle (the webhook's too).
 */

/**
 * Tag keys the fleet writes on instances (and the reconciler reads). No job id tag: one fleet
 * launches the instances of many jobs, GitHub may give a runner another job than the one it was
 * launched for, and tagging each instance afterwards would cost one throttled EC2 mutating call per
 * instance. The ledger (byInstance) and the runner name (`<stack>-<instance id>`) map instances to jobs.
 */
export const TAGS = {
  stack: "runner-fleet:stack",
  config: "runner-fleet:config",
  market: "runner-fleet:market",
  /** On a member of a config's stopped pool (value: the config): launched by the reconciler, no job yet. */
  poolMember: "runner-fleet:pool",
} as const;

/** States in which an instance still exists (and holds a network interface in the VPC). */
export const LIVE_INSTANCE_STATES = ["pending", "running", "shutting-down", "stopping", "stopped"];

/** Where runners register: an organization, or one repository. */
export type RunnerScope = { kind: "org"; org: string } | { kind: "repo"; owner: string; repo: string };

const runnerNamePrefix = (stackName: string) => `${stackName}-`;

/** Runner name of an instance: the stack prefix and the instance id (unique, and findable again). */
export function runnerNameFor(stackName: string, instanceId: string): string {
  return `${runnerNamePrefix(stackName)}${instanceId}`;
}

/** The instance id in a runner name of this stack (runnerNameFor), or undefined for any other runner. */
export function instanceIdFromRunnerName(stackName: string, runnerName: string): string | undefined {
  const prefix = runnerNamePrefix(stackName);
  if (!runnerName.startsWith(prefix)) return undefined;
  const rest = runnerName.slice(prefix.length);
  return /^i-[0-9a-f]{8,17}$/.test(rest) ? rest : undefined;
}

/** Whether a runner registration is one of this stack's (named `<stack>-<instance id>`). */
export function isStackRunner(runnerName: string, stackName: string): boolean {
  return instanceIdFromRunnerName(stackName, runnerName) !== undefined;
}
