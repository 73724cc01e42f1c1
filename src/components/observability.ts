/**
 * What the on-call looks at: one CloudWatch dashboard (queue depth, jobs by outcome, launch latency,
 * spot vs on-demand, interruptions, errors), alarms to an SNS topic (optionally emailed), and an AWS
 * Budgets budget on the stack's cost-allocation tag. Fleet metrics are the Lambdas' EMF metrics in the
 * `RunnerFleet` namespace, dimension `service` = the function (Powertools' default dimension).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { METRICS_NAMESPACE } from "../../lambda/shared/telemetry";
import type { StackContext } from "../config/stack-context";
import { STACK_TAG } from "../config/stack-context";
import type { LambdaFunction } from "../packaging/lambda-function";

export interface ObservabilityArgs {
  ctx: StackContext;
  launchQueue: aws.sqs.Queue;
  deadLetterQueue: aws.sqs.Queue;
  functions: Record<"webhook" | "launcher" | "reconciler" | "ec2-events", LambdaFunction>;
}

const search = (expression: string, stat: string, period = 60) =>
  `SEARCH('{${METRICS_NAMESPACE},service} ${expression}', '${stat}', ${period})`;

export class Observability extends pulumi.ComponentResource {
  readonly alarmTopic: aws.sns.Topic;
  readonly dashboard: aws.cloudwatch.Dashboard;
  readonly dashboardUrl: pulumi.Output<string>;

  constructor(name: string, args: ObservabilityArgs, opts?: pulumi.ComponentResourceOptions) {
    super("runner-fleet:index:Observability", name, {}, opts);
    const { ctx, functions } = args;
    const { alarms, limits } = ctx.config;

    this.alarmTopic = new aws.sns.Topic(`${name}-alarms`, { name: `${ctx.prefix}-alarms` }, { parent: this });
    new aws.sns.TopicPolicy(
      `${name}-alarms`,
      {
        arn: this.alarmTopic.arn,
        policy: pulumi.jsonStringify({
          Version: "2012-10-17",
          Statement: [
            {
              Sid: "AlarmsAndBudgetsPublish",
              Effect: "Allow",
              Principal: { Service: ["cloudwatch.amazonaws.com", "budgets.amazonaws.com"] },
              Action: "sns:Publish",
              Resource: this.alarmTopic.arn,
              Condition: { StringEquals: { "aws:SourceAccount": ctx.accountId } },
            },
          ],
        }),
      },
      { parent: this },
    );
    if (alarms.email) {
      new aws.sns.TopicSubscription(
        `${name}-email`,
        { topic: this.alarmTopic.arn, protocol: "email", endpoint: alarms.email },
        { parent: this },
      );
    }

    const alarm = (
      id: string,
      alarmArgs: Omit<aws.cloudwatch.MetricAlarmArgs, "alarmActions" | "okActions">,
    ) =>
      new aws.cloudwatch.MetricAlarm(
        `${name}-${id}`,
        {
          name: `${ctx.prefix}-${id}`,
          treatMissingData: "notBreaching",
          ...alarmArgs,
          alarmActions: [this.alarmTopic.arn],
          okActions: [this.alarmTopic.arn],
        },
        { parent: this },
      );
    alarm("running-instances", {
      alarmDescription: "More runner instances than expected: a launch loop, or instances not terminating",
      namespace: METRICS_NAMESPACE,
      metricName: "RunnerInstances",
      dimensions: { service: "reconciler" },
      statistic: "Maximum",
      period: 300,
      evaluationPeriods: 1,
      comparisonOperator: "GreaterThanThreshold",
      threshold: alarms.runningInstancesThreshold ?? limits.maxRunnersTotal,
    });
    alarm("dlq-not-empty", {
      alarmDescription: "Launch requests failed repeatedly and reached the dead-letter queue",
      namespace: "AWS/SQS",
      metricName: "ApproximateNumberOfMessagesVisible",
      dimensions: { QueueName: args.deadLetterQueue.name },
      statistic: "Maximum",
      period: 300,
      evaluationPeriods: 1,
      comparisonOperator: "GreaterThanThreshold",
      threshold: 0,
    });
    alarm("launcher-errors", {
      alarmDescription: "The launcher Lambda is failing",
      namespace: "AWS/Lambda",
      metricName: "Errors",
      dimensions: { FunctionName: functions.launcher.functionName },
      statistic: "Sum",
      period: 300,
      evaluationPeriods: 1,
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      threshold: alarms.launcherErrorsThreshold,
    });
    alarm("jobs-timed-out", {
      alarmDescription: "Jobs failed for lack of capacity or ran past the max runtime",
      metricQueries: [
        {
          id: "launcher",
          metric: {
            namespace: METRICS_NAMESPACE,
            metricName: "JobsTimedOut",
            dimensions: { service: "launcher" },
            stat: "Sum",
            period: 3600,
          },
        },
        {
          id: "reconciler",
          metric: {
            namespace: METRICS_NAMESPACE,
            metricName: "ReconcileExpire",
            dimensions: { service: "reconciler" },
            stat: "Sum",
            period: 3600,
          },
        },
        {
          id: "timedout",
          expression: "FILL(launcher, 0) + FILL(reconciler, 0)",
          label: "jobs timed out",
          returnData: true,
        },
      ],
      evaluationPeriods: 1,
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      threshold: alarms.jobsTimedOutThreshold,
    });

    new aws.budgets.Budget(
      `${name}-monthly`,
      {
        name: `${ctx.prefix}-monthly`,
        budgetType: "COST",
        timeUnit: "MONTHLY",
        limitAmount: alarms.monthlyBudgetUsd.toFixed(2),
        limitUnit: "USD",
        // Cost-allocation tags are prefixed `user:` in Cost Explorer (activate the tag once in Billing).
        costFilters: [{ name: "TagKeyValue", values: [`user:${STACK_TAG}$${ctx.stack}`] }],
        notifications: [
          { notificationType: "ACTUAL", threshold: 80 },
          { notificationType: "FORECASTED", threshold: 100 },
        ].map((n) => ({
          ...n,
          comparisonOperator: "GREATER_THAN",
          thresholdType: "PERCENTAGE",
          subscriberSnsTopicArns: [this.alarmTopic.arn],
        })),
      },
      { parent: this },
    );

    const fn = (f: LambdaFunction) => f.functionName;
    const widget = (title: string, metrics: unknown[], extra: Record<string, unknown> = {}) => ({
      type: "metric",
      width: 12,
      height: 6,
      properties: { title, region: ctx.region, view: "timeSeries", stacked: false, metrics, ...extra },
    });
    const body = pulumi
      .all([args.launchQueue.name, args.deadLetterQueue.name, ...Object.values(functions).map(fn)])
      .apply(([queue, dlq, ...functionNames]) =>
        JSON.stringify({
          widgets: [
            widget("Launch queue depth", [
              ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", queue, { label: "waiting" }],
              [
                "AWS/SQS",
                "ApproximateNumberOfMessagesNotVisible",
                "QueueName",
                queue,
                { label: "in flight" },
              ],
              ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", dlq, { label: "dead letters" }],
            ]),
            widget("Jobs by webhook action and outcome", [
              [{ expression: search("Webhook", "Sum"), id: "webhook" }],
              [
                {
                  expression: search('MetricName="JobsLaunched" OR MetricName="JobsRelaunched"', "Sum"),
                  id: "launched",
                },
              ],
              [
                {
                  expression: search('MetricName="JobsTimedOut" OR MetricName="ReconcileExpire"', "Sum"),
                  id: "timedout",
                },
              ],
              [{ expression: search('MetricName="JobsInterrupted"', "Sum"), id: "interrupted" }],
            ]),
            widget("Launch latency (queued → instance launched), ms", [
              [{ expression: search('MetricName="LaunchLatency"', "p50"), id: "p50" }],
              [{ expression: search('MetricName="LaunchLatency"', "p95"), id: "p95" }],
            ]),
            widget("Spot vs on-demand launches", [
              [{ expression: search('MetricName="SpotInstancesLaunched"', "Sum"), id: "spot" }],
              [{ expression: search('MetricName="OnDemandInstancesLaunched"', "Sum"), id: "ondemand" }],
              [{ expression: search('MetricName="SpotFallbacks"', "Sum"), id: "fallbacks" }],
            ]),
            widget("Stopped pools: jobs on a member, members launched, retired", [
              [{ expression: search('MetricName="PoolStarts"', "Sum"), id: "starts" }],
              [{ expression: search('MetricName="PoolStartFailures"', "Sum"), id: "startfailures" }],
              [{ expression: search('MetricName="PoolMembersLaunched"', "Sum"), id: "launched" }],
              [{ expression: search('MetricName="PoolMembersRetired"', "Sum"), id: "retired" }],
            ]),
            widget("Spot interruptions", [
              [
                {
                  expression: search('MetricName="SpotInterruptions" OR MetricName="JobsInterrupted"', "Sum"),
                  id: "interruptions",
                },
              ],
            ]),
            widget(
              "Lambda errors and throttles",
              functionNames.flatMap((f) => [
                ["AWS/Lambda", "Errors", "FunctionName", f, { stat: "Sum" }],
                ["AWS/Lambda", "Throttles", "FunctionName", f, { stat: "Sum" }],
              ]),
            ),
            widget("Runner instances", [
              [METRICS_NAMESPACE, "RunnerInstances", "service", "reconciler", { stat: "Maximum" }],
            ]),
            widget("Reconciler actions", [[{ expression: search("Reconcile", "Sum"), id: "reconcile" }]]),
          ],
        }),
      );
    this.dashboard = new aws.cloudwatch.Dashboard(
      `${name}-dashboard`,
      { dashboardName: ctx.prefix, dashboardBody: body },
      { parent: this },
    );
    this.dashboardUrl = pulumi.interpolate`https://${ctx.region}.console.aws.amazon.com/cloudwatch/home?region=${ctx.region}#dashboards:name=${this.dashboard.dashboardName}`;
    this.registerOutputs({ dashboardUrl: this.dashboardUrl });
  }
}
