/**
 * The launcher Lambda against the sandbox: DynamoDB (dynalite), SQS, EC2 and SSM fakes, and the
 * GitHub fake. Jobs are seeded in the ledger, their messages sent to the launch queue, received as
 * the SQS event source would, handed to the handler and settled from its batch response; the tests
 * assert the recorded calls and the items left behind.
 */

import { CreateFleetCommand, type CreateFleetCommandOutput } from "@aws-sdk/client-ec2";
import type { SQSBatchResponse, SQSRecord } from "aws-lambda";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { ec2Client } from "../lambda/adapters/ec2-client";
import { tuneGitHub } from "../lambda/adapters/github-client";
import { readHandoff } from "../lambda/adapters/handoff";
import { createJob, getJob, updateJobFields } from "../lambda/adapters/jobs-table";
import { createRetryMarker, recordSpotInterruption } from "../lambda/adapters/reserved-items";
import { TAGS } from "../lambda/core/stack-identity";
import type { JobRecord } from "../lambda/shared/job";
import type { LabelConfig } from "../lambda/shared/label-config";
// Imported before sandbox.useEnv() sets POWERTOOLS_METRICS_DISABLED and the log level, so the logger
// and metrics keep their defaults (the EMF test reads the metrics).
import { logger } from "../lambda/shared/telemetry";
import {
  CONFIG_PATH,
  captureOutput,
  KEY_PARAM,
  linuxConfig,
  PAT_PARAM,
  putLabelConfigs,
  ROLE_ID,
  useGitHubFake,
} from "./lifecycle-support";
import { EC2_THROTTLE, type Sandbox, type SandboxQueue, startSandbox } from "./sandbox";
import { failNextOrgJitConfigs, type GitHubFake, githubErrors, startGitHubFake } from "./sandbox/github";
import { quietLambdaLogs } from "./webhook-support";

type Handler = (event: { Records: SQSRecord[] }) => Promise<SQSBatchResponse>;

// The metrics stay enabled here (the EMF test reads them): what the launcher prints is shown only
// when a test fails.
quietLambdaLogs();

let sandbox: Sandbox;
let github: GitHubFake;
let ghes: GitHubFake;
let queue: SandboxQueue;
let restoreEnv: () => void;
let handler: Handler;

const baseConfig: LabelConfig = linuxConfig;

let nextJobId = 1_000_000;

async function seedJobs(
  n: number,
  config: LabelConfig = baseConfig,
  fake: GitHubFake = github,
  extra: Partial<JobRecord> = {},
): Promise<JobRecord[]> {
  const now = new Date();
  const jobs: JobRecord[] = [];
  for (let i = 0; i < n; i++) {
    const job: JobRecord = {
      jobId: String(nextJobId++),
      state: "queued",
      configName: config.name,
      labels: config.labels,
      repo: `${fake.repo.owner}/${fake.repo.name}`,
      owner: fake.org,
      installationId: fake.installationId,
      runId: 42,
      githubHost: new URL(fake.url).host,
      deliveryId: `delivery-${nextJobId}`,
      lastAction: "queued",
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
      queuedAt: new Date(now.getTime() + i).toISOString(),
      expiresAt: Math.floor(now.getTime() / 1000) + 86_400,
      ...extra,
    };
    expect(await createJob(job)).toBe(true);
    sandbox.sqs.send(queue.url, JSON.stringify({ jobId: job.jobId, configName: job.configName }));
    jobs.push(job);
  }
  return jobs;
}

/** One invocation as the event source makes it: receive up to `max` messages, run, settle. */
async function runLauncher(max = 10): Promise<{ records: SQSRecord[]; response: SQSBatchResponse }> {
  const records: SQSRecord[] = [];
  while (records.length < max) {
    const got = sandbox.sqs.receive(queue.url, Math.min(10, max - records.length));
    if (got.length === 0) break;
    records.push(...got);
  }
  const response = await handler({ Records: records });
  sandbox.sqs.settle(queue.url, records, response);
  return { records, response };
}

/** Runs the launcher until the queue has nothing visible (messages delayed for later stay). */
async function drain(batch = 10, concurrency = 1): Promise<number> {
  let invocations = 0;
  for (;;) {
    const runs = await Promise.all(Array.from({ length: concurrency }, () => runLauncher(batch)));
    invocations += runs.filter((r) => r.records.length).length;
    if (runs.every((r) => r.records.length === 0)) return invocations;
  }
}

