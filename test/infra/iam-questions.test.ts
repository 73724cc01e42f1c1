/**
 * The questions that matter, answered by evaluating the program's policies (iam-eval.ts) on requests
 * shaped like AWS's: each request carries the condition keys AWS sets for that action on that
 * resource. Every "no" is paired with the "yes" the fleet needs, so a policy that denies real
 * launches fails here as surely as one that allows too much.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { STACK_TAG } from "../../src/config/stack-context";
import { allowsAll, type Context, evaluate, type Statement } from "./iam-eval";
import { CONFIGURED_AMI, declaredRoles, runIamStack } from "./iam-policies";
import { ACCOUNT_ID, type ProgramRun, REGION } from "./mocks";

const ec2 = (resource: string) => `arn:aws:ec2:${REGION}:${ACCOUNT_ID}:${resource}`;
const image = (id: string) => `arn:aws:ec2:${REGION}::image/${id}`;
const stackTag = (stack: string | undefined): Context => ({ [`aws:ResourceTag/${STACK_TAG}`]: stack });
const CANONICAL = "099720109477";

let run: ProgramRun;
let policyOf: (role: string) => Statement[];
beforeAll(async () => {
  run = await runIamStack();
  const roles = declaredRoles(run);
  policyOf = (name) => roles.find((r) => r.name === name)!.statements;
}, 600_000);

const templates = () => run.ofType("aws:ec2/launchTemplate:LaunchTemplate").map((t) => String(t.state.arn));
const securityGroup = () => String(run.ofType("aws:ec2/securityGroup:SecurityGroup")[0]!.state.arn);
const runnerRole = () => String(run.named("aws:iam/role:Role", "runners").state.arn);

interface Launch {
  template?: string;
  image: { id: string; owner: string; stack?: string };
  subnet?: string;
  /** The image named in the fleet's overrides instead of the template's. */
  imageOverride?: boolean;
  /** Whose policy launches (default the launcher's), and on which market (default spot). */
  role?: "launcher" | "reconciler";
  market?: "spot" | "on-demand";
}

/**
 * An instant fleet launch as AWS authorizes it: CreateFleet on what the request names (template,
 * override subnet, the fleet and instances it tags), then RunInstances on every resource of the
 * launch, each with ec2:LaunchTemplate (except the spot request, which has no such key).
 */
function fleetLaunchAllowed(launch: Launch): boolean {
  const template = launch.template ?? templates()[0]!;
  const subnet = ec2(`subnet/${launch.subnet ?? "subnet-0aaaaaaaaaaaaaaa1"}`);
  const onCreate = { [`aws:RequestTag/${STACK_TAG}`]: "dev" };
  const imageResource = {
    arn: image(launch.image.id),
    context: { "ec2:Owner": launch.image.owner, ...stackTag(launch.image.stack) },
  };
  const fleet = [
    { arn: template },
    { arn: ec2("fleet/fleet-0123"), context: onCreate },
    { arn: ec2("instance/*"), context: onCreate },
    { arn: subnet },
    ...(launch.imageOverride ? [imageResource] : []),
  ];
  const fromTemplate = { "ec2:LaunchTemplate": template };
  const instance = [
    { arn: template, context: fromTemplate },
    { arn: ec2("instance/*"), context: { ...fromTemplate, ...onCreate } },
    { ...imageResource, context: { ...imageResource.context, ...fromTemplate } },
    { arn: subnet, context: fromTemplate },
    { arn: securityGroup(), context: fromTemplate },
    { arn: ec2("network-interface/*"), context: fromTemplate },
    { arn: ec2("volume/*"), context: fromTemplate },
    ...(launch.market === "on-demand" ? [] : [{ arn: ec2("spot-instances-request/*") }]),
  ];
  const policy = policyOf(launch.role ?? "launcher");
  return allowsAll(policy, "ec2:CreateFleet", fleet) && allowsAll(policy, "ec2:RunInstances", instance);
}

