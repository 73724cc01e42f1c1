// biome-ignore-all lint/suspicious/noExplicitAny: the YAML fixture is mutated freely, by path
/**
 * An existing VPC (private subnets behind the user's NAT) and given AMIs instead of the pipeline.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { type ProgramRun, runProgram } from "./mocks";
import { APP_SECRETS, devStackValues, PROJECT, withAppId, withSecrets } from "./stack-config";

const SUBNETS = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"];
let run: ProgramRun;
beforeAll(async () => {
  const values = withAppId(devStackValues()) as Record<string, any>;
  values[`${PROJECT}:network`] = { vpcId: "vpc-0123456789abcdef0", subnetIds: SUBNETS };
  values[`${PROJECT}:imagePipeline`] = { enabled: false };
  values[`${PROJECT}:labelConfigs`]["linux-x64-large"].amiId = "ami-0123456789abcdef0";
  values[`${PROJECT}:labelConfigs`]["linux-arm64-medium"].amiId = "ami-0fedcba9876543210";
  const { config, secretKeys } = withSecrets(values, APP_SECRETS);
  run = await runProgram(config, secretKeys);
}, 600_000);

describe("existing VPC, given AMIs", () => {
  it("creates no VPC and puts the security group in the given one", () => {
    expect(run.ofType("awsx:ec2:Vpc")).toEqual([]);
    const [sg] = run.ofType("aws:ec2/securityGroup:SecurityGroup");
    expect(sg!.inputs.vpcId).toBe("vpc-0123456789abcdef0");
    expect(sg!.inputs.ingress).toEqual([]);
  });

  it("launches into the given subnets without public IPs", () => {
    expect(run.fnNamed("launcher").inputs.environment.variables.SUBNET_IDS).toBe(SUBNETS.join(","));
    for (const t of run.ofType("aws:ec2/launchTemplate:LaunchTemplate"))
      expect(t.inputs.networkInterfaces[0].associatePublicIpAddress).toBe("false");
    const statements = run.statementsOfFunction("launcher");
    const subnetArns = SUBNETS.map((id) => `arn:aws:ec2:eu-west-1:123456789012:subnet/${id}`);
    for (const sid of ["FleetInStackSubnets", "RunInStackSubnets"])
      expect(statements.find((s) => s.Sid === sid).Resource).toEqual(subnetArns);
    // Only the given AMIs: no pipeline, so no AMI parameter and no owner-and-tag image statement.
    expect(statements.find((s) => s.Sid === "RunConfiguredImages").Resource).toEqual([
      "arn:aws:ec2:eu-west-1::image/ami-0123456789abcdef0",
      "arn:aws:ec2:eu-west-1::image/ami-0fedcba9876543210",
    ]);
    for (const sid of ["ResolveRunnerAmis", "FleetPipelineImages", "RunPipelineImages"])
      expect(
        statements.find((s) => s.Sid === sid),
        sid,
      ).toBeUndefined();
  });

  it("uses the given AMIs and builds no image", () => {
    const images = Object.fromEntries(
      run.ofType("aws:ec2/launchTemplate:LaunchTemplate").map((t) => [t.inputs.name, t.inputs.imageId]),
    );
    expect(images).toEqual({
      "runner-fleet-dev-linux-x64-large": "ami-0123456789abcdef0",
      "runner-fleet-dev-linux-arm64-medium": "ami-0fedcba9876543210",
    });
    expect(run.resources.filter((r) => r.type.startsWith("aws:imagebuilder"))).toEqual([]);
    expect(run.outputs.amiParameterNames).toEqual({});
  });
});
