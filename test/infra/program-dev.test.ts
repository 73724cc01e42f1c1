// biome-ignore-all lint/suspicious/noExplicitAny: resource inputs under mocks are untyped JSON
/**
 * The whole program under Pulumi mocks with the example stack (Pulumi.dev.yaml: github.com org,
 * App mode, one x64 and one arm64 label config) plus its secrets, asserted resource by resource.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { decode } from "@jridgewell/sourcemap-codec";
import { beforeAll, describe, expect, it } from "vitest";
import { HANDOFF_TABLE, JOBS_TABLE } from "../../lambda/shared/tables";
import { settingsReadBy } from "../../src/packaging/settings-env";
import { type Declared, isSecretValue, type ProgramRun, plain, runProgram, statementsOf } from "./mocks";
import { APP_SECRETS, devStackValues, ROOT, withAppId, withSecrets } from "./stack-config";

const T = {
  fn: "aws:lambda/function:Function",
  role: "aws:iam/role:Role",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  lt: "aws:ec2/launchTemplate:LaunchTemplate",
  table: "aws:dynamodb/table:Table",
  queue: "aws:sqs/queue:Queue",
  param: "aws:ssm/parameter:Parameter",
  alarm: "aws:cloudwatch/metricAlarm:MetricAlarm",
};
const secretValues = Object.values(APP_SECRETS);

let run: ProgramRun;
beforeAll(async () => {
  const { config, secretKeys } = withSecrets(withAppId(devStackValues()), APP_SECRETS);
  run = await runProgram(config, secretKeys);
}, 600_000);

const bySid = (statements: any[], sid: string) => {
  const found = statements.find((s) => s.Sid === sid);
  if (!found) throw new Error(`no statement ${sid} in ${statements.map((s) => s.Sid).join(", ")}`);
  return found;
};

describe("network", () => {
  it("creates a VPC with public subnets in three AZs and no NAT gateway", () => {
    const [vpc] = run.ofType("awsx:ec2:Vpc");
    expect(vpc!.inputs).toMatchObject({
      numberOfAvailabilityZones: 3,
      natGateways: { strategy: "None" },
      subnetSpecs: [{ type: "Public" }],
    });
  });

  it("gives runners an egress-only security group", () => {
    const [sg] = run.ofType("aws:ec2/securityGroup:SecurityGroup");
    expect(sg!.inputs.ingress).toEqual([]);
    expect(sg!.inputs.egress).toEqual([
      expect.objectContaining({ protocol: "-1", cidrBlocks: ["0.0.0.0/0"] }),
    ]);
  });
});

describe("launch templates", () => {
  const templates = () => run.ofType(T.lt);

  it("one per label config, named by stack and config, new versions live for $Latest", () => {
    expect(
      templates()
        .map((t) => t.inputs.name)
        .sort(),
    ).toEqual(["runner-fleet-dev-linux-arm64-medium", "runner-fleet-dev-linux-x64-large"]);
    for (const t of templates()) expect(t.inputs.updateDefaultVersion).toBe(true);
  });

  it("require IMDSv2 with hop limit 1, terminate on shutdown, encrypted gp3 root", () => {
    for (const t of templates()) {
      expect(t.inputs.metadataOptions).toMatchObject({ httpTokens: "required", httpPutResponseHopLimit: 1 });
      expect(t.inputs.instanceInitiatedShutdownBehavior).toBe("terminate");
      expect(t.inputs.blockDeviceMappings).toEqual([
        { deviceName: "/dev/sda1", ebs: expect.objectContaining({ volumeType: "gp3", encrypted: "true" }) },
      ]);
    }
    const x64 = templates().find((t) => t.inputs.name.endsWith("x64-large"))!;
    expect(x64.inputs.blockDeviceMappings[0].ebs.volumeSize).toBe(100);
  });

  it("resolve the AMI from the pipeline's parameter at launch time", () => {
    const images = Object.fromEntries(templates().map((t) => [t.inputs.name, t.inputs.imageId]));
    expect(images).toEqual({
      "runner-fleet-dev-linux-x64-large": "resolve:ssm:/runner-fleet/dev/ami/x64",
      "runner-fleet-dev-linux-arm64-medium": "resolve:ssm:/runner-fleet/dev/ami/arm64",
    });
  });

  it("use the runner profile and security group, with a public IP, and tag what they create", () => {
    const [profile] = run
      .ofType("aws:iam/instanceProfile:InstanceProfile")
      .filter((p) => p.name === "runners");
    const [sg] = run.ofType("aws:ec2/securityGroup:SecurityGroup");
    for (const t of templates()) {
      expect(t.inputs.iamInstanceProfile).toEqual({ arn: profile!.state.arn });
      expect(t.inputs.networkInterfaces).toEqual([
        expect.objectContaining({
          deviceIndex: 0,
          associatePublicIpAddress: "true",
          securityGroups: [sg!.id],
        }),
      ]);
      expect(t.inputs.tags["runner-fleet:stack"]).toBe("dev");
      for (const spec of t.inputs.tagSpecifications) expect(spec.tags["runner-fleet:stack"]).toBe("dev");
    }
  });

  it("carry the bootstrap script as user data, with the hand-off table and role id and no secret", () => {
    const runnerRole = run.named(T.role, "runners");
    for (const t of templates()) {
      const script = Buffer.from(t.inputs.userData, "base64").toString("utf8");
      expect(script.startsWith("#!/bin/bash")).toBe(true);
      expect(script).toContain("HANDOFF_TABLE='runner-fleet-dev-handoff'");
      expect(script).toContain(`RUNNER_ROLE_ID='${runnerRole.state.uniqueId}'`);
      for (const secret of secretValues) expect(script).not.toContain(secret.trim());
    }
  });

  it("publish each label config as the JSON the launcher reads, with its template id", () => {
    const params = run
      .ofType(T.param)
      .filter((p) => p.inputs.name.startsWith("/runner-fleet/dev/label-configs/"));
    expect(params).toHaveLength(2);
    const arm = JSON.parse(
      plain(params.find((p) => p.inputs.name.endsWith("linux-arm64-medium"))!.inputs.value),
    );
    const lt = run.ofType(T.lt).find((t) => t.inputs.name.endsWith("linux-arm64-medium"))!;
    expect(arm).toEqual({
      name: "linux-arm64-medium",
      labels: ["linux", "arm64", "graviton", "medium"],
      arch: "arm64",
      instanceTypes: ["m7g.large", "m6g.large", "c7g.xlarge"],
      launchTemplateId: lt.id,
      launchTemplateVersion: 1,
      spotPolicy: "spotOnly",
      spotFailuresBeforeOnDemand: 2,
      allocationStrategy: "price-capacity-optimized",
      maxRunners: 10,
      retryOnInterruption: true,
      runnerGroupId: 1,
      // What a stopped pool member costs idle, and where rotation finds the config's current AMI.
      diskSizeGb: 50,
      image: { parameter: "/runner-fleet/dev/ami/arm64" },
    });
  });
});

describe("runner role", () => {
  it("may only update its own hand-off item, keyed by its aws:userid", () => {
    const statements = statementsOf(run.named(T.rolePolicy, "runners").inputs.policy);
    expect(statements).toHaveLength(1);
    expect(statements[0]).toMatchObject({
      Effect: "Allow",
      Action: ["dynamodb:UpdateItem"],
      Resource: ["arn:aws:dynamodb:eu-west-1:123456789012:table/runner-fleet-dev-handoff"],
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the IAM policy variable, literally
      Condition: { "ForAllValues:StringEquals": { "dynamodb:LeadingKeys": ["${aws:userid}"] } },
    });
    expect(JSON.parse(run.named(T.role, "runners").inputs.assumeRolePolicy).Statement[0].Principal).toEqual({
      Service: "ec2.amazonaws.com",
    });
  });
});

describe("ledger and queue", () => {
  it("jobs table: on demand, TTL, point-in-time recovery, the indexes of tables.ts", () => {
    const jobs = run.ofType(T.table).find((t) => t.inputs.name === "runner-fleet-dev-jobs")!;
    expect(jobs.inputs).toMatchObject({
      billingMode: "PAY_PER_REQUEST",
      hashKey: JOBS_TABLE.hashKey,
      ttl: { attributeName: JOBS_TABLE.ttlAttribute, enabled: true },
      pointInTimeRecovery: { enabled: true },
    });
    expect(jobs.inputs.globalSecondaryIndexes.map((i: any) => [i.name, i.hashKey, i.rangeKey])).toEqual(
      JOBS_TABLE.indexes.map((i) => [i.name, i.hashKey, i.rangeKey]),
    );
    expect(jobs.inputs.attributes.map((a: any) => a.name).sort()).toEqual([...JOBS_TABLE.attributes].sort());
  });

  it("hand-off table: on demand, TTL, KMS encryption", () => {
    const handoff = run.ofType(T.table).find((t) => t.inputs.name === "runner-fleet-dev-handoff")!;
    expect(handoff.inputs).toMatchObject({
      billingMode: "PAY_PER_REQUEST",
      hashKey: HANDOFF_TABLE.hashKey,
      ttl: { attributeName: HANDOFF_TABLE.ttlAttribute, enabled: true },
      serverSideEncryption: { enabled: true },
    });
  });

  it("launch queue: SSE, a DLQ, and a visibility timeout covering the launcher's retries", () => {
    const queue = run.ofType(T.queue).find((q) => q.inputs.name === "runner-fleet-dev-launch")!;
    const dlq = run.ofType(T.queue).find((q) => q.inputs.name === "runner-fleet-dev-launch-dlq")!;
    expect(queue.inputs.sqsManagedSseEnabled).toBe(true);
    expect(dlq.inputs.sqsManagedSseEnabled).toBe(true);
    expect(JSON.parse(queue.inputs.redrivePolicy)).toEqual({
      deadLetterTargetArn: dlq.state.arn,
      // Pulumi.dev.yaml: queueTimeoutMinutes 60 → up to 720 re-delays of 5 s, plus slack.
      maxReceiveCount: 730,
    });
    expect(queue.inputs.visibilityTimeoutSeconds).toBe(6 * run.fnNamed("launcher").inputs.timeout);
  });

  it("feeds the launcher in batches that report item failures", () => {
    const [mapping] = run.ofType("aws:lambda/eventSourceMapping:EventSourceMapping");
    expect(mapping!.inputs).toMatchObject({
      functionName: run.fnNamed("launcher").state.arn,
      functionResponseTypes: ["ReportBatchItemFailures"],
    });
    // A lone job is launched at once; in a burst the backlog fills the batches.
    expect(mapping!.inputs.maximumBatchingWindowInSeconds).toBe(0);
    expect(mapping!.inputs.batchSize).toBe(10);
  });

  it("gives the launchers GitHub's JIT rate per App, for the budget they share", () => {
    const [mapping] = run.ofType("aws:lambda/eventSourceMapping:EventSourceMapping");
    expect(mapping!.inputs.scalingConfig.maximumConcurrency).toBeGreaterThanOrEqual(2);
    // The launchers take from one bucket (github-budget.ts): each sees the whole per-App rate.
    expect(run.fnNamed("launcher").inputs.environment.variables.GITHUB_WRITES_PER_MINUTE).toBe("180");
  });
});

describe("lambdas", () => {
  const names = ["webhook", "launcher", "reconciler", "ec2-events", "janitor"];

  it("are the esbuild bundles on nodejs22.x arm64, each with its own role and log group", async () => {
    const fns = run.ofType(T.fn);
    expect(fns.map((f) => f.inputs.name).sort()).toEqual(names.map((n) => `runner-fleet-dev-${n}`).sort());
    expect(new Set(fns.map((f) => f.inputs.role)).size).toBe(fns.length);
    for (const f of fns) {
      expect(f.inputs).toMatchObject({
        runtime: "nodejs22.x",
        architectures: ["arm64"],
        handler: "index.handler",
      });
      const bundle = await f.inputs.code.path;
      expect(bundle).toMatch(new RegExp(`dist/${f.inputs.name.replace("runner-fleet-dev-", "")}$`));
      expect(existsSync(`${bundle}/index.mjs`)).toBe(true);
      const logGroup = run.ofType(T.logGroup).find((g) => g.inputs.name === `/aws/lambda/${f.inputs.name}`)!;
      expect(logGroup.inputs.retentionInDays).toBe(30);
      expect(f.inputs.loggingConfig).toEqual({ logFormat: "JSON", logGroup: logGroup.inputs.name });
    }
  });

  it("hold no secret in their environment, only parameter names", () => {
    for (const f of run.ofType(T.fn)) {
      const env = JSON.stringify(f.inputs.environment);
      for (const secret of secretValues) expect(env).not.toContain(secret.trim().slice(0, 30));
    }
    expect(run.fnNamed("webhook").inputs.environment.variables).toMatchObject({
      WEBHOOK_SECRET_PARAM: "/runner-fleet/dev/github/webhook-secret",
      JOBS_TABLE: "runner-fleet-dev-jobs",
      LAUNCH_QUEUE_URL: expect.stringContaining("runner-fleet-dev-launch"),
      LABEL_ROUTES: JSON.stringify([
        { name: "linux-x64-large", labels: ["linux", "x64", "large"] },
        { name: "linux-arm64-medium", labels: ["linux", "arm64", "graviton", "medium"] },
      ]),
      POWERTOOLS_METRICS_NAMESPACE: "RunnerFleet",
    });
    expect(run.fnNamed("launcher").inputs.environment.variables).toMatchObject({
      GITHUB_AUTH_MODE: "app",
      GITHUB_APP_ID: "123456",
      GITHUB_PRIVATE_KEY_PARAM: "/runner-fleet/dev/github/app-private-key",
      RUNNER_ROLE_ID: run.named(T.role, "runners").state.uniqueId,
      SUBNET_IDS: "subnet-0aaaaaaaaaaaaaaa1,subnet-0aaaaaaaaaaaaaaa2,subnet-0aaaaaaaaaaaaaaa3",
      LABEL_CONFIG_PATH: "/runner-fleet/dev/label-configs",
      HANDOFF_TABLE: "runner-fleet-dev-handoff",
      MAX_RUNNERS_TOTAL: "30",
    });
  });

  it("write only their own log group", () => {
    for (const name of names) {
      const logs = bySid(run.statementsOfFunction(name), "WriteOwnLogs");
      expect(logs.Action).toEqual(["logs:CreateLogStream", "logs:PutLogEvents"]);
      expect(logs.Resource).toEqual([
        `arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/runner-fleet-dev-${name}:*`,
      ]);
    }
  });

  it("read exactly their secret parameters, decrypting only through SSM", () => {
    const param = (n: string) => `arn:aws:ssm:eu-west-1:123456789012:parameter/runner-fleet/dev/github/${n}`;
    expect(bySid(run.statementsOfFunction("webhook"), "ReadSecretParameters").Resource).toEqual([
      param("webhook-secret"),
    ]);
    for (const name of ["launcher", "reconciler", "janitor"])
      expect(bySid(run.statementsOfFunction(name), "ReadSecretParameters").Resource).toEqual([
        param("app-private-key"),
      ]);
    // ec2-events never talks to GitHub: no secret at all.
    const ec2Events = run.statementsOfFunction("ec2-events").flatMap((s) => s.Action);
    expect(ec2Events.filter((a: string) => a.startsWith("ssm:") || a.startsWith("kms:"))).toEqual([]);
    const decrypt = bySid(run.statementsOfFunction("webhook"), "DecryptViaSsm");
    expect(decrypt.Action).toEqual(["kms:Decrypt"]);
    expect(decrypt.Condition.StringEquals).toEqual({ "kms:ViaService": "ssm.eu-west-1.amazonaws.com" });
  });

  it("launcher: launches only from the stack's templates, tags on create, passes only the runner role", () => {
    const s = run.statementsOfFunction("launcher");
    const templates = run
      .ofType(T.lt)
      .map((t) => t.state.arn)
      .sort();
    const fromTemplates = { "ec2:LaunchTemplate": expect.arrayContaining(templates) };
    expect([...bySid(s, "FleetFromStackTemplates").Resource].sort()).toEqual(templates);
    for (const sid of [
      "RunFromStackTemplates",
      "RunStackTaggedInstances",
      "RunInStackSubnets",
      "RunPipelineImages",
    ])
      expect(bySid(s, sid).Condition.ArnEquals, sid).toEqual(fromTemplates);
    const subnets = (ids: string[]) => ids.map((id) => `arn:aws:ec2:eu-west-1:123456789012:subnet/${id}`);
    const runnerSubnets = subnets([
      "subnet-0aaaaaaaaaaaaaaa1",
      "subnet-0aaaaaaaaaaaaaaa2",
      "subnet-0aaaaaaaaaaaaaaa3",
    ]);
    expect(bySid(s, "FleetInStackSubnets").Resource).toEqual(runnerSubnets);
    expect(bySid(s, "RunInStackSubnets").Resource).toEqual(runnerSubnets);
    const stackTagOnCreate = { "aws:RequestTag/runner-fleet:stack": "dev" };
    expect(bySid(s, "FleetOfStackTaggedInstances").Condition).toEqual({ StringEquals: stackTagOnCreate });
    expect(bySid(s, "RunStackTaggedInstances").Condition.StringEquals).toEqual(stackTagOnCreate);
    expect(bySid(s, "RunPipelineImages").Condition.StringEquals).toEqual({
      "ec2:Owner": "123456789012",
      "aws:ResourceTag/runner-fleet:stack": "dev",
    });
    expect(bySid(s, "TagOnCreate").Condition).toEqual({
      StringEquals: { "ec2:CreateAction": ["CreateFleet", "RunInstances"], ...stackTagOnCreate },
    });
    expect(bySid(s, "TerminateStackInstances").Condition).toEqual({
      StringEquals: { "aws:ResourceTag/runner-fleet:stack": "dev" },
    });
    const pass = bySid(s, "PassRunnerRole");
    expect(pass.Resource).toEqual([run.named(T.role, "runners").state.arn]);
    expect(pass.Condition).toEqual({ StringEquals: { "iam:PassedToService": "ec2.amazonaws.com" } });
    expect(bySid(s, "ResolveRunnerAmis").Resource).toEqual([
      "arn:aws:ssm:eu-west-1:123456789012:parameter/runner-fleet/dev/ami/x64",
      "arn:aws:ssm:eu-west-1:123456789012:parameter/runner-fleet/dev/ami/arm64",
    ]);
  });

  it("janitor: deregisters and deletes only the stack's images and Image Builder's snapshots", () => {
    const s = run.statementsOfFunction("janitor");
    expect(bySid(s, "DeregisterStackImages").Condition).toEqual({
      StringEquals: { "aws:ResourceTag/runner-fleet:stack": "dev" },
    });
    const conditions = s.filter((st) => st.Action.includes("ec2:DeleteSnapshot")).map((st) => st.Condition);
    expect(conditions).toEqual([
      { StringEquals: { "aws:ResourceTag/CreatedBy": "EC2 Image Builder" } },
      { StringEquals: { "aws:ResourceTag/runner-fleet:stack": "dev" } },
    ]);
  });

  it("only Describe calls (which AWS cannot scope) use a wildcard resource", () => {
    for (const name of names) {
      for (const statement of run.statementsOfFunction(name)) {
        if (statement.Resource.includes("*")) {
          expect(statement.Resource, `${name} ${statement.Sid}`).toEqual(["*"]);
          for (const action of statement.Action)
            expect(action, `${name} ${statement.Sid}`).toMatch(/^ec2:Describe/);
        }
      }
    }
  });

  it("the webhook cannot touch EC2, the hand-off table or other functions' secrets", () => {
    const actions = run.statementsOfFunction("webhook").flatMap((s) => s.Action);
    expect(actions.filter((a: string) => a.startsWith("ec2:") || a.startsWith("iam:"))).toEqual([]);
    const resources = JSON.stringify(run.statementsOfFunction("webhook").map((s) => s.Resource));
    expect(resources).not.toContain("handoff");
    expect(resources).not.toContain("app-private-key");
  });
});

describe("secrets", () => {
  it("are SSM SecureString parameters holding the configured values", () => {
    const secure = run.ofType(T.param).filter((p) => p.inputs.type === "SecureString");
    for (const p of secure) expect(isSecretValue(p.inputs.value), p.inputs.name).toBe(true);
    expect(Object.fromEntries(secure.map((p) => [p.inputs.name, plain(p.inputs.value)]))).toEqual({
      "/runner-fleet/dev/github/webhook-secret": APP_SECRETS.webhookSecret,
      "/runner-fleet/dev/github/app-private-key": APP_SECRETS.githubAppPrivateKey,
    });
  });

  it("are in no other resource's inputs", () => {
    for (const r of run.resources) {
      if (r.type === T.param && r.inputs.type === "SecureString") continue;
      const text = JSON.stringify(r.inputs);
      for (const secret of secretValues)
        expect(text, `${r.type} ${r.name}`).not.toContain(secret.trim().slice(0, 30));
    }
  });
});

describe("intake", () => {
  it("routes POST /webhook of an HTTP API to the webhook Lambda, throttled on $default", () => {
    const api = run.ofType("aws:apigatewayv2/api:Api")[0]!;
    expect(api.inputs.protocolType).toBe("HTTP");
    const [route] = run.ofType("aws:apigatewayv2/route:Route");
    expect(route!.inputs.routeKey).toBe("POST /webhook");
    const [integration] = run.ofType("aws:apigatewayv2/integration:Integration");
    expect(integration!.inputs).toMatchObject({
      integrationUri: run.fnNamed("webhook").state.arn,
      payloadFormatVersion: "2.0",
    });
    const [stage] = run.ofType("aws:apigatewayv2/stage:Stage");
    expect(stage!.inputs.name).toBe("$default");
    expect(stage!.inputs.defaultRouteSettings.throttlingRateLimit).toBeGreaterThan(0);
    expect(stage!.inputs.defaultRouteSettings.throttlingBurstLimit).toBeGreaterThan(0);
  });

  it("lets only this API's route invoke the webhook", () => {
    const permission = run.named("aws:lambda/permission:Permission", "intake");
    expect(permission.inputs).toMatchObject({
      principal: "apigateway.amazonaws.com",
      function: "runner-fleet-dev-webhook",
      sourceArn: "arn:aws:execute-api:eu-west-1:123456789012:abc123/*/POST/webhook",
    });
  });
});

