/**
 * The clean-destroy janitor against the sandbox: on the Invocation's delete it removes exactly what
 * the stack's fleet created outside the program's state (instances, runners, AMIs, snapshots, AMI
 * parameters) and leaves everything else alone.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { tuneGitHub } from "../lambda/adapters/github-client";
import { TAGS } from "../lambda/core/stack-identity";
import { handler, timing } from "../lambda/janitor";
import { type Sandbox, startSandbox } from "./sandbox";
import { githubErrors } from "./sandbox/github";
import { quietLambdaLogs } from "./webhook-support";

const STACK = "dev";
const KEY_PARAM = "/runner-fleet/dev/github/app-private-key";
const AMI_PARAMS = ["/runner-fleet/dev/ami/x64", "/runner-fleet/dev/ami/arm64"];
let sandbox: Sandbox;
let restore: () => void;

quietLambdaLogs();

beforeAll(async () => {
  sandbox = await startSandbox({ region: "eu-west-1", ec2: { shutdownMs: 300 }, github: true });
  const github = sandbox.github!;
  restore = sandbox.useEnv({
    STACK_NAME: STACK,
    GITHUB_AUTH_MODE: "app",
    GITHUB_APP_ID: String(github.appId),
    GITHUB_PRIVATE_KEY_PARAM: KEY_PARAM,
    RUNNER_SCOPE: "org",
  });
  timing.pollMs = 50;
  tuneGitHub({ retryAfterBaseValue: 5 });
}, 60_000);

afterAll(async () => {
  restore?.();
  await sandbox?.close();
});

function seed() {
  const { ec2, ssm } = sandbox;
  const github = sandbox.github!;
  ssm.put(KEY_PARAM, github.privateKey, { type: "SecureString" });
  for (const name of AMI_PARAMS) ssm.put(name, "ami-0123456789abcdef0");
  ssm.put("/other/param", "keep");
  const stackTags = { [TAGS.stack]: STACK, [TAGS.config]: "linux-x64-large" };
  const ours = [
    ec2.addInstance({ tags: stackTags }),
    ec2.addInstance({ tags: stackTags, state: "pending" }),
    ec2.addInstance({ tags: stackTags, state: "stopped" }),
  ];
  const others = [ec2.addInstance({ tags: { [TAGS.stack]: "prod" } }), ec2.addInstance({ tags: {} })];
  const ourSnapshots = [ec2.addSnapshot(), ec2.addSnapshot()];
  const looseSnapshot = ec2.addSnapshot({ tags: { [TAGS.stack]: STACK } });
  const otherSnapshot = ec2.addSnapshot();
  const ourImages = [
    ec2.addImage({ tags: { [TAGS.stack]: STACK }, snapshotIds: [ourSnapshots[0]!] }),
    ec2.addImage({ tags: { [TAGS.stack]: STACK }, architecture: "arm64", snapshotIds: [ourSnapshots[1]!] }),
  ];
  const otherImage = ec2.addImage({ tags: { [TAGS.stack]: "prod" }, snapshotIds: [otherSnapshot] });
  const runner = (id: number, name: string) => {
    github.state.runners.set(id, {
      id,
      name,
      scope: { org: github.org },
      runnerGroupId: 1,
      labels: ["self-hosted"],
      os: "Linux",
      status: "online",
      busy: false,
      ephemeral: true,
      workFolder: "_work",
      encodedJitConfig: `jit-${id}`,
      createdAt: 0,
      deleted: false,
    });
  };
  runner(9001, `${STACK}-${ours[0]}`);
  runner(9002, `${STACK}-i-0abcdef0123456789`);
  runner(9003, `prod-${others[0]}`);
  runner(9004, "laptop-of-someone");
  runner(9005, `${STACK}-ci-box`);
  return { ours, others, ourImages, otherImage, ourSnapshots, looseSnapshot, otherSnapshot };
}

const request = (action: string) => ({
  stackName: STACK,
  scope: "org",
  owner: sandbox.github!.org,
  repositories: [],
  amiParameterNames: AMI_PARAMS,
  tf: { action, prev_input: null },
});

describe("janitor", () => {
  beforeEach(async () => {
    await sandbox.reset();
  });

  it("does nothing when the invocation is created or updated", async () => {
    const seeded = seed();
    const report = await handler(request("create"));
    expect(report.instancesTerminated).toEqual([]);
    expect(sandbox.calls.filter((c) => c.service === "ec2")).toEqual([]);
    expect(sandbox.ec2.instances().find((i) => i.instanceId === seeded.ours[0])?.state).toBe("running");
    expect((await handler(request("update"))).action).toBe("update");
  });

  it("on delete removes the stack's instances, runners, AMIs, snapshots and AMI parameters, nothing else", async () => {
    const s = seed();
    const report = await handler(request("delete"));

    const state = (id: string) => sandbox.ec2.instances().find((i) => i.instanceId === id)?.state;
    for (const id of s.ours) expect(state(id), id).toBe("terminated");
    for (const id of s.others) expect(state(id), id).toBe("running");
    expect(report.instancesTerminated.sort()).toEqual([...s.ours].sort());

    const images = sandbox.ec2.images().map((i) => i.imageId);
    expect(images).toEqual([s.otherImage]);
    const snapshots = sandbox.ec2.snapshots().map((x) => x.snapshotId);
    expect(snapshots).toEqual([s.otherSnapshot]);
    expect(report.snapshotsDeleted.sort()).toEqual([...s.ourSnapshots, s.looseSnapshot].sort());

    const runners = sandbox
      .github!.state.listRunners()
      .map((r) => r.name)
      .sort();
    expect(runners).toEqual([`${STACK}-ci-box`, "laptop-of-someone", `prod-${s.others[0]}`]);
    expect(report.runnersRemoved.sort()).toEqual(
      [`${STACK}-${s.ours[0]}`, `${STACK}-i-0abcdef0123456789`].sort(),
    );

    expect(sandbox.ssm.get(AMI_PARAMS[0]!)).toBeUndefined();
    expect(sandbox.ssm.get(AMI_PARAMS[1]!)).toBeUndefined();
    expect(sandbox.ssm.get("/other/param")).toBe("keep");
    expect(report.warnings).toEqual([]);
  });

  it("on delete terminates the stopped pools' members, stopped and warming alike", async () => {
    const { ec2 } = sandbox;
    const member = { [TAGS.stack]: STACK, [TAGS.config]: "linux-x64", [TAGS.poolMember]: "linux-x64" };
    const members = [
      ec2.addInstance({ tags: member, state: "stopped" }), // ready
      ec2.addInstance({ tags: member, state: "stopping" }), // its warm-up just ended
      ec2.addInstance({ tags: member }), // warming
      ec2.addInstance({ tags: member, state: "pending" }), // just launched by a refill
    ];
    const report = await handler(request("delete"));
    expect(report.instancesTerminated.sort()).toEqual([...members].sort());
    for (const id of members) expect(sandbox.ec2.instance(id)?.state, id).toBe("terminated");
  });

  it("also terminates a member a reconciler run in flight launched after the first listing", async () => {
    const member = { [TAGS.stack]: STACK, [TAGS.config]: "linux-x64", [TAGS.poolMember]: "linux-x64" };
    const first = sandbox.ec2.addInstance({ tags: member, state: "stopped" });
    let late: string | undefined;
    let describes = 0;
    sandbox.faults.fail(
      "ec2",
      "DescribeInstances",
      { code: "Unused", status: 500 },
      {
        when: () => {
          if (++describes === 2) late = sandbox.ec2.addInstance({ tags: member, state: "pending" });
          return false;
        },
      },
    );
    const report = await handler(request("delete"));
    sandbox.faults.clear();
    expect(late).toBeDefined();
    expect(report.instancesTerminated.sort()).toEqual([first, late!].sort());
    for (const id of [first, late!]) expect(sandbox.ec2.instance(id)?.state, id).toBe("terminated");
  });

  it("waits until the instances are terminated, so the VPC can go next", async () => {
    const s = seed();
    const started = Date.now();
    await handler(request("delete"));
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    const describes = sandbox.calls.filter((c) => c.service === "ec2" && c.operation === "DescribeInstances");
    expect(describes.length).toBeGreaterThan(1);
    for (const id of s.ours)
      expect(sandbox.ec2.instances().find((i) => i.instanceId === id)?.state).toBe("terminated");
  });

  it("runs again cleanly (a retried destroy), and reports GitHub trouble without failing the destroy", async () => {
    const s = seed();
    sandbox.faults.fail("github", "actions/list-self-hosted-runners-for-org", githubErrors.serverError(503));
    const report = await handler(request("delete"));
    expect(report.warnings).toEqual([expect.stringMatching(/^runners of acme not removed: /)]);
    expect(report.instancesTerminated.sort()).toEqual([...s.ours].sort());
    expect(sandbox.ec2.images().map((i) => i.imageId)).toEqual([s.otherImage]);

    sandbox.faults.clear();
    const again = await handler(request("delete"));
    expect(again.instancesTerminated).toEqual([]);
    expect(again.imagesDeregistered).toEqual([]);
    expect(again.runnersRemoved.sort()).toEqual(
      [`${STACK}-${s.ours[0]}`, `${STACK}-i-0abcdef0123456789`].sort(),
    );
    expect(again.warnings).toEqual([]);
  });
});
