/**
 * The stack config: one zod schema for every key of `Pulumi.<stack>.yaml` under the project's
 * namespace, the single source of truth. load.ts validates it before any resource is declared
 * (errors.ts words the mistakes), and its descriptions are docs/configuration.md's reference
 * (reference.ts; a test keeps the page in sync).
 */
import { z } from "zod";
import { findRoutingConflicts } from "../../lambda/core/routing";
import type { LabelRoute } from "../../lambda/shared/label-config";
import { MAX_QUEUE_TIMEOUT_MINUTES } from "../../lambda/shared/settings";
import { instanceTypeProblem, isArm64InstanceType, webUrlProblem } from "./checks";

/** The label every routed job carries (REQUIRED_LABEL of the webhook): implicit in every config. */
export const REQUIRED_LABEL = "self-hosted";

/** Keys holding secrets: set with `pulumi config set --secret`, never echoed in an error. */
export const SECRET_KEYS = ["githubAppPrivateKey", "webhookSecret", "githubToken"] as const;

const NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,38}[a-z0-9]$/;
/** CloudWatch Logs accepts only these retention periods (days). */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

/** A check from a function saying what is wrong with a text (its message), or undefined. */
const problemOf = (problem: (text: string) => string | undefined) =>
  z.superRefine((text: string, ctx) => {
    const message = problem(text);
    if (message) ctx.addIssue({ code: "custom", message });
  });

const positiveInt = (max: number) => z.number().int().min(1).max(max);

const github = z
  .strictObject({
    url: z
      .string()
      .check(problemOf(webUrlProblem))
      .default("https://github.com")
      .describe(
        "Web URL of GitHub: `https://github.com`, a GitHub Enterprise Server host (3.10+) or a `*.ghe.com` tenant. The API URL is derived from it.",
      ),
    authMode: z
      .enum(["app", "token"])
      .default("app")
      .describe(
        "`app`: a GitHub App. The first `pulumi up` runs without one; `npm run setup:github-app -- create` then creates it against the live webhook URL and stores `appId` and the `githubAppPrivateKey` secret. `token`: a fine-grained PAT (the `githubToken` secret); the program then creates the webhook itself.",
      ),
    appId: positiveInt(2 ** 31)
      .optional()
      .describe("The GitHub App's id (app mode; written by `npm run setup:github-app -- create`)."),
    scope: z
      .enum(["org", "repo"])
      .default("org")
      .describe("Where JIT runners register: the organization (`org`) or each job's repository (`repo`)."),
    owner: z
      .string()
      .regex(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/, {
        error: "expected a GitHub organization or user login, e.g. my-org",
      })
      .describe("Organization (or user, repo scope) that owns the repositories whose jobs run here."),
    repositories: z
      .array(
        z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, { error: "expected a repository name without owner" }),
      )
      .default([])
      .describe(
        "Repo scope: the repositories (names, without owner) served; token mode creates a webhook on each.",
      ),
    runnerGroupId: positiveInt(2 ** 31)
      .default(1)
      .describe("Runner group id the runners join (org scope; 1 = Default). A label config may override it."),
  })
  .describe("GitHub connection.");

const network = z
  .strictObject({
    vpcId: z
      .string()
      .regex(/^vpc-[0-9a-f]{8,17}$/, { error: 'expected a VPC id like "vpc-0123456789abcdef0"' })
      .optional()
      .describe("Use this existing VPC instead of creating one (then `subnetIds` is required)."),
    subnetIds: z
      .array(
        z.string().regex(/^subnet-[0-9a-f]{8,17}$/, {
          error: 'expected a subnet id like "subnet-0123456789abcdef0"',
        }),
      )
      .optional()
      .describe("Existing VPC: the subnets runners launch in (at least two AZs recommended)."),
    assignPublicIp: z
      .boolean()
      .optional()
      .describe(
        "Give runners a public IP. Default: true in the created VPC (public subnets, no NAT), false in an existing VPC (private subnets behind your NAT).",
      ),
    cidrBlock: z
      .string()
      .regex(/^\d{1,3}(\.\d{1,3}){3}\/(1[6-9]|2[0-4])$/, {
        error: 'expected an IPv4 CIDR /16–/24, e.g. "10.42.0.0/16"',
      })
      .default("10.42.0.0/16")
      .describe("Created VPC: its CIDR block."),
    availabilityZones: z
      .number()
      .int()
      .min(2)
      .max(6)
      .default(3)
      .describe("Created VPC: how many AZs get a public subnet (more AZs = more spot pools)."),
    natGateway: z
      .boolean()
      .default(false)
      .describe(
        "Created VPC: put runners in private subnets behind one NAT gateway (costs by the hour) instead of public subnets.",
      ),
  })
  .prefault({})
  .describe("Where runners launch.");