describe("the launcher launches", () => {
  const pipelineImage = { id: "ami-0pipeline000000001", owner: ACCOUNT_ID, stack: "dev" };

  it("the pipeline's AMI and a label config's own AMI, from the stack's templates", () => {
    expect(fleetLaunchAllowed({ image: pipelineImage })).toBe(true);
    expect(fleetLaunchAllowed({ image: pipelineImage, imageOverride: true })).toBe(true);
    for (const template of templates())
      expect(fleetLaunchAllowed({ template, image: pipelineImage })).toBe(true);
    expect(fleetLaunchAllowed({ image: { id: CONFIGURED_AMI, owner: CANONICAL } })).toBe(true);
  });

  it("no foreign AMI: another owner's, even tagged with the stack, nor an untagged one of the account", () => {
    for (const foreign of [
      { id: "ami-0foreign000000001", owner: CANONICAL },
      { id: "ami-0foreign000000002", owner: CANONICAL, stack: "dev" },
      { id: "ami-0untagged00000003", owner: ACCOUNT_ID },
      { id: "ami-0otherstack000004", owner: ACCOUNT_ID, stack: "prod" },
    ]) {
      expect(fleetLaunchAllowed({ image: foreign }), foreign.id).toBe(false);
      expect(fleetLaunchAllowed({ image: foreign, imageOverride: true }), foreign.id).toBe(false);
    }
  });

  it("from no template of another stack, nor without a template, nor outside the stack's subnets", () => {
    const other = ec2("launch-template/lt-0other00000000000");
    expect(fleetLaunchAllowed({ template: other, image: pipelineImage })).toBe(false);
    expect(fleetLaunchAllowed({ image: pipelineImage, subnet: "subnet-0ccccccccccccccc9" })).toBe(false);
    const withoutTemplate = [
      { arn: ec2("instance/*"), context: { [`aws:RequestTag/${STACK_TAG}`]: "dev" } },
      { arn: image(pipelineImage.id), context: { "ec2:Owner": ACCOUNT_ID, ...stackTag("dev") } },
      { arn: securityGroup() },
    ];
    expect(allowsAll(policyOf("launcher"), "ec2:RunInstances", withoutTemplate)).toBe(false);
  });

  it("only instances tagged with the stack, and tags only while creating", () => {
    const untagged = { arn: ec2("instance/*"), context: { "ec2:LaunchTemplate": templates()[0]! } };
    expect(allowsAll(policyOf("launcher"), "ec2:RunInstances", [untagged])).toBe(false);
    const tag = (context: Context) =>
      evaluate(policyOf("launcher"), { action: "ec2:CreateTags", resource: ec2("instance/i-0abc"), context });
    const stackTagged = { [`aws:RequestTag/${STACK_TAG}`]: "dev" };
    expect(tag({ "ec2:CreateAction": "RunInstances", ...stackTagged })).toBe("allow");
    expect(tag(stackTagged)).toBe("implicit-deny");
    expect(tag({ "ec2:CreateAction": "RunInstances", [`aws:RequestTag/${STACK_TAG}`]: "prod" })).toBe(
      "implicit-deny",
    );
  });

  it("passing only the runner role, and only to EC2", () => {
    const pass = (resource: string, service: string) =>
      evaluate(policyOf("launcher"), {
        action: "iam:PassRole",
        resource,
        context: { "iam:PassedToService": service },
      });
    expect(pass(runnerRole(), "ec2.amazonaws.com")).toBe("allow");
    expect(pass(runnerRole(), "lambda.amazonaws.com")).toBe("implicit-deny");
    expect(pass(`arn:aws:iam::${ACCOUNT_ID}:role/admin`, "ec2.amazonaws.com")).toBe("implicit-deny");
    const imageBuild = run.ofType("aws:iam/role:Role").find((r) => r.name === "image-build")!;
    expect(pass(String(imageBuild.state.arn), "ec2.amazonaws.com")).toBe("implicit-deny");
  });
});

describe("hand-off items are written", () => {
  it.each(["launcher", "reconciler"])(
    "by %s only under keys a runner instance reads: its role id and an instance id",
    (name) => {
      const put = (key: string) =>
        evaluate(policyOf(name), {
          action: "dynamodb:PutItem",
          resource: `arn:aws:dynamodb:${REGION}:${ACCOUNT_ID}:table/runner-fleet-dev-handoff`,
          context: { "dynamodb:LeadingKeys": [key] },
        });
      const roleId = String(run.named("aws:iam/role:Role", "runners").state.uniqueId);
      expect(put(`${roleId}:i-0abc`)).toBe("allow");
      expect(put("AROAOTHERROLE:i-0abc")).toBe("implicit-deny");
      expect(put(`${roleId}:anything`)).toBe("implicit-deny");
    },
  );
});

describe("instances are terminated", () => {
  it.each(["launcher", "reconciler", "ec2-events", "janitor"])(
    "by %s only when tagged with the stack",
    (name) => {
      const terminate = (stack?: string) =>
        evaluate(policyOf(name), {
          action: "ec2:TerminateInstances",
          resource: ec2("instance/i-0abc"),
          context: stackTag(stack),
        });
      expect(terminate("dev")).toBe("allow");
      expect(terminate(undefined)).toBe("implicit-deny");
      expect(terminate("prod")).toBe("implicit-deny");
    },
  );
});

