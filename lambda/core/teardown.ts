/**
 * What `pulumi destroy` must remove that the program never declared: the instances the launcher
 * started, the runners they registered, and the AMIs (and their snapshots) the image pipeline built.
 * Pure decisions over what the adapters list; the janitor Lambda (lambda/janitor/) applies them.
 * Which instances and runners are the stack's is core/stack-identity.ts.
 */
import type { RunnerScope } from "./stack-identity";

/** The janitor's invocation input (aws.lambda.Invocation `input`, non-secret). */
export interface CleanupRequest {
  stackName: string;
  scope: "org" | "repo";
  owner: string;
  /** Repo scope: the repositories runners registered in. */
  repositories: string[];
  /** SSM parameters Image Builder's distribution wrote (the current AMI ids). */
  amiParameterNames: string[];
}

export type LifecycleAction = "create" | "update" | "delete";

/**
 * An aws.lambda.Invocation with `lifecycleScope: "CRUD"` adds `tf: { action, prev_input }` to the
 * input. On delete the input is the last one applied.
 */
export function readInvocation(event: unknown): { action: LifecycleAction; request: CleanupRequest } {
  if (!event || typeof event !== "object") throw new Error("janitor: the event is not an object");
  const { tf, ...rest } = event as { tf?: { action?: string } } & Record<string, unknown>;
  const action = tf?.action ?? "create";
  if (action !== "create" && action !== "update" && action !== "delete")
    throw new Error(`janitor: unknown lifecycle action ${JSON.stringify(action)}`);
  const request = rest as unknown as CleanupRequest;
  if (typeof request.stackName !== "string" || request.stackName === "")
    throw new Error("janitor: the input has no stackName");
  return {
    action,
    request: {
      stackName: request.stackName,
      scope: request.scope === "repo" ? "repo" : "org",
      owner: String(request.owner ?? ""),
      repositories: Array.isArray(request.repositories) ? request.repositories.map(String) : [],
      amiParameterNames: Array.isArray(request.amiParameterNames)
        ? request.amiParameterNames.map(String)
        : [],
    },
  };
}

/** Where the stack's runners registered: the organization, or each repository. */
export function cleanupScopes(request: CleanupRequest): RunnerScope[] {
  if (request.scope === "org") return request.owner ? [{ kind: "org", org: request.owner }] : [];
  return request.repositories.map((repo) => ({ kind: "repo", owner: request.owner, repo }));
}

export interface ImageInfo {
  imageId: string;
  tags: Record<string, string>;
  snapshotIds: string[];
}

/**
 * The images to deregister (tagged with the stack) and the snapshots to delete afterwards: those
 * behind these images plus any snapshot tagged with the stack. Nothing untagged is touched.
 */
export function planImageCleanup(
  images: ImageInfo[],
  taggedSnapshotIds: string[],
  stackTag: { key: string; value: string },
): { imageIds: string[]; snapshotIds: string[] } {
  const ours = images.filter((image) => image.tags[stackTag.key] === stackTag.value);
  const snapshotIds = new Set([...ours.flatMap((image) => image.snapshotIds), ...taggedSnapshotIds]);
  return { imageIds: ours.map((image) => image.imageId), snapshotIds: [...snapshotIds] };
}

export interface CleanupReport {
  action: LifecycleAction;
  instancesTerminated: string[];
  runnersRemoved: string[];
  imagesDeregistered: string[];
  snapshotsDeleted: string[];
  parametersDeleted: string[];
  /** Parts that could not be done (e.g. GitHub unreachable): reported, not fatal. */
  warnings: string[];
}