const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] as const;

const clockTime = (what: string, max: string) =>
  z.string().regex(max === "24:00" ? /^(([01]\d|2[0-3]):[0-5]\d|24:00)$/ : /^([01]\d|2[0-3]):[0-5]\d$/, {
    error: `expected ${what} as HH:MM on a 24-hour clock, e.g. "08:00"`,
  });

const timeZoneProblem = (zone: string): string | undefined => {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return undefined;
  } catch {
    return 'expected an IANA time zone, e.g. "Europe/Berlin" or "America/New_York"';
  }
};

const poolSize = z.number().int().min(0).max(1_000);

const pool = z
  .strictObject({
    size: poolSize
      .default(0)
      .describe("Stopped members kept ready (outside the schedule's window, if there is one). 0 = no pool."),
    schedule: z
      .strictObject({
        timeZone: z.string().check(problemOf(timeZoneProblem)).describe("IANA time zone of the window."),
        days: z
          .array(z.enum(WEEKDAYS))
          .min(1)
          .default(["mon", "tue", "wed", "thu", "fri"])
          .describe("Days the window opens: `mon` … `sun`."),
        from: clockTime("the window's start", "23:59").describe("Local start, `HH:MM`."),
        to: clockTime("the window's end", "24:00").describe(
          "Local end, `HH:MM` (exclusive; `24:00` = midnight).",
        ),
        size: poolSize.describe("Stopped members kept ready while the window is open."),
      })
      .optional()
      .describe("A weekly window with its own pool size, e.g. working hours."),
  })
  .prefault({})
  .describe(
    "A stopped pool: members booted once, warmed and stopped, started for a job instead of a cold launch. Idle cost: the root volume (gp3) per member. Members are on-demand.",
  );

const labelConfig = z.strictObject({
  labels: z
    .array(z.string().min(1).max(100))
    .min(1)
    .describe(
      "The `runs-on` labels this config serves, besides `self-hosted` (routing rules: docs/workflow-authors.md).",
    ),
  instanceTypes: z
    .array(z.string().check(problemOf(instanceTypeProblem)))
    .min(1)
    .max(20)
    .describe("Instance types, any of which may serve a job (more types = more spot capacity pools)."),
  arch: z.enum(["x64", "arm64"]).describe("CPU architecture: `x64` or `arm64` (Graviton)."),
  diskSizeGb: z
    .number()
    .int()
    .min(20)
    .max(16_384)
    .default(50)
    .describe("Root volume size (gp3, encrypted), GiB."),
  spotPolicy: z
    .enum(["spotOnly", "spotPreferred", "onDemandOnly"])
    .default("spotPreferred")
    .describe("`spotOnly`, `spotPreferred` (on-demand after `spotFailuresBeforeOnDemand`), `onDemandOnly`."),
  spotFailuresBeforeOnDemand: z
    .number()
    .int()
    .min(0)
    .max(100)
    .default(2)
    .describe("spotPreferred: spot launch failures of one job before it goes on-demand."),
  allocationStrategy: z
    .enum(["capacity-optimized", "price-capacity-optimized", "lowest-price"])
    .default("capacity-optimized")
    .describe("Spot allocation strategy of the fleet request."),
  maxRunners: positiveInt(10_000).default(10).describe("Most runners of this config alive at once."),
  amiId: z
    .string()
    .regex(/^ami-[0-9a-f]{8,17}$/, { error: 'expected an AMI id like "ami-0123456789abcdef0"' })
    .optional()
    .describe("Use this AMI instead of the image pipeline's (it must have the runner installed)."),
  retryOnInterruption: z
    .boolean()
    .default(true)
    .describe("Re-run a job once, on on-demand capacity, when a spot interruption killed it."),
  runnerGroupId: positiveInt(2 ** 31)
    .optional()
    .describe("Runner group id for this config (default: `github.runnerGroupId`)."),
  pool,
});

