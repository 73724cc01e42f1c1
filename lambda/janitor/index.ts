/**
 * The janitor: runs when `pulumi destroy` deletes its aws.lambda.Invocation (lifecycle scope CRUD,
 * action "delete"), before the VPC, security group, roles and launch templates go. It terminates
 * every instance tagged with the stack and waits until they are gone, removes the stack's runners
 * from GitHub, deregisters the pipeline's AMIs, deletes their snapshots and the AMI parameters.
 * Create and update do nothing. The decisions are core/teardown.ts; the runners' removal, which
 * needs a GitHub client per scope, is remove-stack-runners.ts.
 */
import type { Context } from "aws-lambda";
import { describeRunnerInstances, terminateInstances } from "../adapters/ec2";
import {
  deleteParameter,
  deleteSnapshot,
  deregisterImage,
  describeStackImages,
  describeStackSnapshotIds,
} from "../adapters/ec2-images";
import { LIVE_INSTANCE_STATES, TAGS } from "../core/stack-identity";
import { type CleanupReport, cleanupScopes, planImageCleanup, readInvocation } from "../core/teardown";
import { settings } from "../shared/settings";
import { logger } from "../shared/telemetry";
import { removeStackRunners } from "./remove-stack-runners";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll interval while waiting for instances to terminate (tests shorten it). */
export const timing = { pollMs: 5_000 };

export async function handler(event: unknown, context?: Context): Promise<CleanupReport> {
  const { action, request } = readInvocation(event);
  const report: CleanupReport = {
    action,
    instancesTerminated: [],
    runnersRemoved: [],
    imagesDeregistered: [],
    snapshotsDeleted: [],
    parametersDeleted: [],
    warnings: [],
  };
  if (action !== "delete") return report;
  const deadline = Date.now() + (context ? context.getRemainingTimeInMillis() - 20_000 : 600_000);
  const { stackName } = request;

  // 1. Instances: terminate, then wait until none holds a network interface in the VPC. One that
  // appears meanwhile (a reconciler run in flight refilling a pool, a launch just answered) goes too.
  let live = await describeRunnerInstances(stackName, LIVE_INSTANCE_STATES);
  for (;;) {
    const asked = new Set(report.instancesTerminated);
    const toTerminate = live
      .filter((i) => i.state !== "shutting-down" && !asked.has(i.instanceId))
      .map((i) => i.instanceId);
    if (toTerminate.length) await terminateInstances(toTerminate);
    report.instancesTerminated.push(...toTerminate);
    if (live.length === 0) break;
    if (Date.now() > deadline)
      throw new Error(`janitor: instances still not terminated: ${live.map((i) => i.instanceId).join(", ")}`);
    await sleep(timing.pollMs);
    live = await describeRunnerInstances(stackName, LIVE_INSTANCE_STATES);
  }

  // 2. Runners: best effort (a GitHub outage must not block the destroy; offline runners expire).
  // A stack destroyed before its App existed has none.
  const scopes = settings().githubAppState === "pending" ? [] : cleanupScopes(request);
  for (const scope of scopes) {
    try {
      report.runnersRemoved.push(...(await removeStackRunners(scope, stackName)));
    } catch (error) {
      const where = scope.kind === "org" ? scope.org : `${scope.owner}/${scope.repo}`;
      report.warnings.push(`runners of ${where} not removed: ${(error as Error).message}`);
    }
  }

  // 3. Images and snapshots, then the parameters that named them.
  const plan = planImageCleanup(
    await describeStackImages(stackName),
    await describeStackSnapshotIds(stackName),
    {
      key: TAGS.stack,
      value: stackName,
    },
  );
  for (const imageId of plan.imageIds) await deregisterImage(imageId);
  report.imagesDeregistered = plan.imageIds;
  for (const snapshotId of plan.snapshotIds) await deleteSnapshot(snapshotId);
  report.snapshotsDeleted = plan.snapshotIds;
  for (const name of request.amiParameterNames)
    if (await deleteParameter(name)) report.parametersDeleted.push(name);

  logger.info("cleaned up", { ...report });
  return report;
}
