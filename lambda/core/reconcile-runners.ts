/**
 * The reconciler's rule about the stack's runners on GitHub: an offline runner whose instance is gone
 * is deleted (an ephemeral runner that never ran its job stays registered otherwise). Pure.
 */
import { ALIVE, type FleetView, type GithubRunner, type ReconcileAction } from "./reconcile-model";
import { instanceIdFromRunnerName } from "./stack-identity";

/** Deletions of this stack's offline runners whose instance is gone; none unless EC2 was read. */
export function runnerActions(runners: GithubRunner[], view: FleetView): ReconcileAction[] {
  const { instances } = view;
  if (!instances) return [];
  const alive = new Set([...instances.values()].filter((i) => ALIVE.has(i.state)).map((i) => i.instanceId));
  const actions: ReconcileAction[] = [];
  for (const runner of runners) {
    const instanceId = instanceIdFromRunnerName(view.policy.stackName, runner.name);
    if (!instanceId || runner.status !== "offline" || runner.busy) continue;
    // A fresh instance may not be listed yet (DescribeInstances is eventually consistent): its job or
    // hand-off names it. A listed instance that is not alive is gone.
    if (alive.has(instanceId) || view.holder.has(instanceId)) continue;
    if (view.handoffs?.has(instanceId) && !instances.has(instanceId)) continue;
    actions.push({
      kind: "delete-runner",
      runnerId: runner.id,
      runnerName: runner.name,
      reason: `offline and its instance ${instanceId} is gone`,
    });
  }
  return actions;
}