describe("events", () => {
  const rules = () => run.ofType("aws:cloudwatch/eventRule:EventRule");
  const targetOf = (rule: Declared) =>
    run.ofType("aws:cloudwatch/eventTarget:EventTarget").find((t) => t.inputs.rule === rule.inputs.name)!;

  it("sends spot interruption warnings and state changes to ec2-events, and a 1-minute schedule to the reconciler", () => {
    const byDetail = (detail: string) =>
      rules().find(
        (r) => r.inputs.eventPattern && JSON.parse(r.inputs.eventPattern)["detail-type"]?.includes(detail),
      )!;
    expect(targetOf(byDetail("EC2 Spot Instance Interruption Warning")).inputs.arn).toBe(
      run.fnNamed("ec2-events").state.arn,
    );
    expect(targetOf(byDetail("EC2 Instance State-change Notification")).inputs.arn).toBe(
      run.fnNamed("ec2-events").state.arn,
    );
    const schedule = rules().find((r) => r.inputs.scheduleExpression)!;
    expect(schedule.inputs.scheduleExpression).toBe("rate(1 minute)");
    expect(targetOf(schedule).inputs.arn).toBe(run.fnNamed("reconciler").state.arn);
  });
});

describe("image pipeline", () => {
  it("builds x64 and arm64 recipes on the Ubuntu 24.04 managed images from the repository's components", () => {
    const recipes = run.ofType("aws:imagebuilder/imageRecipe:ImageRecipe");
    expect(recipes.map((r) => r.inputs.parentImage).sort()).toEqual([
      "arn:aws:imagebuilder:eu-west-1:aws:image/ubuntu-server-24-lts-arm64/x.x.x",
      "arn:aws:imagebuilder:eu-west-1:aws:image/ubuntu-server-24-lts-x86/x.x.x",
    ]);
    const components = run.ofType("aws:imagebuilder/component:Component");
    expect(components.length).toBeGreaterThanOrEqual(3);
    for (const c of components) expect(c.inputs.data).toMatch(/phases:/);
    for (const r of recipes) expect(r.inputs.components).toHaveLength(components.length);
  });

  it("builds with IMDSv2 in the stack's subnet and security group", () => {
    for (const infra of run.ofType(
      "aws:imagebuilder/infrastructureConfiguration:InfrastructureConfiguration",
    )) {
      expect(infra.inputs.instanceMetadataOptions).toEqual({
        httpTokens: "required",
        httpPutResponseHopLimit: 1,
      });
      expect(infra.inputs.subnetId).toBe("subnet-0aaaaaaaaaaaaaaa1");
      expect(infra.inputs.securityGroupIds).toHaveLength(1);
      // Build instances must not look like the stack's runners (the reconciler reaps those).
      expect(infra.inputs.resourceTags).not.toHaveProperty("runner-fleet:stack");
    }
  });

  it("distributes each new AMI to the parameter the launch templates resolve, tagged for cleanup", () => {
    const distributions = run.ofType("aws:imagebuilder/distributionConfiguration:DistributionConfiguration");
    const params = distributions
      .map((d) => d.inputs.distributions[0].ssmParameterConfigurations[0].parameterName)
      .sort();
    expect(params).toEqual(["/runner-fleet/dev/ami/arm64", "/runner-fleet/dev/ami/x64"]);
    for (const d of distributions)
      expect(d.inputs.distributions[0].amiDistributionConfiguration.amiTags["runner-fleet:stack"]).toBe(
        "dev",
      );
  });

  it("rebuilds on the configured schedule and builds a first image during the deploy", () => {
    for (const p of run.ofType("aws:imagebuilder/imagePipeline:ImagePipeline"))
      expect(p.inputs.schedule.scheduleExpression).toBe("cron(0 4 ? * sun *)");
    expect(run.ofType("aws:imagebuilder/image:Image")).toHaveLength(2);
    const imageUrns = run.ofType("aws:imagebuilder/image:Image").map((i) => i.urn);
    for (const t of run.ofType(T.lt)) expect(t.dependsOn).toEqual(expect.arrayContaining(imageUrns));
  });
});

