/**
 * The local sandbox: AWS (and GitHub) on 127.0.0.1, random ports, in-process. The Lambdas' clients
 * (the EC2 SDK client, the JSON-protocol client for DynamoDB, SQS and SSM) reach it only through the
 * SDK's own endpoint variables (`env` / `useEnv()`), so requests are serialized, signed and parsed
 * for real.
 *
 *   const sandbox = await startSandbox();          // beforeAll
 *   const restore = sandbox.useEnv({ JOBS_TABLE: (await sandbox.createTables()).jobs });
 *   ...
 *   restore(); await sandbox.close();              // afterAll
 */
import { startCloudWatchFake } from "./cloudwatch";
import { startDynamoFake } from "./dynamodb";
import { type Ec2FakeOptions, startEc2Fake } from "./ec2";
import { type CallRecord, Faults, type ServiceName } from "./faults";
import type { GitHubFake, GitHubFakeOptions } from "./github";
import { Clock } from "./http";
import { startSqsFake } from "./sqs";
import { startSsmFake } from "./ssm";

export type { FaultRequest } from "./faults";
export { EC2_THROTTLE } from "./faults";

export interface SandboxOptions {
  /** Default us-east-1. */
  region?: string;
  /** EC2: how long its state transitions and boots take (ec2-boot.ts; default: at the next read). */
  ec2?: Omit<Ec2FakeOptions, "faults" | "clock" | "region">;
  /**
   * Also start the GitHub fake (test/sandbox/github.ts) on the sandbox's faults, call record and
   * clock, and put its URL in `env.GITHUB_API_URL`. Off by default: it generates an App key and
   * loads GitHub's OpenAPI description, which a test without GitHub need not pay for.
   */
  github?: boolean | Omit<GitHubFakeOptions, "faults" | "clock">;
}

export interface SandboxQueue {
  url: string;
  arn: string;
  /** With `dlq`: the dead-letter queue `<name>-dlq`. */
  dlqUrl?: string;
  dlqArn?: string;
}

export type Sandbox = Awaited<ReturnType<typeof startSandbox>>;

const CREDENTIALS = {
  accessKeyId: "AKIASANDBOX000000000",
  secretAccessKey: "sandbox-secret-access-key",
  sessionToken: "sandbox-session-token",
};

export async function startSandbox(options: SandboxOptions = {}) {
  const region = options.region ?? "us-east-1";
  const clock = new Clock();
  const faults = new Faults(clock);
  const [dynamodb, sqs, ssm, ec2, cloudwatch] = await Promise.all([
    startDynamoFake({ faults, clock, region, credentials: CREDENTIALS }),
    startSqsFake({ faults, clock, region }),
    startSsmFake({ faults, clock, region }),
    startEc2Fake({ faults, clock, region, ...options.ec2 }),
    startCloudWatchFake({ faults, clock, region }),
  ]);

  let github: GitHubFake | undefined;
  if (options.github) {
    const githubOptions = typeof options.github === "object" ? options.github : {};
    // Loaded only when asked for: it pulls in the OpenAPI description and its validators.
    const { startGitHubFake } = await import("./github");
    github = await startGitHubFake({ ...githubOptions, faults, clock });
  }

  const endpoints = {
    dynamodb: dynamodb.url,
    sqs: sqs.url,
    ssm: ssm.url,
    ec2: ec2.url,
    cloudwatch: cloudwatch.url,
  };
  const env: Record<string, string> = {
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    AWS_SESSION_TOKEN: CREDENTIALS.sessionToken,
    // Never look for an instance role or a shared profile on the developer's machine.
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_ENDPOINT_URL_DYNAMODB: dynamodb.url,
    AWS_ENDPOINT_URL_SQS: sqs.url,
    AWS_ENDPOINT_URL_SSM: ssm.url,
    AWS_ENDPOINT_URL_EC2: ec2.url,
    // The SDK's name for CloudWatch's endpoint (its signing name, "monitoring", is the JSON client's).
    AWS_ENDPOINT_URL_CLOUDWATCH: cloudwatch.url,
    AWS_ENDPOINT_URL_MONITORING: cloudwatch.url,
    ...(github ? { GITHUB_API_URL: github.url } : {}),
  };

  return {
    region,
    endpoints,
    env,
    credentials: CREDENTIALS,
    /** The sandbox's time: `clock.advance(ms)` ends visibility timeouts and delays without sleeping. */
    clock,
    faults,
    dynamodb,
    sqs,
    ssm,
    ec2,
    /** CloudWatch alarms (DescribeAlarms), seeded with `putAlarm`. */
    cloudwatch,
    /** The GitHub fake, when started with `github`; its state is not reset by `reset()`. */
    github,
    /** Every call any fake served, in order. */
    get calls(): CallRecord[] {
      return faults.calls;
    },
    callsTo(service: ServiceName, operation?: string): CallRecord[] {
      return faults.callsTo(service, operation);
    },
    /**
     * Sets `env` (and `extra`) in process.env, hiding AWS_PROFILE; returns the function that puts
     * back what was there. Set it before the code under test makes its first EC2 call: the EC2
     * client is created once per process (the JSON-protocol client reads the variables per call).
     */
    useEnv(extra: Record<string, string> = {}): () => void {
      const values: Record<string, string | undefined> = { ...env, ...extra, AWS_PROFILE: undefined };
      const saved = Object.fromEntries(Object.keys(values).map((k) => [k, process.env[k]]));
      const apply = (vars: Record<string, string | undefined>) => {
        for (const [key, value] of Object.entries(vars)) {
          if (value === undefined) delete process.env[key];
          else process.env[key] = value;
        }
      };
      apply(values);
      return () => apply(saved);
    },
    /** Creates the stack's jobs and hand-off tables; see dynamodb.ts. */
    createTables: dynamodb.createTables,
    /**
     * Creates a queue; with `dlq`, also `<name>-dlq` and a redrive policy sending a message there
     * after `maxReceiveCount` receives (default 3).
     */
    createQueue(
      name: string,
      queueOptions: {
        dlq?: boolean | { maxReceiveCount?: number };
        attributes?: Record<string, string>;
      } = {},
    ): SandboxQueue {
      const attributes = { ...queueOptions.attributes };
      let dlq: { dlqUrl: string; dlqArn: string } | undefined;
      if (queueOptions.dlq) {
        const dlqUrl = sqs.createQueue(`${name}-dlq`);
        dlq = { dlqUrl, dlqArn: sqs.queueArn(dlqUrl) };
        const maxReceiveCount =
          (typeof queueOptions.dlq === "object" && queueOptions.dlq.maxReceiveCount) || 3;
        attributes.RedrivePolicy = JSON.stringify({ deadLetterTargetArn: dlq.dlqArn, maxReceiveCount });
      }
      const url = sqs.createQueue(name, attributes);
      return { url, arn: sqs.queueArn(url), ...dlq };
    },
    /**
     * Back to a fresh state for the next test: resumes a frozen clock, empties tables and queues
     * (keeping them), forgets
     * parameters, instances, images, snapshots, fault rules and the call record.
     */
    async reset(): Promise<void> {
      clock.resume();
      faults.clear();
      sqs.reset();
      ssm.reset();
      ec2.reset();
      cloudwatch.reset();
      await dynamodb.reset();
      faults.clearCalls();
    },
    async close(): Promise<void> {
      await Promise.all([
        dynamodb.close(),
        sqs.close(),
        ssm.close(),
        ec2.close(),
        cloudwatch.close(),
        github?.close(),
      ]);
    },
  };
}