const fleetCalls = () => sandbox.callsTo("ec2", "CreateFleet").filter((c) => c.status === 200);
const liveInstances = () =>
  sandbox.ec2.instances().filter((i) => i.state === "pending" || i.state === "running");
const jobsOf = (jobs: JobRecord[]) => Promise.all(jobs.map((j) => getJob(j.jobId)));
/** A CreateFleet call's parameters as the EC2 fake parsed them (Query protocol: strings). */
interface FleetParams {
  ClientToken: string;
  TargetCapacitySpecification: { TotalTargetCapacity: string; DefaultTargetCapacityType: string };
  SpotOptions?: { AllocationStrategy?: string };
  LaunchTemplateConfigs: { LaunchTemplateSpecification: { LaunchTemplateId: string } }[];
}
const fleetParams = (i: number) => sandbox.callsTo("ec2", "CreateFleet")[i]?.params as FleetParams;

beforeAll(async () => {
  sandbox = await startSandbox();
  [github, ghes] = await Promise.all([
    startGitHubFake({ faults: sandbox.faults, clock: sandbox.clock }),
    startGitHubFake({ flavour: "ghes", org: "enterprise" }),
  ]);
  const tables = await sandbox.createTables();
  queue = sandbox.createQueue("launch", { dlq: { maxReceiveCount: 100 } });
  restoreEnv = sandbox.useEnv({
    STACK_NAME: "test",
    JOBS_TABLE: tables.jobs,
    HANDOFF_TABLE: tables.handoff,
    POOL_TABLE: tables.pool,
    LAUNCH_QUEUE_URL: queue.url,
    LABEL_CONFIG_PATH: CONFIG_PATH,
    GITHUB_PRIVATE_KEY_PARAM: KEY_PARAM,
    GITHUB_TOKEN_PARAM: PAT_PARAM,
    GITHUB_WRITES_PER_MINUTE: "60000",
    RUNNER_ROLE_ID: ROLE_ID,
    SUBNET_IDS: "subnet-0aaa,subnet-0bbb",
    MAX_RUNNERS_TOTAL: "1000",
    QUEUE_TIMEOUT_MINUTES: "60",
    POWERTOOLS_LOG_LEVEL: "ERROR",
    POWERTOOLS_METRICS_DISABLED: "true",
  });
  sandbox.ec2.addSubnet("subnet-0aaa", "us-east-1a");
  sandbox.ec2.addSubnet("subnet-0bbb", "us-east-1b");
  ({ handler } = await import("../lambda/launcher"));
});

afterAll(async () => {
  restoreEnv?.();
  await Promise.all([github?.close(), ghes?.close(), sandbox?.close()]);
});

beforeEach(async () => {
  await sandbox.reset();
  sandbox.ec2.addSubnet("subnet-0aaa", "us-east-1a");
  sandbox.ec2.addSubnet("subnet-0bbb", "us-east-1b");
  process.env.MAX_RUNNERS_TOTAL = "1000";
  for (const fake of [github, ghes]) fake.state.reset();
  await useGitHubFake(sandbox, github);
  await putLabelConfigs(sandbox, baseConfig);
});

afterEach(() => {
  expect(github.violations()).toEqual([]);
  expect(ghes.violations()).toEqual([]);
});

