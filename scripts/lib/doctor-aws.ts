/**
 * `npm run doctor`'s AWS checks, with the operator's credentials and the Lambdas' own adapters: the
 * label configs published, an AMI per architecture (and what can be said about its runner version),
 * the reconciler's heartbeat, the launch queue and its dead-letter queue, the stack's alarms.
 */

import { DescribeImagesCommand } from "@aws-sdk/client-ec2";
import { ec2Client } from "../../lambda/adapters/ec2-client";
import { parseLabelConfig } from "../../lambda/adapters/label-configs";
import { getReconcilerHeartbeat } from "../../lambda/adapters/reserved-items";
import { sqs } from "../../lambda/adapters/sqs";
import { normalizeLabels } from "../../lambda/core/routing";
import type { Arch } from "../../lambda/shared/label-config";
import { MINIMUM_RUNNER_VERSION } from "../../src/components/runner-minimum-version";
import type { StackConfig } from "../../src/config/schema";
import { describeAlarms } from "./cloudwatch-alarms";
import type { StackOutputs } from "./deployed-stack";
import { type Check, fail, pass, warn } from "./doctor-check";
import { formatDuration } from "./explain";
import { amiParameterValue, parametersUnder } from "./ssm-read";

export interface AwsContext {
  /** The stack's name (the value of its instances' stack tag). */
  stack: string;
  /** The region the checks read. */
  region: string;
  config: StackConfig;
  outputs: StackOutputs;
  /** `runner-fleet-<stack>`: the prefix of the stack's resource names. */
  prefix: string;
  now: Date;
}

/** The reconciler runs every minute: two minutes without a run is one missed at least. */
export const HEARTBEAT_MAX_AGE_SECONDS = 120;
/** GitHub stops queueing jobs to a runner not updated within 30 days of a release. */
const RUNNER_UPDATE_DAYS = 30;

export const missingOutput = (name: string, output: string) =>
  fail(name, `the stack has no ${output} output`, "run `pulumi up` (an older program did not export it)");

/** One parameter per label config under the stack's path, each the config the stack config says. */
export async function labelConfigsCheck({ config, outputs }: AwsContext): Promise<Check> {
  const name = "label configs published";
  const path = outputs.labelConfigParameterPath;
  if (!path) return missingOutput(name, "labelConfigParameterPath");
  const published = await parametersUnder(path);
  const wanted = Object.entries(config.labelConfigs);
  const problems = wanted.flatMap(([configName, c]) => {
    if (!published.has(configName)) return [`${configName} is not published`];
    const parsed = parseLabelConfig(published.get(configName));
    if (!parsed.ok) return [`${configName} is ${parsed.notJson ? "not JSON" : "not a valid label config"}`];
    const same =
      normalizeLabels(parsed.config.labels).sort().join() === normalizeLabels(c.labels).sort().join();
    return same ? [] : [`${configName}'s published labels differ from the stack config's`];
  });
  const stale = [...published.keys()].filter((n) => !(n in config.labelConfigs));
  if (problems.length) return fail(name, `${problems.join("; ")} (under ${path})`, "run `pulumi up`");
  const detail = `${wanted.length} under ${path}: ${wanted.map(([n]) => n).join(", ")}`;
  return stale.length
    ? warn(
        name,
        `${detail}; also ${stale.join(", ")}, which the stack config no longer has`,
        "run `pulumi up`",
      )
    : pass(name, detail);
}

const versionAtLeast = (version: string, minimum: string) => {
  const [a, b] = [version, minimum].map((v) => v.split(".").map(Number));
  const differing = a!.findIndex((n, i) => n !== b![i]);
  return differing < 0 || a![differing]! > b![differing]!;
};

/** The AMI the launch templates resolve for `arch`: present, available, and how old its runner can be. */
async function amiCheck(context: AwsContext, arch: Arch): Promise<Check> {
  const name = `${arch} AMI`;
  const parameter = context.outputs.amiParameterNames?.[arch];
  if (!parameter) return missingOutput(name, `amiParameterNames.${arch}`);
  const pipeline = `${context.prefix}-${arch}`;
  const build = `start one: aws imagebuilder start-image-pipeline-execution --image-pipeline-arn $(aws imagebuilder list-image-pipelines --filters name=name,values=${pipeline} --query 'imagePipelineList[0].arn' --output text)`;
  const imageId = await amiParameterValue(parameter);
  if (!imageId)
    return fail(
      name,
      `no image yet: ${parameter} is not written (the first build takes 30–45 min after \`pulumi up\`)`,
      `wait for the image pipeline ${pipeline}, or ${build}`,
    );
  const { Images } = await ec2Client().send(new DescribeImagesCommand({ ImageIds: [imageId] }));
  const image = Images?.[0];
  if (image?.State !== "available")
    return fail(name, `${parameter} names ${imageId}, which is ${image?.State ?? "gone"}`, build);
  return runnerAge(context, name, imageId, image.CreationDate, build);
}