describe("observability", () => {
  it("alarms on running instances, DLQ, launcher errors and timed-out jobs, to the SNS topic", () => {
    const topic = run.ofType("aws:sns/topic:Topic")[0]!;
    const alarms: Record<string, any> = Object.fromEntries(
      run.ofType(T.alarm).map((a) => [a.inputs.name, a.inputs]),
    );
    expect(Object.keys(alarms).sort()).toEqual(
      ["dlq-not-empty", "jobs-timed-out", "launcher-errors", "running-instances"].map(
        (n) => `runner-fleet-dev-${n}`,
      ),
    );
    for (const alarm of Object.values(alarms)) expect(alarm.alarmActions).toEqual([topic.state.arn]);
    expect(alarms["runner-fleet-dev-running-instances"]!.threshold).toBe(30);
    expect(alarms["runner-fleet-dev-dlq-not-empty"]).toMatchObject({
      dimensions: { QueueName: "runner-fleet-dev-launch-dlq" },
      threshold: 0,
      comparisonOperator: "GreaterThanThreshold",
    });
    expect(alarms["runner-fleet-dev-launcher-errors"]!.dimensions).toEqual({
      FunctionName: "runner-fleet-dev-launcher",
    });
    const [subscription] = run.ofType("aws:sns/topicSubscription:TopicSubscription");
    expect(subscription!.inputs).toMatchObject({
      protocol: "email",
      endpoint: "platform-oncall@example.com",
    });
  });

  it("budgets the stack's cost-allocation tag monthly", () => {
    const [budget] = run.ofType("aws:budgets/budget:Budget");
    expect(budget!.inputs).toMatchObject({
      budgetType: "COST",
      timeUnit: "MONTHLY",
      limitAmount: "300.00",
      limitUnit: "USD",
      costFilters: [{ name: "TagKeyValue", values: ["user:runner-fleet:stack$dev"] }],
    });
  });

  it("has a dashboard with the fleet's metrics", () => {
    const [dashboard] = run.ofType("aws:cloudwatch/dashboard:Dashboard");
    const titles = JSON.parse(dashboard!.inputs.dashboardBody).widgets.map((w: any) => w.properties.title);
    expect(titles.join("|")).toMatch(
      /queue depth.*Jobs.*latency.*Spot vs on-demand.*Stopped pools.*interruptions.*errors/is,
    );
  });
});

