/**
 * The launcher: consumes the launch queue in batches (one CreateFleet per label config per batch)
 * and reports per-message failures, so one unlaunchable job never redelivers a whole batch.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { StackContext } from "../config/stack-context";
import { type LambdaDeployment, LambdaFunction } from "../packaging/lambda-function";
import { LAUNCHER_EVENT_SOURCE, LAUNCHER_TIMEOUT_SECONDS } from "./launcher-tuning";

export class Launcher extends pulumi.ComponentResource {
  readonly function: LambdaFunction;

  constructor(
    name: string,
    args: LambdaDeployment & {
      ctx: StackContext;
      launchQueue: aws.sqs.Queue;
      /** Resources the queue mapping waits for (and that, on destroy, outlive it): the cleanup. */
      afterCleanup: pulumi.Resource[];
    },
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("runner-fleet:index:Launcher", name, {}, opts);
    this.function = new LambdaFunction(
      name,
      {
        ctx: args.ctx,
        name: "launcher",
        bundleDir: args.bundleDir,
        description: "launches spot/on-demand fleets for queued jobs and hands off their JIT configs",
        environment: args.environment,
        statements: args.statements,
        timeoutSeconds: LAUNCHER_TIMEOUT_SECONDS,
        memoryMb: 512,
      },
      { parent: this },
    );
    new aws.lambda.EventSourceMapping(
      name,
      {
        eventSourceArn: args.launchQueue.arn,
        functionName: this.function.arn,
        batchSize: LAUNCHER_EVENT_SOURCE.batchSize,
        maximumBatchingWindowInSeconds: LAUNCHER_EVENT_SOURCE.windowSeconds,
        functionResponseTypes: ["ReportBatchItemFailures"],
        scalingConfig: { maximumConcurrency: LAUNCHER_EVENT_SOURCE.maxConcurrency },
      },
      { parent: this, dependsOn: args.afterCleanup },
    );
    this.registerOutputs({});
  }
}