describe("a queued job", () => {
  it("gets one instance, one JIT config handed off, and is launched", async () => {
    const [job] = await seedJobs(1);
    const { response } = await runLauncher();
    expect(response.batchItemFailures).toEqual([]);

    expect(fleetCalls()).toHaveLength(1);
    const [instance] = liveInstances();
    expect(liveInstances()).toHaveLength(1);
    expect(instance?.market).toBe("spot");
    expect(instance?.tags).toMatchObject({
      [TAGS.stack]: "test",
      [TAGS.config]: "linux-x64",
      [TAGS.market]: "spot",
    });

    const runners = github.state.listRunners({ org: github.org });
    expect(runners).toHaveLength(1);
    expect(runners[0]).toMatchObject({
      name: `test-${instance!.instanceId}`,
      runnerGroupId: 1,
      workFolder: "_work",
    });
    expect(runners[0]!.labels).toEqual(expect.arrayContaining(baseConfig.labels));

    const handoff = await readHandoff(instance!.instanceId);
    expect(handoff).toMatchObject({
      handoffKey: `${ROLE_ID}:${instance!.instanceId}`,
      jobId: job!.jobId,
      jitConfig: runners[0]!.encodedJitConfig,
    });
    expect(handoff!.expiresAt - Date.now() / 1000).toBeGreaterThan(800);

    expect(await getJob(job!.jobId)).toMatchObject({
      state: "launched",
      instanceId: instance!.instanceId,
      instanceType: instance!.instanceType,
      availabilityZone: instance!.availabilityZone,
      market: "spot",
      attempts: 1,
      runnerId: runners[0]!.id,
    });
    expect(sandbox.sqs.messages(queue.url)).toEqual([]);
    // One GitHub call per job besides the App's token.
    expect(sandbox.callsTo("github", "actions/generate-runner-jitconfig-for-org")).toHaveLength(1);
  });

  it("is launched once when its message arrives twice in a batch and again later", async () => {
    const [job] = await seedJobs(1);
    sandbox.sqs.send(queue.url, JSON.stringify({ jobId: job!.jobId, configName: job!.configName }));
    expect((await runLauncher()).response.batchItemFailures).toEqual([]);
    sandbox.sqs.send(queue.url, JSON.stringify({ jobId: job!.jobId, configName: job!.configName }));
    expect((await runLauncher()).response.batchItemFailures).toEqual([]);
    expect(liveInstances()).toHaveLength(1);
    expect(fleetCalls()).toHaveLength(1);
  });

  it("never puts the JIT config in logs, tags or the job record", async () => {
    const lines = captureOutput();
    logger.setLogLevel("DEBUG");
    try {
      const [job] = await seedJobs(1);
      await runLauncher();
      const [runner] = github.state.listRunners();
      const secret = runner!.encodedJitConfig;
      expect(lines.join("\n")).not.toContain(secret);
      expect(JSON.stringify(sandbox.ec2.instances())).not.toContain(secret);
      expect(JSON.stringify(await getJob(job!.jobId))).not.toContain(secret);
      expect(lines.length).toBeGreaterThan(0);
    } finally {
      logger.setLogLevel("ERROR");
      vi.restoreAllMocks();
    }
  });
  it("publishes the queued-to-handed-off latency of each launched job as an EMF metric", async () => {
    const lines = captureOutput([process.stdout]);
    try {
      await seedJobs(2);
      await runLauncher();
    } finally {
      vi.restoreAllMocks();
    }
    const latencies = lines
      .flatMap((chunk) => chunk.split("\n"))
      .filter((line) => line.includes('"_aws"'))
      .map((line) => JSON.parse(line) as { LaunchLatency?: number | number[] })
      .flatMap((doc) => (doc.LaunchLatency === undefined ? [] : [doc.LaunchLatency].flat()));
    expect(latencies).toHaveLength(2);
    for (const ms of latencies) expect(ms).toBeGreaterThanOrEqual(0);
  });
});

describe("batching", () => {
  it("launches 25 jobs of one config with one CreateFleet for 25", async () => {
    const jobs = await seedJobs(25);
    const { response } = await runLauncher(25);
    expect(response.batchItemFailures).toEqual([]);
    expect(fleetCalls()).toHaveLength(1);
    expect(fleetParams(0).TargetCapacitySpecification.TotalTargetCapacity).toBe("25");
    const records = await jobsOf(jobs);
    expect(records.every((j) => j?.state === "launched")).toBe(true);
    expect(new Set(records.map((j) => j?.instanceId)).size).toBe(25);
    expect(liveInstances()).toHaveLength(25);
    expect(github.state.listRunners()).toHaveLength(25);
  });

  it("launches the jobs of two configs with two fleets", async () => {
    const arm: LabelConfig = {
      ...baseConfig,
      name: "linux-arm64",
      arch: "arm64",
      labels: ["self-hosted", "linux", "arm64"],
      instanceTypes: ["m7g.large"],
      launchTemplateId: "lt-0linux0arm640000",
    };
    await putLabelConfigs(sandbox, arm);
    await seedJobs(3);
    await seedJobs(2, arm);
    expect((await runLauncher()).response.batchItemFailures).toEqual([]);
    expect(fleetCalls()).toHaveLength(2);
    const byTemplate = Object.fromEntries(
      [0, 1].map((i) => [
        fleetParams(i).LaunchTemplateConfigs[0]?.LaunchTemplateSpecification.LaunchTemplateId,
        fleetParams(i).TargetCapacitySpecification.TotalTargetCapacity,
      ]),
    );
    expect(byTemplate).toEqual({ "lt-0linux0x640000000": "3", "lt-0linux0arm640000": "2" });
    expect(liveInstances().filter((i) => i.instanceType === "m7g.large")).toHaveLength(2);
  });
});

