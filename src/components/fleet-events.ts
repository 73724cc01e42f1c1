/**
 * What happens to instances and jobs besides launches: EventBridge sends EC2 spot interruption
 * warnings and instance state changes to the ec2-events Lambda, and a one-minute schedule runs the
 * reconciler (retries, timeouts, idle/over-age/orphan instances, failed webhook deliveries).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { StackContext } from "../config/stack-context";
import { type LambdaDeployment, LambdaFunction } from "../packaging/lambda-function";

export class FleetEvents extends pulumi.ComponentResource {
  readonly ec2Events: LambdaFunction;
  readonly reconciler: LambdaFunction;

  constructor(
    name: string,
    args: {
      ctx: StackContext;
      ec2Events: LambdaDeployment;
      reconciler: LambdaDeployment;
      /** What the event targets wait for (and that, on destroy, outlives them): the cleanup. */
      afterCleanup: pulumi.Resource[];
    },
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("runner-fleet:index:FleetEvents", name, {}, opts);
    const { ctx } = args;
    this.ec2Events = new LambdaFunction(
      `${name}-ec2-events`,
      {
        ctx,
        name: "ec2-events",
        description: "records spot interruptions and instance state changes in the job ledger",
        ...args.ec2Events,
        timeoutSeconds: 30,
      },
      { parent: this },
    );
    this.reconciler = new LambdaFunction(
      `${name}-reconciler`,
      {
        ctx,
        name: "reconciler",
        description: "retries, times out and reaps jobs and instances; redelivers failed webhooks",
        ...args.reconciler,
        timeoutSeconds: 55,
        memoryMb: 512,
        // One pass at a time: a slow pass must not overlap the next minute's.
        reservedConcurrency: 1,
      },
      { parent: this },
    );
    const target = (id: string, rule: aws.cloudwatch.EventRule, fn: LambdaFunction) => {
      new aws.cloudwatch.EventTarget(
        id,
        { rule: rule.name, arn: fn.arn },
        { parent: this, dependsOn: args.afterCleanup },
      );
      new aws.lambda.Permission(
        id,
        {
          action: "lambda:InvokeFunction",
          function: fn.functionName,
          principal: "events.amazonaws.com",
          sourceArn: rule.arn,
        },
        { parent: this },
      );
    };
    const interruption = new aws.cloudwatch.EventRule(
      `${name}-spot-interruption`,
      {
        name: `${ctx.prefix}-spot-interruption`,
        description: "EC2 Spot Instance Interruption Warning",
        eventPattern: JSON.stringify({
          source: ["aws.ec2"],
          "detail-type": ["EC2 Spot Instance Interruption Warning"],
        }),
      },
      { parent: this },
    );
    target(`${name}-spot-interruption`, interruption, this.ec2Events);
    const stateChange = new aws.cloudwatch.EventRule(
      `${name}-state-change`,
      {
        name: `${ctx.prefix}-instance-state`,
        description: "EC2 Instance State-change Notification (running, shutting-down, terminated)",
        eventPattern: JSON.stringify({
          source: ["aws.ec2"],
          "detail-type": ["EC2 Instance State-change Notification"],
          detail: { state: ["running", "shutting-down", "terminated", "stopped"] },
        }),
      },
      { parent: this },
    );
    target(`${name}-state-change`, stateChange, this.ec2Events);
    const schedule = new aws.cloudwatch.EventRule(
      `${name}-reconcile`,
      {
        name: `${ctx.prefix}-reconcile`,
        description: "Runs the reconciler",
        scheduleExpression: "rate(1 minute)",
      },
      { parent: this },
    );
    target(`${name}-reconcile`, schedule, this.reconciler);
    this.registerOutputs({});
  }
}