const limits = z
  .strictObject({
    maxRunnersTotal: positiveInt(10_000).default(100).describe("Most runners alive at once, all configs."),
    maxRuntimeMinutes: positiveInt(7 * 24 * 60)
      .default(360)
      .describe("An instance older than this is terminated (GitHub's own job limit is 6 h)."),
    idleTimeoutMinutes: positiveInt(24 * 60)
      .default(10)
      .describe("A runner without a job for this long is terminated."),
    // Capped so the ledger remembers a job longer than a `queued` delivery can start it (settings.ts
    // MIN_JOB_TTL_DAYS): the webhook ignores one older than this.
    queueTimeoutMinutes: positiveInt(MAX_QUEUE_TIMEOUT_MINUTES)
      .default(60)
      .describe("A job that got no capacity for this long is failed."),
  })
  .prefault({})
  .describe("Hard limits.");

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, { error: "expected a SHA-256 as 64 lowercase hex digits" });

const imagePipeline = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .describe("Build runner AMIs with EC2 Image Builder. When false, every label config needs `amiId`."),
    schedule: z
      .string()
      .regex(/^cron\(.+\)$/, {
        error: 'expected an Image Builder cron expression like "cron(0 4 ? * sun *)"',
      })
      .default("cron(0 4 ? * sun *)")
      .describe("When the pipeline rebuilds the images (UTC), e.g. weekly for OS and runner updates."),
    runnerVersionPolicy: z
      .enum(["latest", "pinned"])
      .default("latest")
      .describe("`latest`: each build takes the newest Actions runner release; `pinned`: `runnerVersion`."),
    runnerVersion: z
      .string()
      .regex(/^\d+\.\d+\.\d+$/, { error: 'expected a runner version like "2.329.0"' })
      .optional()
      .describe("Pinned runner version."),
    runnerSha256: z
      .strictObject({
        x64: sha256.optional().describe("SHA-256 of `actions-runner-linux-x64-<version>.tar.gz`."),
        arm64: sha256.optional().describe("SHA-256 of `actions-runner-linux-arm64-<version>.tar.gz`."),
      })
      .optional()
      .describe(
        "Pinned: SHA-256 of the runner tarball per arch (default: the one GitHub publishes in the release notes).",
      ),
    prePullImages: z
      .array(z.string().regex(/^[a-z0-9][\w./:@-]*$/, { error: "expected a container image reference" }))
      .default([])
      .describe("Container images pulled into the AMI, so jobs start without pulling them."),
    extraComponents: z
      .array(
        z.string().regex(/^arn:aws[\w-]*:imagebuilder:[\w-]*:(\d{12}|aws):component\/.+$/, {
          error: "expected an Image Builder component ARN",
        }),
      )
      .default([])
      .describe("Image Builder component ARNs appended to both recipes."),
  })
  .prefault({})
  .describe("The runner AMI pipeline.");

const alarms = z
  .strictObject({
    email: z
      .email({ error: "expected an email address" })
      .optional()
      .describe("Subscribe this address to the alarm topic."),
    runningInstancesThreshold: positiveInt(10_000)
      .optional()
      .describe("Alarm when more runner instances run than this (default: `limits.maxRunnersTotal`)."),
    launcherErrorsThreshold: positiveInt(10_000)
      .default(5)
      .describe("Alarm when the launcher fails this many invocations in 5 minutes."),
    jobsTimedOutThreshold: positiveInt(10_000)
      .default(1)
      .describe("Alarm when this many jobs time out (no capacity) in an hour."),
    monthlyBudgetUsd: z
      .number()
      .positive()
      .max(1_000_000)
      .default(100)
      .describe(
        "AWS Budgets monthly limit (USD) on the stack's cost-allocation tag; alerts at 80% and 100%.",
      ),
  })
  .prefault({})
  .describe("Alarms and budget.");