describe("spot policy", () => {
  const noSpot = () =>
    sandbox.faults.fail("ec2", "CreateFleet", "InsufficientInstanceCapacity", {
      when: (r) => r.part?.lifecycle === "spot",
    });

  it("spotPreferred falls back to on-demand in the same invocation", async () => {
    noSpot();
    const jobs = await seedJobs(3);
    const { response } = await runLauncher();
    expect(response.batchItemFailures).toEqual([]);
    expect(
      fleetCalls().map((_, i) => fleetParams(i).TargetCapacitySpecification.DefaultTargetCapacityType),
    ).toEqual(["spot", "on-demand"]);
    for (const job of await jobsOf(jobs)) {
      expect(job).toMatchObject({ state: "launched", market: "on-demand", spotFailures: 1, attempts: 2 });
    }
    expect(liveInstances().map((i) => i.market)).toEqual(["on-demand", "on-demand", "on-demand"]);
  });

  it("goes straight to on-demand while the config's spot circuit breaker is open", async () => {
    const policy = { threshold: 1, windowSeconds: 600, cooldownSeconds: 600 };
    expect((await recordSpotInterruption(baseConfig.name, new Date(), policy)).opened).toBe(true);
    const jobs = await seedJobs(2);
    expect((await runLauncher()).response.batchItemFailures).toEqual([]);
    expect(
      fleetCalls().map((_, i) => fleetParams(i).TargetCapacitySpecification.DefaultTargetCapacityType),
    ).toEqual(["on-demand"]);
    for (const job of await jobsOf(jobs))
      expect(job).toMatchObject({ state: "launched", market: "on-demand" });
  });

  it("launches the on-demand re-run of a spot-interrupted job on-demand, and its other jobs on spot", async () => {
    const now = new Date();
    const repo = `${github.repo.owner}/${github.repo.name}`;
    const marker = {
      repo,
      runId: 4242,
      fromAttempt: 1,
      jobId: "999",
      configName: baseConfig.name,
      reason: "spot interruption",
      createdAt: now.toISOString(),
    };
    expect(await createRetryMarker(marker, now)).toBe(true);
    const [rerun] = await seedJobs(1, baseConfig, github, { runId: 4242, runAttempt: 2 });
    const [other] = await seedJobs(1, baseConfig, github, { runId: 4343, runAttempt: 2 });
    expect((await runLauncher()).response.batchItemFailures).toEqual([]);
    expect(await getJob(rerun!.jobId)).toMatchObject({ state: "launched", market: "on-demand" });
    expect(await getJob(other!.jobId)).toMatchObject({ state: "launched", market: "spot" });
  });

  it("spotOnly retries with backoff, never on-demand, then times out cleanly", async () => {
    await putLabelConfigs(sandbox, { ...baseConfig, spotPolicy: "spotOnly" });
    noSpot();
    const [job] = await seedJobs(1);
    const { response, records } = await runLauncher();
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: records[0]!.messageId }]);
    expect(await getJob(job!.jobId)).toMatchObject({ state: "queued", spotFailures: 1, attempts: 1 });
    expect((await getJob(job!.jobId))?.reason).toMatch(/no spot capacity.*InsufficientInstanceCapacity/);
    expect((await getJob(job!.jobId))?.instanceId).toBeUndefined();
    // The message is back in the queue, hidden for the backoff.
    const [message] = sandbox.sqs.messages(queue.url);
    expect(message?.visible).toBe(false);
    expect(message!.visibleAt - sandbox.clock.now()).toBeGreaterThanOrEqual(4_000);

    // A second try an hour later: past the queue timeout, the job ends with the reason.
    await updateJobFields(job!.jobId, {
      set: { queuedAt: new Date(Date.now() - 61 * 60_000).toISOString() },
    });
    sandbox.clock.advance(400_000);
    const second = await runLauncher();
    expect(second.records).toHaveLength(1);
    expect(second.response.batchItemFailures).toEqual([]);
    const ended = await getJob(job!.jobId);
    expect(ended?.state).toBe("timed-out");
    expect(ended?.reason).toMatch(/queue timeout \(60 min\).*no spot capacity/);
    expect(fleetCalls()).toHaveLength(1);
    expect(fleetParams(0).TargetCapacitySpecification.DefaultTargetCapacityType).toBe("spot");
    expect(liveInstances()).toEqual([]);
    expect(sandbox.sqs.messages(queue.url)).toEqual([]);
  });

  it("onDemandOnly never asks for spot", async () => {
    await putLabelConfigs(sandbox, { ...baseConfig, spotPolicy: "onDemandOnly" });
    const [job] = await seedJobs(1);
    await runLauncher();
    expect(fleetCalls()).toHaveLength(1);
    expect(fleetParams(0).TargetCapacitySpecification.DefaultTargetCapacityType).toBe("on-demand");
    expect(fleetParams(0).SpotOptions).toBeUndefined();
    expect(await getJob(job!.jobId)).toMatchObject({ state: "launched", market: "on-demand" });
  });

  it("fails a job on a configuration error instead of retrying it forever", async () => {
    sandbox.faults.fail("ec2", "CreateFleet", {
      code: "InvalidLaunchTemplateId.NotFound",
      message: "The specified launch template does not exist",
      status: 400,
    });
    const [job] = await seedJobs(1);
    const { response } = await runLauncher();
    expect(response.batchItemFailures).toEqual([]);
    expect(await getJob(job!.jobId)).toMatchObject({
      state: "failed",
      reason: "launch configuration error: InvalidLaunchTemplateId.NotFound",
    });
  });
});