describe("the janitor deletes snapshots", () => {
  const deleteSnapshot = (context: Context) =>
    evaluate(policyOf("janitor"), {
      action: "ec2:DeleteSnapshot",
      resource: `arn:aws:ec2:${REGION}::snapshot/snap-0abc`,
      context,
    });

  it("made by Image Builder or tagged with the stack", () => {
    expect(deleteSnapshot({ "aws:ResourceTag/CreatedBy": "EC2 Image Builder" })).toBe("allow");
    expect(deleteSnapshot(stackTag("dev"))).toBe("allow");
  });

  it("never an untagged one, nor another stack's", () => {
    expect(deleteSnapshot({})).toBe("implicit-deny");
    expect(deleteSnapshot(stackTag("prod"))).toBe("implicit-deny");
    expect(deleteSnapshot({ "aws:ResourceTag/CreatedBy": "someone" })).toBe("implicit-deny");
  });
});

describe("a runner instance", () => {
  const roleId = () => String(run.named("aws:iam/role:Role", "runners").state.uniqueId);
  const update = (own: string, item: string, attributes = ["jitConfig", "fetchedAt"]) =>
    evaluate(policyOf("runner instances"), {
      action: "dynamodb:UpdateItem",
      resource: `arn:aws:dynamodb:${REGION}:${ACCOUNT_ID}:table/runner-fleet-dev-handoff`,
      context: {
        "aws:userid": `${roleId()}:${own}`,
        "dynamodb:LeadingKeys": [`${roleId()}:${item}`],
        "dynamodb:Attributes": attributes,
        "dynamodb:ReturnValues": "UPDATED_OLD",
      },
    });

  it("takes its own hand-off item", () => {
    expect(update("i-0mine", "i-0mine")).toBe("allow");
  });

  it("cannot touch another instance's hand-off item, nor other attributes of its own", () => {
    expect(update("i-0mine", "i-0other")).toBe("implicit-deny");
    expect(update("i-0mine", "i-0mine", ["jitConfig", "state"])).toBe("implicit-deny");
    const read = evaluate(policyOf("runner instances"), {
      action: "dynamodb:GetItem",
      resource: `arn:aws:dynamodb:${REGION}:${ACCOUNT_ID}:table/runner-fleet-dev-handoff`,
      context: { "aws:userid": `${roleId()}:i-0mine`, "dynamodb:LeadingKeys": [`${roleId()}:i-0other`] },
    });
    expect(read).toBe("implicit-deny");
  });
});

describe("the launcher starts pool members", () => {
  const instance = (stack: string | undefined, pool: string | undefined): Context => ({
    ...stackTag(stack),
    "aws:ResourceTag/runner-fleet:pool": pool,
  });
  const start = (role: string, context: Context) =>
    evaluate(policyOf(role), { action: "ec2:StartInstances", resource: ec2("instance/i-0abc"), context });

  it("starts only instances tagged with the stack and a pool: never a stopped runner, never another stack's", () => {
    expect(start("launcher", instance("dev", "linux-x64"))).toBe("allow");
    expect(start("launcher", instance("dev", undefined))).toBe("implicit-deny");
    expect(start("launcher", instance("prod", "linux-x64"))).toBe("implicit-deny");
    expect(start("launcher", instance(undefined, "linux-x64"))).toBe("implicit-deny");
  });

  it("nobody else starts instances, and the launcher never stops one", () => {
    for (const role of ["webhook", "reconciler", "ec2-events", "janitor"]) {
      expect(start(role, instance("dev", "linux-x64")), role).toBe("implicit-deny");
    }
    const stop = evaluate(policyOf("launcher"), {
      action: "ec2:StopInstances",
      resource: ec2("instance/i-0abc"),
      context: instance("dev", "linux-x64"),
    });
    expect(stop).toBe("implicit-deny");
  });
});

describe("the reconciler tends the stopped pools", () => {
  const member = (stack: string | undefined, pool: string | undefined): Context => ({
    ...stackTag(stack),
    "aws:ResourceTag/runner-fleet:pool": pool,
  });

  it("launches on-demand members as the launcher launches, never spot", () => {
    const pipelineImage = { id: "ami-0pipeline000000001", owner: ACCOUNT_ID, stack: "dev" };
    expect(fleetLaunchAllowed({ image: pipelineImage, role: "reconciler", market: "on-demand" })).toBe(true);
    expect(fleetLaunchAllowed({ image: pipelineImage, role: "reconciler", market: "spot" })).toBe(false);
    const foreign = { id: "ami-0foreign000000001", owner: CANONICAL };
    expect(fleetLaunchAllowed({ image: foreign, role: "reconciler", market: "on-demand" })).toBe(false);
  });

  it("stops only instances tagged with the stack and a pool: never a runner, never another stack's", () => {
    const stop = (context: Context) =>
      evaluate(policyOf("reconciler"), {
        action: "ec2:StopInstances",
        resource: ec2("instance/i-0abc"),
        context,
      });
    expect(stop(member("dev", "linux-x64"))).toBe("allow");
    expect(stop(member("dev", undefined))).toBe("implicit-deny");
    expect(stop(member("prod", "linux-x64"))).toBe("implicit-deny");
    expect(stop(member(undefined, "linux-x64"))).toBe("implicit-deny");
  });
});
