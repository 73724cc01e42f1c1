/**
 * The launcher: consumes the launch queue in batches (one CreateFleet per label config per batch)
 * and reports per-message failures, so one unlaunchable job never redelivers a whole batch.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { StackContext } from "./context";
import type { PolicyStatement } from "./iam";

/** Launcher invocations at most at once (the SQS event source's maximum concurrency). */
export const LAUNCHER_MAX_CONCURRENCY = 5;

/** GitHub registers about 180 JIT runners a minute per App: each launcher paces itself to its share. */
export const GITHUB_JIT_PER_MINUTE_PER_APP = 180;

import { LambdaFunction } from "./lambda-function";
import { LAUNCHER_TIMEOUT_SECONDS } from "./ledger";

export class Launcher extends pulumi.ComponentResource {
  readonly function: LambdaFunction;

  constructor(
    name: string,
    args: {
      ctx: StackContext;
      bundleDir: string;
      environment: Record<string, pulumi.Input<string>>;
      statements: PolicyStatement[];
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
        batchSize: 10,
        // Collect a burst of queued jobs into one invocation: fewer, larger CreateFleet calls.
        maximumBatchingWindowInSeconds: 2,
        functionResponseTypes: ["ReportBatchItemFailures"],
        // EC2 mutating calls are throttled per account: a few launchers in parallel are plenty.
        scalingConfig: { maximumConcurrency: LAUNCHER_MAX_CONCURRENCY },
      },
      { parent: this, dependsOn: args.afterCleanup },
    );
    this.registerOutputs({});
  }
}