describe("tags, GitHub wiring, cleanup and outputs", () => {
  it("tags every AWS resource with the stack through the provider's default tags", () => {
    const [provider] = run.ofType("pulumi:providers:aws");
    expect(JSON.parse(provider!.inputs.defaultTags).tags).toMatchObject({ "runner-fleet:stack": "dev" });
    expect(provider!.inputs.region).toBe("eu-west-1");
  });

  it("creates no GitHub webhook in App mode (the App's webhook is set by its setup)", () => {
    expect(run.resources.filter((r) => r.type.startsWith("github:"))).toEqual([]);
  });

  it("runs the janitor on destroy, before the network, runner role and launch templates go", () => {
    const [invocation] = run.ofType("aws:lambda/invocation:Invocation");
    expect(invocation!.inputs.lifecycleScope).toBe("CRUD");
    expect(JSON.parse(invocation!.inputs.input)).toEqual({
      stackName: "dev",
      scope: "org",
      owner: "my-org",
      repositories: [],
      amiParameterNames: ["/runner-fleet/dev/ami/x64", "/runner-fleet/dev/ami/arm64"],
    });
    const urnOf = (type: string) => run.ofType(type).map((r) => r.urn);
    for (const urn of [
      ...urnOf("awsx:ec2:Vpc"),
      ...urnOf("aws:ec2/securityGroup:SecurityGroup"),
      ...urnOf(T.lt),
      ...urnOf("aws:iam/instanceProfile:InstanceProfile"),
      run.named(T.role, "runners").urn,
    ])
      expect(invocation!.dependsOn, urn).toContain(urn);
    const [mapping] = run.ofType("aws:lambda/eventSourceMapping:EventSourceMapping");
    // Launches and schedules stop before the janitor runs.
    expect(mapping!.dependsOn).toContain(invocation!.urn);
    for (const target of run.ofType("aws:cloudwatch/eventTarget:EventTarget"))
      expect(target.dependsOn).toContain(invocation!.urn);
  });

  it("exports the webhook URL, dashboard, tables, queues and AMI parameters", () => {
    expect(run.outputs).toMatchObject({
      webhookUrl: "https://abc123.execute-api.eu-west-1.amazonaws.com/webhook",
      dashboardUrl: expect.stringContaining("#dashboards:name=runner-fleet-dev"),
      jobsTableName: "runner-fleet-dev-jobs",
      handoffTableName: "runner-fleet-dev-handoff",
      poolTableName: "runner-fleet-dev-pool",
      launchQueueName: "runner-fleet-dev-launch",
      deadLetterQueueName: "runner-fleet-dev-launch-dlq",
      amiParameterNames: { x64: "/runner-fleet/dev/ami/x64", arm64: "/runner-fleet/dev/ami/arm64" },
    });
  });
});