describe("a partial fleet", () => {
  /**
   * The EC2 fake fills a request from one pool or fails the pool as a whole, so it never answers
   * with some instances and some errors. This wraps the real client: the fake is asked for `short`
   * fewer spot instances, and its answer gets the capacity error EC2 would add for the rest.
   */
  function shortSpotFleets(short: number) {
    const client = ec2Client();
    const send = client.send.bind(client) as (command: unknown) => Promise<unknown>;
    return vi.spyOn(client, "send").mockImplementation((async (command: unknown) => {
      if (
        !(command instanceof CreateFleetCommand) ||
        command.input.TargetCapacitySpecification?.DefaultTargetCapacityType !== "spot"
      ) {
        return send(command);
      }
      const spec = command.input.TargetCapacitySpecification;
      const asked = spec.TotalTargetCapacity ?? 0;
      const output = (await send(
        new CreateFleetCommand({
          ...command.input,
          TargetCapacitySpecification: {
            ...spec,
            TotalTargetCapacity: asked - short,
            SpotTargetCapacity: asked - short,
          },
        }),
      )) as CreateFleetCommandOutput;
      const override = command.input.LaunchTemplateConfigs?.[0]?.Overrides?.[1];
      output.Errors = [
        ...(output.Errors ?? []),
        {
          ErrorCode: "InsufficientInstanceCapacity",
          ErrorMessage: "There is no Spot capacity available that matches your request.",
          Lifecycle: "spot",
          LaunchTemplateAndOverrides: {
            Overrides: { InstanceType: override?.InstanceType, SubnetId: override?.SubnetId },
          },
        },
      ];
      return output;
    }) as never);
  }

  afterEach(() => vi.restoreAllMocks());

  it("launches what it got and sends the rest on-demand under spotPreferred", async () => {
    shortSpotFleets(2);
    const jobs = await seedJobs(5);
    expect((await runLauncher()).response.batchItemFailures).toEqual([]);
    const records = await jobsOf(jobs);
    expect(records.map((j) => j?.market)).toEqual(["spot", "spot", "spot", "on-demand", "on-demand"]);
    expect(records.every((j) => j?.state === "launched")).toBe(true);
    expect(records.slice(3).map((j) => j?.spotFailures)).toEqual([1, 1]);
    expect(fleetParams(1).TargetCapacitySpecification).toMatchObject({
      DefaultTargetCapacityType: "on-demand",
      TotalTargetCapacity: "2",
    });
    expect(liveInstances()).toHaveLength(5);
  });

  it("launches what it got and retries the rest later under spotOnly", async () => {
    await putLabelConfigs(sandbox, { ...baseConfig, spotPolicy: "spotOnly" });
    shortSpotFleets(1);
    const jobs = await seedJobs(3);
    const { response, records } = await runLauncher();
    const states = await jobsOf(jobs);
    expect(states.map((j) => j?.state)).toEqual(["launched", "launched", "queued"]);
    expect(states[2]).toMatchObject({ spotFailures: 1, reason: expect.stringMatching(/no spot capacity/) });
    const retried = records.find((r) => JSON.parse(r.body).jobId === jobs[2]!.jobId);
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: retried!.messageId }]);
    expect(fleetCalls()).toHaveLength(1);
    expect(liveInstances()).toHaveLength(2);
  });
});

