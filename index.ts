/**
 * runner-fleet: ephemeral GitHub Actions runners on AWS, as one stack.
 *
 *   GitHub ─workflow_job─▶ Intake (HTTP API + webhook fn) ─▶ Ledger (jobs table) + launch queue
 *   launch queue ─▶ Launcher ─ CreateFleet from Runners' launch templates (AMI from ImagePipeline)
 *                            └ JIT config ─▶ hand-off table ─▶ the instance (runner role: own item only)
 *   FleetEvents: EC2 events ─▶ ec2-events fn; every minute ─▶ reconciler fn
 *   GithubWiring (token mode: webhooks ─▶ Intake; their failed deliveries redelivered by the reconciler)
 *   Observability (dashboard, alarms, budget) · Cleanup (destroy)
 *
 * Each box is a ComponentResource in src/components/; the config they share is read and checked in
 * src/config/, and the Lambdas' bundles, environment and IAM are assembled in src/packaging/.
 */
import * as pulumi from "@pulumi/pulumi";
import { Cleanup } from "./src/components/cleanup";
import { FleetEvents } from "./src/components/fleet-events";
import { GithubSecrets } from "./src/components/github-secrets";
import { GithubWiring } from "./src/components/github-wiring";
import { ImagePipeline, pipelineArches } from "./src/components/image-pipeline";
import { Intake } from "./src/components/intake";
import { Launcher } from "./src/components/launcher";
import { Ledger } from "./src/components/ledger";
import { Network } from "./src/components/network";
import { Observability } from "./src/components/observability";
import { Runners } from "./src/components/runners";
import { loadFleetSettings } from "./src/config/load";
import { createContext, parameterNames } from "./src/config/stack-context";
import { ensureBundles } from "./src/packaging/bundles";
import { functionSpecs, withSettings } from "./src/packaging/functions";

// A bad config stops here, before anything is declared.
const settings = loadFleetSettings();
const bundles = ensureBundles();
const ctx = createContext(settings, new pulumi.Config("aws").require("region"));
// Every resource carries the stack tag (cleanup, cost allocation) through the provider's default tags.
const opts = { providers: [ctx.provider] };

const network = new Network("network", { ctx }, opts);
const ledger = new Ledger("ledger", { ctx }, opts);
const secrets = new GithubSecrets("github-secrets", { ctx }, opts);
const arches = pipelineArches(ctx.config);
const image =
  arches.length > 0
    ? new ImagePipeline(
        "image",
        {
          ctx,
          subnetId: network.subnetIds.apply((ids) => ids[0]!),
          securityGroupId: network.securityGroup.id,
          arches,
        },
        opts,
      )
    : undefined;
const runners = new Runners(
  "runners",
  {
    ctx,
    handoffTable: ledger.handoffTable,
    securityGroupId: network.securityGroup.id,
    assignPublicIp: network.assignPublicIp,
    amiParameterNames: image?.amiParameterNames,
    images: image?.initialImages,
  },
  opts,
);

const lambdas = functionSpecs(ctx, bundles, { ledger, network, runners, secrets, image });

const cleanup = new Cleanup(
  "cleanup",
  {
    ctx,
    ...lambdas.janitor,
    amiParameterNames: image?.parameterNamesInUse ?? [],
    runsBefore: [network, runners, ...(image ? [image] : [])],
  },
  opts,
);
// Launches and schedules depend on the cleanup, so on destroy they stop before it runs.
const afterCleanup = [cleanup.invocation];
const intake = new Intake("intake", { ctx, ...lambdas.webhook }, opts);
const launcher = new Launcher(
  "launcher",
  { ctx, ...lambdas.launcher, launchQueue: ledger.launchQueue, afterCleanup },
  opts,
);
// Token mode: the program points GitHub at the webhook URL itself; the reconciler redelivers what
// those webhooks failed to deliver.
const githubWiring =
  ctx.config.github.authMode === "token"
    ? new GithubWiring("github", {
        ctx,
        webhookUrl: intake.webhookUrl,
        webhookSecret: secrets.webhookSecretValue,
        token: secrets.tokenValue!,
      })
    : undefined;
const events = new FleetEvents(
  "events",
  {
    ctx,
    ec2Events: lambdas["ec2-events"],
    reconciler: withSettings(lambdas.reconciler, { GITHUB_WEBHOOKS: githubWiring?.webhooksSetting }),
    afterCleanup,
  },
  opts,
);
const observability = new Observability(
  "observability",
  {
    ctx,
    launchQueue: ledger.launchQueue,
    deadLetterQueue: ledger.deadLetterQueue,
    functions: {
      webhook: intake.webhook,
      launcher: launcher.function,
      reconciler: events.reconciler,
      "ec2-events": events.ec2Events,
    },
  },
  opts,
);
export const webhookUrl = intake.webhookUrl;
/** A Pulumi secret: `npm run setup:github-app` gives it to the App it creates. */
export const webhookSecret = secrets.webhookSecretValue;
export const dashboardUrl = observability.dashboardUrl;
export const jobsTableName = ledger.jobsTable.name;
export const handoffTableName = ledger.handoffTable.name;
export const poolTableName = ledger.poolTable.name;
export const launchQueueName = ledger.launchQueue.name;
export const deadLetterQueueName = ledger.deadLetterQueue.name;
export const amiParameterNames = image?.amiParameterNames ?? {};
export const labelConfigParameterPath = parameterNames(ctx).labelConfigPath;
