/**
 * One Lambda as the fleet deploys every function: the esbuild bundle (nodejs22.x, arm64), its own
 * role with exactly the given statements, an explicit log group with retention (so logs neither live
 * forever nor outlive `pulumi destroy`), and settings as environment variables (never a secret: the
 * secrets are SSM SecureString parameters whose names are settings).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { METRICS_NAMESPACE } from "../../lambda/shared/telemetry";
import type { StackContext } from "../config/stack-context";
import type { LambdaName } from "./bundles";
import { assumedBy, type PolicyStatement, policyDocument } from "./iam";

export interface LambdaFunctionArgs {
  ctx: StackContext;
  name: LambdaName;
  bundleDir: string;
  description: string;
  /** Settings (lambda/shared/settings.ts variables) this function reads. */
  environment: Record<string, pulumi.Input<string>>;
  /** What the function may do besides writing its own logs. */
  statements: PolicyStatement[];
  timeoutSeconds: number;
  memoryMb?: number;
  reservedConcurrency?: number;
}

/** What a component gets to deploy one of the Lambdas (src/packaging/functions.ts prepares it). */
export type LambdaDeployment = Pick<LambdaFunctionArgs, "bundleDir" | "environment" | "statements">;

export class LambdaFunction extends pulumi.ComponentResource {
  readonly function: aws.lambda.Function;
  readonly role: aws.iam.Role;
  readonly logGroup: aws.cloudwatch.LogGroup;
  readonly functionName: pulumi.Output<string>;
  readonly arn: pulumi.Output<string>;

  constructor(name: string, args: LambdaFunctionArgs, opts?: pulumi.ComponentResourceOptions) {
    super("runner-fleet:index:LambdaFunction", name, {}, opts);
    const { ctx } = args;
    const functionName = `${ctx.prefix}-${args.name}`;
    this.logGroup = new aws.cloudwatch.LogGroup(
      name,
      { name: `/aws/lambda/${functionName}`, retentionInDays: ctx.config.logRetentionDays },
      { parent: this },
    );
    this.role = new aws.iam.Role(
      name,
      {
        description: `${functionName}: ${args.description}`,
        assumeRolePolicy: assumedBy("lambda.amazonaws.com"),
      },
      { parent: this },
    );
    const policy = new aws.iam.RolePolicy(
      name,
      {
        role: this.role.id,
        policy: policyDocument([
          {
            Sid: "WriteOwnLogs",
            Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
            Resource: [pulumi.interpolate`${this.logGroup.arn}:*`],
            why: "The function's own log group (its streams are named by Lambda at run time).",
          },
          ...args.statements,
        ]),
      },
      { parent: this },
    );
    this.function = new aws.lambda.Function(
      name,
      {
        name: functionName,
        description: args.description,
        runtime: aws.lambda.Runtime.NodeJS22dX,
        architectures: ["arm64"],
        handler: "index.handler",
        code: new pulumi.asset.FileArchive(args.bundleDir),
        role: this.role.arn,
        timeout: args.timeoutSeconds,
        memorySize: args.memoryMb ?? 256,
        reservedConcurrentExecutions: args.reservedConcurrency,
        loggingConfig: { logFormat: "JSON", logGroup: this.logGroup.name },
        environment: {
          variables: {
            ...args.environment,
            POWERTOOLS_SERVICE_NAME: args.name,
            POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
            NODE_OPTIONS: "--enable-source-maps",
          },
        },
      },
      // The role must hold its policy before the function runs (an event source mapping checks it).
      { parent: this, dependsOn: [policy] },
    );
    this.functionName = this.function.name;
    this.arn = this.function.arn;
    this.registerOutputs({ functionName: this.functionName, arn: this.arn });
  }
}