describe("throttling and retries", () => {
  it("retries a throttled CreateFleet with the same client token: one fleet, no duplicate", async () => {
    sandbox.faults.fail("ec2", "CreateFleet", "RequestLimitExceeded", { times: 2 });
    const [job] = await seedJobs(1);
    expect((await runLauncher()).response.batchItemFailures).toEqual([]);
    const calls = sandbox.callsTo("ec2", "CreateFleet");
    expect(calls.map((c) => c.errorCode)).toEqual([
      "RequestLimitExceeded",
      "RequestLimitExceeded",
      undefined,
    ]);
    expect(new Set(calls.map((c) => (c.params as { ClientToken: string }).ClientToken)).size).toBe(1);
    expect(liveInstances()).toHaveLength(1);
    expect((await getJob(job!.jobId))?.state).toBe("launched");
  });

  it("puts a job whose launch stays throttled back in the queue, then launches it once", async () => {
    sandbox.faults.fail("ec2", "CreateFleet", "RequestLimitExceeded");
    const [job] = await seedJobs(1);
    const first = await runLauncher();
    expect(first.response.batchItemFailures).toHaveLength(1);
    expect(await getJob(job!.jobId)).toMatchObject({ state: "queued", attempts: 1 });
    expect((await getJob(job!.jobId))?.spotFailures ?? 0).toBe(0);
    expect(liveInstances()).toEqual([]);

    sandbox.faults.clear();
    sandbox.clock.advance(400_000);
    expect((await runLauncher()).response.batchItemFailures).toEqual([]);
    expect(await getJob(job!.jobId)).toMatchObject({ state: "launched", attempts: 2 });
    expect(liveInstances()).toHaveLength(1);
  });

  it("retries GitHub 5xx and secondary rate limits within the invocation", async () => {
    failNextOrgJitConfigs(sandbox.faults, githubErrors.serverError(502), githubErrors.secondaryRateLimit(1));
    const jobs = await seedJobs(2);
    expect((await runLauncher()).response.batchItemFailures).toEqual([]);
    expect((await jobsOf(jobs)).map((j) => j?.state)).toEqual(["launched", "launched"]);
    expect(github.state.listRunners()).toHaveLength(2);
    expect(liveInstances()).toHaveLength(2);
  });

  it("terminates the instance and requeues the job when GitHub keeps failing", async () => {
    sandbox.faults.fail("github", "actions/generate-runner-jitconfig-for-org", githubErrors.serverError(503));
    const [job] = await seedJobs(1);
    const { response } = await runLauncher();
    expect(response.batchItemFailures).toHaveLength(1);
    expect(liveInstances()).toEqual([]);
    const [instance] = sandbox.ec2.instances();
    expect(instance?.state).toMatch(/shutting-down|terminated/);
    const record = await getJob(job!.jobId);
    expect(record).toMatchObject({ state: "queued", reason: "JIT registration failed (HTTP 503)" });
    expect(record?.instanceId).toBeUndefined();
    expect(await readHandoff(instance!.instanceId)).toBeUndefined();

    sandbox.faults.clear();
    sandbox.clock.advance(400_000);
    expect((await runLauncher()).response.batchItemFailures).toEqual([]);
    expect((await getJob(job!.jobId))?.state).toBe("launched");
    expect(liveInstances()).toHaveLength(1);
  });
  it("abandons a JIT call GitHub never answers, terminates the instance and requeues the job", async () => {
    // GitHub takes the registration and never answers. The request timeout is real time, so it is
    // shrunk here; each try is abandoned after it and retried like a network error.
    tuneGitHub({ retryAfterBaseValue: 5, requestTimeoutMs: 1_000 });
    const intercept = sandbox.faults.intercept.bind(sandbox.faults);
    let unanswered = 0;
    vi.spyOn(sandbox.faults, "intercept").mockImplementation((request, options) => {
      if (request.operation !== "actions/generate-runner-jitconfig-for-org")
        return intercept(request, options);
      unanswered++;
      return new Promise(() => {});
    });
    try {
      const [job] = await seedJobs(1);
      const { response } = await runLauncher();
      expect(response.batchItemFailures).toHaveLength(1);
      expect(unanswered).toBeGreaterThanOrEqual(1);
      expect(liveInstances()).toEqual([]);
      const record = await getJob(job!.jobId);
      expect(record).toMatchObject({ state: "queued", reason: "JIT registration failed (HTTP 500)" });
      expect(record?.instanceId).toBeUndefined();
      expect(github.state.listRunners()).toEqual([]);
    } finally {
      vi.restoreAllMocks();
      tuneGitHub({ retryAfterBaseValue: 5 });
    }
  });
});

