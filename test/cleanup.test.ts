import { describe, expect, it } from "vitest";
import { isStackRunner } from "../lambda/core/stack-identity";
import { cleanupScopes, planImageCleanup, readInvocation } from "../lambda/core/teardown";

describe("cleanup decisions", () => {
  it("reads the Invocation's lifecycle action (create when Terraform adds none)", () => {
    const input = {
      stackName: "dev",
      scope: "repo",
      owner: "o",
      repositories: ["a"],
      amiParameterNames: ["/p"],
    };
    expect(readInvocation({ ...input, tf: { action: "delete", prev_input: null } })).toEqual({
      action: "delete",
      request: input,
    });
    expect(readInvocation(input).action).toBe("create");
    expect(() => readInvocation({ ...input, tf: { action: "destroy" } })).toThrow(
      /unknown lifecycle action "destroy"/,
    );
    expect(() => readInvocation({ tf: { action: "delete" } })).toThrow(/no stackName/);
  });

  it("knows the stack's runners only by their exact name shape", () => {
    expect(isStackRunner("dev-i-0123456789abcdef0", "dev")).toBe(true);
    expect(isStackRunner("dev-i-01234567", "dev")).toBe(true);
    expect(isStackRunner("dev-prod-i-0123456789abcdef0", "dev")).toBe(false);
    expect(isStackRunner("devel-i-0123456789abcdef0", "dev")).toBe(false);
    expect(isStackRunner("dev-ci-box", "dev")).toBe(false);
  });

  it("cleans each repository in repo scope, the organization in org scope", () => {
    const base = { stackName: "dev", owner: "acme", amiParameterNames: [] };
    expect(cleanupScopes({ ...base, scope: "org", repositories: [] })).toEqual([
      { kind: "org", org: "acme" },
    ]);
    expect(cleanupScopes({ ...base, scope: "repo", repositories: ["a", "b"] })).toEqual([
      { kind: "repo", owner: "acme", repo: "a" },
      { kind: "repo", owner: "acme", repo: "b" },
    ]);
  });

  it("deregisters only tagged images and deletes their snapshots plus tagged ones", () => {
    const tag = { key: "runner-fleet:stack", value: "dev" };
    const plan = planImageCleanup(
      [
        { imageId: "ami-1", tags: { "runner-fleet:stack": "dev" }, snapshotIds: ["snap-1"] },
        { imageId: "ami-2", tags: { "runner-fleet:stack": "prod" }, snapshotIds: ["snap-2"] },
        { imageId: "ami-3", tags: {}, snapshotIds: ["snap-3"] },
      ],
      ["snap-4", "snap-1"],
      tag,
    );
    expect(plan).toEqual({ imageIds: ["ami-1"], snapshotIds: ["snap-1", "snap-4"] });
  });
});