function runnerAge(
  context: AwsContext,
  name: string,
  imageId: string,
  created: string | undefined,
  build: string,
): Check {
  const { imagePipeline } = context.config;
  const days = created ? (context.now.getTime() - Date.parse(created)) / 86_400_000 : Number.NaN;
  const built = Number.isNaN(days)
    ? "built at an unknown time"
    : `built ${formatDuration(days * 86_400)} ago`;
  if (imagePipeline.runnerVersionPolicy === "pinned" && imagePipeline.runnerVersion) {
    const version = imagePipeline.runnerVersion;
    if (!versionAtLeast(version, MINIMUM_RUNNER_VERSION))
      return fail(
        name,
        `${imageId}: pinned runner ${version} is older than ${MINIMUM_RUNNER_VERSION}, the oldest GitHub registers`,
        "pin a newer imagePipeline.runnerVersion, `pulumi up`, and rebuild",
      );
    return warn(
      name,
      `${imageId}, ${built}, runner ${version} (pinned, ≥ ${MINIMUM_RUNNER_VERSION}); GitHub stops queueing jobs to a runner ${RUNNER_UPDATE_DAYS} days after a newer release`,
      "keep imagePipeline.runnerVersion current (or use runnerVersionPolicy latest)",
    );
  }
  // The image does not record its runner version: it is the newest release when the image was built
  // (the build refuses anything older than the minimum), so the build date bounds how far behind it is.
  const unrecorded = `${imageId}, ${built} with the then-latest runner (the image does not record its version)`;
  if (!(days < RUNNER_UPDATE_DAYS - 7))
    return warn(
      name,
      `${unrecorded}: near or past GitHub's ${RUNNER_UPDATE_DAYS}-day update window`,
      `the scheduled rebuild did not run: ${build}`,
    );
  return pass(name, unrecorded);
}

/** An AMI per architecture the image pipeline serves; a config's own AMI (amiId) is the operator's. */
export async function amiChecks(context: AwsContext): Promise<Check[]> {
  const { imagePipeline, labelConfigs } = context.config;
  const configs = Object.values(labelConfigs);
  const arches = [...new Set(configs.filter((c) => !c.amiId).map((c) => c.arch))].sort();
  if (!imagePipeline.enabled || arches.length === 0)
    return [pass("AMIs", "every label config names its own AMI (amiId): not built by the stack")];
  return Promise.all(arches.map((arch) => amiCheck(context, arch)));
}

export async function heartbeatCheck({ outputs, prefix, now }: AwsContext): Promise<Check> {
  const name = "reconciler";
  if (!outputs.jobsTableName) return missingOutput(name, "jobsTableName");
  const logs = `its log: aws logs tail /aws/lambda/${prefix}-reconciler --since 15m`;
  const heartbeat = await getReconcilerHeartbeat(outputs.jobsTableName);
  if (!heartbeat)
    return fail(
      name,
      "no run recorded (no heartbeat item in the jobs table)",
      `check it runs every minute, ${logs}; a reconciler deployed before the heartbeat records none: \`pulumi up\``,
    );
  const age = (now.getTime() - Date.parse(heartbeat.ranAt)) / 1000;
  const last = `last run ${formatDuration(age)} ago`;
  if (!(age <= HEARTBEAT_MAX_AGE_SECONDS))
    return fail(
      name,
      `${last}: it runs every minute`,
      `see why it stopped, ${logs}; its schedule is the EventBridge rule of ${prefix}-reconciler`,
    );
  if (heartbeat.unreadable.length)
    return warn(
      name,
      `${last}, but it could not read ${heartbeat.unreadable.join(", ")} (their rules were skipped)`,
      logs,
    );
  return pass(name, `${last}${heartbeat.failed ? ` (${heartbeat.failed} actions failed)` : ""}`);
}

async function depth(
  queueName: string,
): Promise<{ url: string; visible: number; inFlight: number; delayed: number }> {
  const { QueueUrl } = await sqs("GetQueueUrl", { QueueName: queueName });
  const { Attributes = {} } = await sqs("GetQueueAttributes", {
    QueueUrl,
    AttributeNames: [
      "ApproximateNumberOfMessages",
      "ApproximateNumberOfMessagesNotVisible",
      "ApproximateNumberOfMessagesDelayed",
    ],
  });
  const n = (key: string) => Number(Attributes[key as keyof typeof Attributes] ?? 0);
  return {
    url: QueueUrl ?? queueName,
    visible: n("ApproximateNumberOfMessages"),
    inFlight: n("ApproximateNumberOfMessagesNotVisible"),
    delayed: n("ApproximateNumberOfMessagesDelayed"),
  };
}

export async function queueChecks({ outputs, prefix }: AwsContext): Promise<Check[]> {
  if (!outputs.launchQueueName || !outputs.deadLetterQueueName)
    return [missingOutput("launch queue", "launchQueueName / deadLetterQueueName")];
  const [queue, dlq] = await Promise.all([
    depth(outputs.launchQueueName),
    depth(outputs.deadLetterQueueName),
  ]);
  const checks = [
    pass("launch queue", `${queue.visible} waiting, ${queue.inFlight} in flight, ${queue.delayed} delayed`),
  ];
  checks.push(
    dlq.visible + dlq.inFlight > 0
      ? fail(
          "dead-letter queue",
          `${dlq.visible + dlq.inFlight} launch requests failed repeatedly and wait there`,
          `read them (aws sqs receive-message --queue-url ${dlq.url} --max-number-of-messages 10) and the launcher's log (aws logs tail /aws/lambda/${prefix}-launcher --since 1h); once fixed, purge it (aws sqs purge-queue --queue-url ${dlq.url}): the reconciler re-sends jobs still queued`,
        )
      : pass("dead-letter queue", "empty"),
  );
  return checks;
}

export async function alarmsCheck({ outputs, prefix }: AwsContext): Promise<Check> {
  const name = "alarms";
  const alarms = await describeAlarms(`${prefix}-`);
  if (alarms.length === 0)
    return warn(name, `no alarm named ${prefix}-*`, "run `pulumi up` (the stack creates its alarms)");
  const firing = alarms.filter((a) => a.state === "ALARM");
  if (firing.length === 0) return pass(name, `none of ${alarms.length} in alarm`);
  return fail(
    name,
    firing.map((a) => `${a.name} in alarm${a.reason ? ` (${a.reason})` : ""}`).join("; "),
    `see what fired on the dashboard${outputs.dashboardUrl ? `: ${outputs.dashboardUrl}` : ""}`,
  );
}