describe("GitHub registration budget", () => {
  afterEach(() => {
    process.env.GITHUB_WRITES_PER_MINUTE = "60000";
  });

  it("launches no more instances than can be registered now; the rest wait in the queue", async () => {
    process.env.GITHUB_WRITES_PER_MINUTE = "3";
    const jobs = await seedJobs(5);
    const { response } = await runLauncher();
    expect(response.batchItemFailures).toHaveLength(2);
    expect(fleetParams(0).TargetCapacitySpecification.TotalTargetCapacity).toBe("3");
    expect((await jobsOf(jobs)).map((j) => j?.state)).toEqual([
      "launched",
      "launched",
      "launched",
      "queued",
      "queued",
    ]);
    expect(liveInstances()).toHaveLength(3);
    // Waiting jobs were not claimed: no attempt counted.
    expect((await getJob(jobs[4]!.jobId))?.attempts).toBeUndefined();
  });

  it("holds back new launches while GitHub asks to wait", async () => {
    sandbox.faults.fail(
      "github",
      "actions/generate-runner-jitconfig-for-org",
      githubErrors.secondaryRateLimit(3600),
    );
    const [first] = await seedJobs(1);
    await runLauncher();
    expect(await getJob(first!.jobId)).toMatchObject({
      state: "queued",
      reason: "JIT registration failed (HTTP 403)",
    });
    expect(liveInstances()).toEqual([]);
    sandbox.faults.clear();

    const [second] = await seedJobs(1);
    sandbox.clock.advance(400_000);
    const { response } = await runLauncher();
    expect(response.batchItemFailures).toHaveLength(2);
    expect(fleetCalls()).toHaveLength(1);
    expect((await getJob(second!.jobId))?.state).toBe("queued");
  });
});

describe("jobs that cannot register", () => {
  it("fail without more instances when GitHub refuses the registration (missing permission)", async () => {
    sandbox.faults.fail("github", "actions/generate-runner-jitconfig-for-org", {
      code: "forbidden",
      status: 403,
      message: "Resource not accessible by integration",
    });
    const [job] = await seedJobs(1);
    const { response } = await runLauncher();
    expect(response.batchItemFailures).toEqual([]);
    expect(await getJob(job!.jobId)).toMatchObject({
      state: "failed",
      reason: expect.stringMatching(/JIT registration failed \(HTTP 403\).*permissions/),
    });
    expect(liveInstances()).toEqual([]);
    expect(sandbox.ec2.instances()).toHaveLength(1);
  });

  it("fail before any launch when the job has no App installation", async () => {
    const [job] = await seedJobs(1, baseConfig, github, { installationId: undefined });
    expect((await runLauncher()).response.batchItemFailures).toEqual([]);
    expect(await getJob(job!.jobId)).toMatchObject({
      state: "failed",
      reason: expect.stringMatching(/installation/),
    });
    expect(sandbox.callsTo("ec2", "CreateFleet")).toEqual([]);
  });

  it("fail when their label config no longer exists", async () => {
    const [job] = await seedJobs(1, { ...baseConfig, name: "gone" });
    expect((await runLauncher()).response.batchItemFailures).toEqual([]);
    expect(await getJob(job!.jobId)).toMatchObject({ state: "failed", reason: "no label config named gone" });
    expect(sandbox.callsTo("ec2", "CreateFleet")).toEqual([]);
  });
});

