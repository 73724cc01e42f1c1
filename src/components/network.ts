/**
 * Where runners run: the stack's own VPC (public subnets in several AZs and no NAT gateway by
 * default, so nothing costs money while idle; runners get a public IP and accept no inbound traffic)
 * or an existing VPC and subnets. One egress-only security group for runners and image builds.
 */
import * as aws from "@pulumi/aws";
import * as awsx from "@pulumi/awsx";
import * as pulumi from "@pulumi/pulumi";
import type { StackContext } from "../config/stack-context";

export class Network extends pulumi.ComponentResource {
  readonly vpcId: pulumi.Output<string>;
  /** Subnets every fleet request may use. */
  readonly subnetIds: pulumi.Output<string[]>;
  /** Whether runners get a public IP (public subnets without NAT). */
  readonly assignPublicIp: boolean;
  readonly securityGroup: aws.ec2.SecurityGroup;

  constructor(name: string, args: { ctx: StackContext }, opts?: pulumi.ComponentResourceOptions) {
    super("runner-fleet:index:Network", name, {}, opts);
    const { network } = args.ctx.config;
    if (network.vpcId && network.subnetIds) {
      this.vpcId = pulumi.output(network.vpcId);
      this.subnetIds = pulumi.output(network.subnetIds);
      this.assignPublicIp = network.assignPublicIp ?? false;
    } else {
      const vpc = new awsx.ec2.Vpc(
        name,
        {
          cidrBlock: network.cidrBlock,
          numberOfAvailabilityZones: network.availabilityZones,
          enableDnsHostnames: true,
          subnetStrategy: "Auto",
          subnetSpecs: network.natGateway
            ? [
                { type: "Public", cidrMask: 22 },
                { type: "Private", cidrMask: 20 },
              ]
            : [{ type: "Public", cidrMask: 20 }],
          natGateways: { strategy: network.natGateway ? "Single" : "None" },
          tags: { Name: args.ctx.prefix },
        },
        { parent: this },
      );
      this.vpcId = vpc.vpcId;
      this.subnetIds = network.natGateway ? vpc.privateSubnetIds : vpc.publicSubnetIds;
      this.assignPublicIp = network.assignPublicIp ?? !network.natGateway;
    }
    this.securityGroup = new aws.ec2.SecurityGroup(
      `${name}-runners`,
      {
        vpcId: this.vpcId,
        description: "GitHub Actions runners: egress only, no inbound",
        // Managed as empty: a rule added by hand is removed on the next update.
        ingress: [],
        egress: [
          {
            protocol: "-1",
            fromPort: 0,
            toPort: 0,
            cidrBlocks: ["0.0.0.0/0"],
            ipv6CidrBlocks: ["::/0"],
            description: "all egress",
          },
        ],
        tags: { Name: `${args.ctx.prefix}-runners` },
      },
      { parent: this },
    );
    this.registerOutputs({ vpcId: this.vpcId, subnetIds: this.subnetIds });
  }
}