const secretString = (what: string) => z.string().min(1, { error: `expected ${what}` });

/** The whole stack config, keyed as in `Pulumi.<stack>.yaml` without the project prefix. */
export const stackConfigSchema = z
  .strictObject({
    github,
    githubAppPrivateKey: secretString("the App's private key (PEM)")
      .refine((v) => /-----BEGIN (RSA )?PRIVATE KEY-----/.test(v), {
        error: "expected the App's private key in PEM form (-----BEGIN RSA PRIVATE KEY-----)",
      })
      .optional()
      .describe("Secret. App mode: the App's private key (PEM)."),
    webhookSecret: secretString("a webhook secret")
      .min(20, { error: "expected a webhook secret of at least 20 characters (e.g. openssl rand -hex 32)" })
      .optional()
      .describe(
        "Secret. The webhook secret GitHub signs deliveries with. Unset: the program generates one (stack output `webhookSecret`), which the App setup and token mode's webhooks use.",
      ),
    githubToken: secretString("a fine-grained personal access token")
      .regex(/^(github_pat_|ghp_)\w+$/, { error: "expected a personal access token (github_pat_…)" })
      .optional()
      .describe("Secret. Token mode: fine-grained PAT (Self-hosted runners and Webhooks: write)."),
    network,
    labelConfigs: z
      .record(
        z.string().regex(NAME_PATTERN, {
          error: 'expected a config name of 2-40 lowercase letters, digits and "-", e.g. linux-x64-large',
        }),
        labelConfig,
      )
      .refine((configs) => Object.keys(configs).length > 0, { error: "expected at least one label config" })
      .describe("Label configs by name (e.g. `linux-x64-large`)."),
    limits,
    imagePipeline,
    alarms,
    logRetentionDays: z
      .number()
      .refine((n) => (LOG_RETENTION_DAYS as readonly number[]).includes(n), {
        error: `expected one of CloudWatch's retention periods: ${LOG_RETENTION_DAYS.join(", ")}`,
      })
      .default(30)
      .describe("Retention of every log group, days."),
  })
  .superRefine((c, ctx) => {
    const issue = (path: (string | number)[], message: string) =>
      ctx.addIssue({ code: "custom", path, message });
    if (c.github.authMode === "app") {
      // Neither is the first deploy (the App is created afterwards, against the live webhook URL);
      // one without the other is a setup that stopped halfway.
      if (c.github.appId !== undefined && c.githubAppPrivateKey === undefined)
        issue(
          ["githubAppPrivateKey"],
          "expected the App's private key (secret) beside github.appId: `npm run setup:github-app -- create` stores both, or remove github.appId",
        );
      if (c.github.appId === undefined && c.githubAppPrivateKey !== undefined)
        issue(
          ["github", "appId"],
          "expected the GitHub App's id (a number) beside githubAppPrivateKey: `npm run setup:github-app -- create` stores both",
        );
    } else if (c.githubToken === undefined) {
      issue(
        ["githubToken"],
        "expected a fine-grained personal access token (secret): required in token mode",
      );
    }
    if (c.github.scope === "repo") {
      if (c.github.repositories.length === 0)
        issue(["github", "repositories"], "expected at least one repository name in repo scope");
      const groups = [
        c.github.runnerGroupId,
        ...Object.values(c.labelConfigs).map((l) => l.runnerGroupId ?? 1),
      ];
      if (groups.some((g) => g !== 1))
        issue(["github", "runnerGroupId"], "expected 1 (Default): runner groups exist only at org scope");
    }
    if ((c.network.vpcId === undefined) !== (c.network.subnetIds === undefined))
      issue(
        ["network", c.network.vpcId === undefined ? "vpcId" : "subnetIds"],
        "expected both network.vpcId and network.subnetIds (an existing VPC), or neither (create one)",
      );
    if (c.network.subnetIds && c.network.subnetIds.length === 0)
      issue(["network", "subnetIds"], "expected at least one subnet id");
    for (const [name, l] of Object.entries(c.labelConfigs)) {
      l.instanceTypes.forEach((type, i) => {
        if (isArm64InstanceType(type) !== (l.arch === "arm64"))
          issue(
            ["labelConfigs", name, "instanceTypes", i],
            `expected an ${l.arch} instance type (arch is ${l.arch}; ${type} is ${l.arch === "arm64" ? "x64" : "arm64"})`,
          );
      });
      if (l.maxRunners > c.limits.maxRunnersTotal)
        issue(
          ["labelConfigs", name, "maxRunners"],
          `expected at most limits.maxRunnersTotal (${c.limits.maxRunnersTotal})`,
        );
      const largestPool = Math.max(l.pool.size, l.pool.schedule?.size ?? 0);
      if (largestPool > l.maxRunners)
        issue(
          [
            "labelConfigs",
            name,
            "pool",
            l.pool.schedule && l.pool.schedule.size > l.pool.size ? "schedule" : "size",
          ],
          `expected a pool no larger than the config's maxRunners (${l.maxRunners}): warming members count against it`,
        );
      if (largestPool > 0 && l.spotPolicy === "spotOnly")
        issue(
          ["labelConfigs", name, "spotPolicy"],
          'expected "spotPreferred" or "onDemandOnly" with a pool: pool members are on-demand (a one-time spot instance cannot be stopped)',
        );
      const window = l.pool.schedule;
      // Compared only when both are clock times (a malformed one has its own message).
      const clock = /^\d\d:\d\d$/;
      if (window && clock.test(window.from) && clock.test(window.to) && window.from >= window.to)
        issue(
          ["labelConfigs", name, "pool", "schedule", "to"],
          `expected a time after from (${window.from}): the window is one day's [from, to)`,
        );
      if (!c.imagePipeline.enabled && l.amiId === undefined)
        issue(["labelConfigs", name, "amiId"], "expected an AMI id: the image pipeline is disabled");
    }
    if (c.limits.idleTimeoutMinutes >= c.limits.maxRuntimeMinutes)
      issue(["limits", "idleTimeoutMinutes"], "expected less than limits.maxRuntimeMinutes");
    if (c.imagePipeline.runnerVersionPolicy === "pinned" && c.imagePipeline.runnerVersion === undefined)
      issue(
        ["imagePipeline", "runnerVersion"],
        'expected a runner version like "2.329.0" when the policy is pinned',
      );
    if (
      c.imagePipeline.runnerVersionPolicy === "latest" &&
      (c.imagePipeline.runnerVersion || c.imagePipeline.runnerSha256)
    )
      issue(
        ["imagePipeline", "runnerVersionPolicy"],
        'expected "pinned" when runnerVersion or runnerSha256 is set (or remove them)',
      );
    for (const conflict of routingConflicts(labelRoutesOf(c.labelConfigs))) {
      issue(["labelConfigs"], conflict);
    }
  });

export type StackConfig = z.output<typeof stackConfigSchema>;
export type LabelConfigInput = StackConfig["labelConfigs"][string];

export function labelRoutesOf(configs: StackConfig["labelConfigs"]): LabelRoute[] {
  return Object.entries(configs).map(([name, l]) => ({ name, labels: l.labels }));
}

/**
 * Two configs one `runs-on` could both match, as messages. The webhook's own rule
 * (lambda/core/routing.ts), so deploy time and run time agree.
 */
function routingConflicts(routes: LabelRoute[]): string[] {
  return findRoutingConflicts(routes, REQUIRED_LABEL).map(
    (c) => `expected label configs no job can match equally: ${c.message}`,
  );
}