describe("a failed hand-off", () => {
  it("terminates the instance, removes its runner registration and requeues the job", async () => {
    sandbox.faults.fail(
      "dynamodb",
      "PutItem",
      { code: "InternalServerError", status: 500 },
      { when: (r) => (r.params as { TableName?: string }).TableName === process.env.HANDOFF_TABLE },
    );
    const [job] = await seedJobs(1);
    const { response } = await runLauncher();
    expect(response.batchItemFailures).toHaveLength(1);
    expect(liveInstances()).toEqual([]);
    expect(github.state.listRunners()).toEqual([]);
    expect(await getJob(job!.jobId)).toMatchObject({ state: "queued", reason: "hand-off write failed" });
  });
});

describe("GitHub flavours and scopes", () => {
  it("registers repository runners on GHES", async () => {
    await useGitHubFake(sandbox, ghes, { scope: "repo" });
    const jobs = await seedJobs(2, baseConfig, ghes);
    expect((await runLauncher()).response.batchItemFailures).toEqual([]);
    expect((await jobsOf(jobs)).map((j) => j?.state)).toEqual(["launched", "launched"]);
    expect(ghes.state.listRunners({ owner: ghes.repo.owner, repo: ghes.repo.name })).toHaveLength(2);
    expect(ghes.state.listRunners({ org: ghes.org })).toHaveLength(0);
  });

  it("registers org runners with a personal access token", async () => {
    await useGitHubFake(sandbox, github, { mode: "token" });
    const [job] = await seedJobs(1);
    await runLauncher();
    expect((await getJob(job!.jobId))?.state).toBe("launched");
    expect(github.state.listRunners({ org: github.org })).toHaveLength(1);
  });
});

describe("limits", () => {
  it("hold under a burst of 200 jobs with concurrent launchers", async () => {
    const small: LabelConfig = { ...baseConfig, name: "small", maxRunners: 30 };
    const big: LabelConfig = {
      ...baseConfig,
      name: "big",
      maxRunners: 100,
      launchTemplateId: "lt-0big00000000000",
    };
    await putLabelConfigs(sandbox, small, big);
    process.env.MAX_RUNNERS_TOTAL = "80";
    // EC2's documented request buckets, on the sandbox clock (which this test does not advance).
    sandbox.faults.throttle("ec2", "mutating", EC2_THROTTLE.mutating);
    sandbox.faults.throttle("ec2", "DescribeInstances", EC2_THROTTLE.nonMutating);
    const smallJobs = await seedJobs(100, small);
    const bigJobs = await seedJobs(100, big);

    // Racing launchers may both give way (never both keep): jobs given back wait out their backoff
    // and come again until the limits are full.
    await drain(10, 4);
    for (let round = 0; round < 10 && liveInstances().length < 80; round++) {
      sandbox.clock.advance(130_000);
      await drain(10, 4);
      expect(liveInstances().length).toBeLessThanOrEqual(80);
    }
    const states = await jobsOf([...smallJobs, ...bigJobs]);
    const launched = states.filter((j) => j?.state === "launched");
    expect(launched.filter((j) => j?.configName === "small").length).toBeLessThanOrEqual(30);
    expect(launched.length).toBe(80);
    expect(liveInstances()).toHaveLength(80);
    // Nobody was dropped: the rest wait in the queue, still queued.
    expect(states.filter((j) => j?.state === "queued")).toHaveLength(120);
    expect(sandbox.sqs.messages(queue.url)).toHaveLength(120);
    const requested = fleetCalls().reduce(
      (n, _c, i) => n + Number(fleetParams(i).TargetCapacitySpecification.TotalTargetCapacity),
      0,
    );
    expect(requested).toBe(80);
  });

  it("hold while the byState index lags behind the claims (the launchers' own and each other's)", async () => {
    const lagged: LabelConfig = { ...baseConfig, name: "lagged", maxRunners: 12 };
    await putLabelConfigs(sandbox, lagged);
    // Every write of this round stays out of the index until the sandbox clock moves on.
    sandbox.dynamodb.indexLag(5_000);
    const jobs = await seedJobs(60, lagged);
    await drain(10, 4);
    expect(liveInstances().length).toBeLessThanOrEqual(12);
    for (let round = 0; round < 6 && liveInstances().length < 12; round++) {
      sandbox.clock.advance(130_000);
      await drain(10, 4);
      expect(liveInstances().length).toBeLessThanOrEqual(12);
    }
    const states = await jobsOf(jobs);
    expect(states.filter((j) => j?.state === "launched")).toHaveLength(12);
    expect(states.filter((j) => j?.state === "queued")).toHaveLength(48);
  });
});
