/**
 * Clean destroy: the janitor Lambda, invoked through an aws.lambda.Invocation with lifecycle scope
 * CRUD. On `pulumi destroy` the Invocation's delete runs the janitor (tf.action = "delete"), which
 * removes what the fleet created outside the program's state (instances, runners, AMIs, snapshots,
 * AMI parameters). Ordering does the rest: the Invocation depends on the VPC, subnets, security
 * group, roles, instance profile and launch templates, so it is deleted (runs) before them; and the
 * launcher's queue mapping and the schedules depend on the Invocation, so launches stop first.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { CleanupRequest } from "../../lambda/core/teardown";
import type { StackContext } from "../config/stack-context";
import { type LambdaDeployment, LambdaFunction } from "../packaging/lambda-function";

export class Cleanup extends pulumi.ComponentResource {
  readonly janitor: LambdaFunction;
  readonly invocation: aws.lambda.Invocation;

  constructor(
    name: string,
    args: LambdaDeployment & {
      ctx: StackContext;
      amiParameterNames: string[];
      /** Everything that must outlive the cleanup (deleted only after it ran). */
      runsBefore: pulumi.Resource[];
    },
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("runner-fleet:index:Cleanup", name, {}, opts);
    const { ctx } = args;
    this.janitor = new LambdaFunction(
      `${name}-janitor`,
      {
        ctx,
        name: "janitor",
        bundleDir: args.bundleDir,
        description: "on destroy: terminates the stack's instances, removes its runners, AMIs and snapshots",
        environment: args.environment,
        statements: args.statements,
        timeoutSeconds: 900,
      },
      { parent: this },
    );
    const request: CleanupRequest = {
      stackName: ctx.stack,
      scope: ctx.config.github.scope,
      owner: ctx.config.github.owner,
      repositories: ctx.config.github.repositories,
      amiParameterNames: args.amiParameterNames,
    };
    this.invocation = new aws.lambda.Invocation(
      `${name}-on-destroy`,
      {
        functionName: this.janitor.functionName,
        lifecycleScope: "CRUD",
        input: JSON.stringify(request),
      },
      { parent: this, dependsOn: [this.janitor, ...args.runsBefore] },
    );
    this.registerOutputs({});
  }
}
