/**
 * Intake: the HTTP API GitHub delivers `workflow_job` webhooks to (POST /webhook on the `$default`
 * stage, throttled), and the webhook Lambda that verifies, routes, records and enqueues each job.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { StackContext } from "../config/stack-context";
import { type LambdaDeployment, LambdaFunction } from "../packaging/lambda-function";

export class Intake extends pulumi.ComponentResource {
  readonly api: aws.apigatewayv2.Api;
  readonly stage: aws.apigatewayv2.Stage;
  readonly webhook: LambdaFunction;
  /** The URL to give GitHub as the webhook's payload URL. */
  readonly webhookUrl: pulumi.Output<string>;

  constructor(
    name: string,
    args: LambdaDeployment & {
      ctx: StackContext;
    },
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("runner-fleet:index:Intake", name, {}, opts);
    const { ctx } = args;
    this.webhook = new LambdaFunction(
      `${name}-webhook`,
      {
        ctx,
        name: "webhook",
        bundleDir: args.bundleDir,
        description: "verifies, routes and records workflow_job webhooks",
        environment: args.environment,
        statements: args.statements,
        // GitHub gives up on a delivery after 10 s; answer well before.
        timeoutSeconds: 9,
        memoryMb: 512,
      },
      { parent: this },
    );
    this.api = new aws.apigatewayv2.Api(
      name,
      { name: ctx.prefix, protocolType: "HTTP", description: "GitHub workflow_job webhooks" },
      { parent: this },
    );
    const integration = new aws.apigatewayv2.Integration(
      name,
      {
        apiId: this.api.id,
        integrationType: "AWS_PROXY",
        integrationUri: this.webhook.arn,
        payloadFormatVersion: "2.0",
        timeoutMilliseconds: 10_000,
      },
      { parent: this },
    );
    const route = new aws.apigatewayv2.Route(
      name,
      {
        apiId: this.api.id,
        routeKey: "POST /webhook",
        target: pulumi.interpolate`integrations/${integration.id}`,
      },
      { parent: this },
    );
    this.stage = new aws.apigatewayv2.Stage(
      name,
      {
        apiId: this.api.id,
        name: "$default",
        autoDeploy: true,
        // A burst of queued jobs is a burst of deliveries; beyond this GitHub's deliveries get 429 and the
        // reconciler redelivers them.
        defaultRouteSettings: { throttlingBurstLimit: 200, throttlingRateLimit: 100 },
      },
      { parent: this, dependsOn: [route] },
    );
    new aws.lambda.Permission(
      name,
      {
        action: "lambda:InvokeFunction",
        function: this.webhook.functionName,
        principal: "apigateway.amazonaws.com",
        // Only this API's POST /webhook route may invoke the function.
        sourceArn: pulumi.interpolate`${this.api.executionArn}/*/POST/webhook`,
      },
      { parent: this },
    );
    this.webhookUrl = pulumi.interpolate`${this.api.apiEndpoint}/webhook`;
    this.registerOutputs({ webhookUrl: this.webhookUrl });
  }
}