describe("IAM matches what each Lambda's code calls", () => {
  /**
   * IAM actions a shipped bundle calls: EC2 through the SDK (its command classes survive
   * minification by operation name); DynamoDB, SQS and SSM through the JSON-protocol client
   * (adapters/aws-json.ts), found as `dynamodb("PutItem", …)` in the lambda/ sources, counted only
   * where the source map shows the call made it into the bundle (not tree-shaken away).
   */
  function actionsIn(name: string): Set<string> {
    const dir = join(ROOT, "dist", name);
    const files = readdirSync(dir);
    const actions = new Set<string>();
    for (const file of files.filter((f) => f.endsWith(".mjs"))) {
      const code = readFileSync(join(dir, file), "utf8");
      for (const m of code.matchAll(/class extends [\w$]+\([\w$]+,[\w$]+,"(\w+)",/g))
        actions.add(`ec2:${m[1]}`);
      const map = JSON.parse(readFileSync(join(dir, `${file}.map`), "utf8")) as {
        sources: string[];
        sourcesContent: string[];
        mappings: string;
      };
      const bundledLines = new Set(
        decode(map.mappings).flatMap((segments) =>
          segments.filter((s) => s.length >= 4).map((s) => `${s[1]}:${s[2]}`),
        ),
      );
      map.sources.forEach((source, index) => {
        if (source.includes("node_modules") || !/(^|\/)lambda\//.test(source)) return;
        const content = map.sourcesContent[index] ?? "";
        for (const m of content.matchAll(/\b(dynamodb|sqs|ssm)\(\s*"(\w+)"/g)) {
          const line = content.slice(0, m.index).split("\n").length - 1;
          if (bundledLines.has(`${index}:${line}`)) actions.add(`${m[1]}:${m[2]}`);
        }
      });
    }
    // Batch APIs are authorized as their single forms.
    return new Set([...actions].map((action) => action.replace(/Batch$/, "")));
  }
  /** Operations of a module a function imports dynamically (so all its exports are bundled) but never calls. */
  const NOT_CALLED: Record<string, string[]> = {
    webhook: ["sqs:ChangeMessageVisibility"],
  };
  /** Granted for AWS's side of a call, not for a call in the code. */
  const ON_BEHALF = [
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "kms:Decrypt",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes", // the event source mapping
    "ec2:RunInstances",
    "ec2:CreateTags",
    "iam:PassRole",
    "iam:CreateServiceLinkedRole", // CreateFleet
    "ssm:GetParameters", // resolve:ssm in the launch templates
  ];

  it.each(["webhook", "launcher", "reconciler", "ec2-events", "janitor"])(
    "%s: every call is allowed, nothing else is",
    (name) => {
      const granted = new Set(run.statementsOfFunction(name).flatMap((s) => s.Action as string[]));
      const used = new Set([...actionsIn(name)].filter((a) => !(NOT_CALLED[name] ?? []).includes(a)));
      expect(
        [...used].filter((a) => !granted.has(a)),
        "called but not allowed",
      ).toEqual([]);
      expect(
        [...granted].filter((a) => !used.has(a) && !ON_BEHALF.includes(a)),
        "allowed but never called",
      ).toEqual([]);
    },
  );
});

describe("settings", () => {
  /** Variables settings.ts reads without a fallback: a function reading one fails without it. */
  function requiredVariables(): Set<string> {
    const source = readFileSync(join(ROOT, "lambda", "shared", "settings.ts"), "utf8");
    return new Set(
      [...source.matchAll(/r\.(?:str|int|json|list)(?:<[^>]*>)?\("([A-Z0-9_]+)"\)/g)].map((m) => m[1]!),
    );
  }
  // Set per auth mode: app mode sets the App's, token mode the token's.
  const MODE_DEPENDENT = ["GITHUB_APP_ID", "GITHUB_PRIVATE_KEY_PARAM", "GITHUB_TOKEN_PARAM"];
  /** Set by the Lambda runtime itself (and reserved: a function may not set them). */
  const LAMBDA_RUNTIME = [
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
  ];

  it.each(["webhook", "launcher", "reconciler", "ec2-events", "janitor"])(
    "%s gets every required setting its code reads",
    (name) => {
      const env = run.fnNamed(name).inputs.environment.variables;
      const required = requiredVariables();
      const missing = [...settingsReadBy(join(ROOT, "dist", name))].filter(
        (v) =>
          required.has(v) &&
          !MODE_DEPENDENT.includes(v) &&
          !LAMBDA_RUNTIME.includes(v) &&
          env[v] === undefined,
      );
      expect(missing).toEqual([]);
    },
  );

  it("App mode: the reconciler redelivers through the App's webhook, so it gets no webhook list", () => {
    expect(run.fnNamed("reconciler").inputs.environment.variables.GITHUB_AUTH_MODE).toBe("app");
    expect(run.fnNamed("reconciler").inputs.environment.variables).not.toHaveProperty("GITHUB_WEBHOOKS");
  });

  it("functions reading secrets restart when a secret's version changes; others do not", () => {
    for (const name of ["webhook", "launcher", "reconciler", "janitor"])
      expect(run.fnNamed(name).inputs.environment.variables).toHaveProperty("SECRETS_REVISION");
    expect(run.fnNamed("ec2-events").inputs.environment.variables).not.toHaveProperty("SECRETS_REVISION");
  });

  it("no function sets a variable Lambda reserves", () => {
    for (const f of run.ofType(T.fn)) {
      const names = Object.keys(f.inputs.environment.variables);
      expect(
        names.filter((n) => LAMBDA_RUNTIME.includes(n) || /^(AWS_|_|LAMBDA_)/.test(n)),
        f.inputs.name,
      ).toEqual([]);
    }
  });

  it("each function gets only the settings its code reads", () => {
    const webhook = Object.keys(run.fnNamed("webhook").inputs.environment.variables);
    expect(webhook).not.toContain("RUNNER_ROLE_ID");
    expect(webhook).not.toContain("SUBNET_IDS");
    expect(Object.keys(run.fnNamed("launcher").inputs.environment.variables)).toContain("RUNNER_ROLE_ID");
  });

  it("the webhook gets what it serves (owner and host; org scope: no repository list) and little else", () => {
    const env = run.fnNamed("webhook").inputs.environment.variables;
    expect(env).toMatchObject({ GITHUB_OWNER: "my-org", GITHUB_HOST: "github.com", RUNNER_SCOPE: "org" });
    expect(Object.keys(env).sort()).toEqual([
      "GITHUB_HOST",
      "GITHUB_OWNER",
      "JOBS_TABLE",
      "LABEL_ROUTES",
      "LAUNCH_QUEUE_URL",
      "NODE_OPTIONS",
      "POWERTOOLS_METRICS_NAMESPACE",
      "POWERTOOLS_SERVICE_NAME",
      "QUEUE_TIMEOUT_MINUTES",
      "REQUIRED_LABEL",
      "RUNNER_SCOPE",
      "SECRETS_REVISION",
      "STACK_NAME",
      "WEBHOOK_SECRET_PARAM",
    ]);
  });
});

describe("fleet metrics the dashboard and alarms read", () => {
  /** Every quoted string in lambda/ sources (metric names are literals there). */
  function lambdaLiterals(): Set<string> {
    const literals = new Set<string>();
    const walk = (dir: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (path.endsWith(".ts"))
          for (const m of readFileSync(path, "utf8").matchAll(/"([A-Za-z-]+)"/g)) literals.add(m[1]!);
      }
    };
    walk(join(ROOT, "lambda"));
    return literals;
  }
  /** Emitted as `Reconcile<Kind>` from a reconcile action kind (lambda/reconciler.ts). */
  const reconcileKind = (metric: string) =>
    metric.replace(/^Reconcile/, "").replace(/[A-Z]/g, (c, i) => (i ? "-" : "") + c.toLowerCase());

  it("are emitted by some Lambda", () => {
    const [dashboard] = run.ofType("aws:cloudwatch/dashboard:Dashboard");
    const body = dashboard!.inputs.dashboardBody as string;
    const names = new Set([...body.matchAll(/MetricName=\\"(\w+)\\"/g)].map((m) => m[1]!));
    for (const m of body.matchAll(/\["RunnerFleet","(\w+)"/g)) names.add(m[1]!);
    for (const alarm of run.ofType(T.alarm)) {
      if (alarm.inputs.namespace === "RunnerFleet") names.add(alarm.inputs.metricName);
      for (const q of alarm.inputs.metricQueries ?? [])
        if (q.metric?.namespace === "RunnerFleet") names.add(q.metric.metricName);
    }
    expect(names.size).toBeGreaterThan(8);
    const literals = lambdaLiterals();
    const emitted = (name: string) =>
      literals.has(name) || (name.startsWith("Reconcile") && literals.has(reconcileKind(name)));
    expect([...names].filter((n) => !emitted(n))).toEqual([]);
  });
});
