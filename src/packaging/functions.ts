/**
 * What each Lambda is deployed with, besides its component: its bundle, the settings its code reads
 * (and nothing secret), and its least-privilege statements (src/packaging/policies.ts).
 */
import type * as pulumi from "@pulumi/pulumi";
import type { GithubSecrets } from "../components/github-secrets";
import type { ImagePipeline } from "../components/image-pipeline";
import type { Ledger } from "../components/ledger";
import type { Network } from "../components/network";
import type { Runners } from "../components/runners";
import type { StackContext } from "../config/stack-context";
import type { LambdaName } from "./bundles";
import type { PolicyStatement } from "./iam";
import * as policies from "./policies";
import { environmentFor, functionEnvironment } from "./settings-env";
import { fleetSettingsEnvironment } from "./settings-values";

export interface FunctionSpec {
  bundleDir: string;
  environment: ReturnType<typeof functionEnvironment>;
  statements: PolicyStatement[];
}

const STATEMENTS: Record<LambdaName, (refs: policies.FleetRefs) => PolicyStatement[]> = {
  webhook: policies.webhookStatements,
  launcher: policies.launcherStatements,
  reconciler: policies.reconcilerStatements,
  "ec2-events": policies.ec2EventsStatements,
  janitor: policies.janitorStatements,
};

export function functionSpecs(
  ctx: StackContext,
  bundles: Record<LambdaName, string>,
  parts: {
    ledger: Ledger;
    network: Network;
    runners: Runners;
    secrets: GithubSecrets;
    image?: ImagePipeline;
  },
): Record<LambdaName, FunctionSpec> {
  const refs: policies.FleetRefs = {
    ctx,
    jobsTable: parts.ledger.jobsTable,
    handoffTable: parts.ledger.handoffTable,
    poolTable: parts.ledger.poolTable,
    launchQueue: parts.ledger.launchQueue,
    runnerRole: parts.runners.role,
    launchTemplateArns: Object.values(parts.runners.launchTemplates).map((t) => t.arn),
    subnetIds: parts.network.subnetIds,
    securityGroupArn: parts.network.securityGroup.arn,
    amiParameterNames: parts.image?.parameterNamesInUse ?? [],
    githubCredentialParameter: parts.secrets.credentialParameterName,
  };
  const available = fleetSettingsEnvironment(ctx, parts);
  const spec = (name: LambdaName): FunctionSpec => ({
    bundleDir: bundles[name],
    environment: functionEnvironment(bundles[name], available, parts.secrets.revision),
    statements: STATEMENTS[name](refs),
  });
  return {
    webhook: spec("webhook"),
    launcher: spec("launcher"),
    reconciler: spec("reconciler"),
    "ec2-events": spec("ec2-events"),
    janitor: spec("janitor"),
  };
}

/**
 * `spec` with settings whose values exist only later in the program (the token-mode webhooks' ids
 * come from webhooks that need the API's URL); as for the others, only those its bundle reads.
 */
export function withSettings(
  spec: FunctionSpec,
  later: Record<string, pulumi.Input<string> | undefined>,
): FunctionSpec {
  return { ...spec, environment: { ...spec.environment, ...environmentFor(spec.bundleDir, later) } };
}
