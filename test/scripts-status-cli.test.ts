/**
 * `npm run status` for the on-call: `--job` as a URL, `--region` and where a region comes from,
 * `--watch` (redraws on an injected timer), AWS and config failures said as what to do, and the
 * deliveries whose labels matched no config, each with its closest config; the stopped pools from the
 * stack's pool table, priced in its region. Against a seeded ledger
 * in the sandbox, a stand-in Pulumi CLI, and (for missing credentials) the real CLI in a child process.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { DeleteItemCommand, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createJob } from "../lambda/adapters/jobs-table";
import { recordUnmatchedDelivery } from "../lambda/adapters/unmatched-deliveries";
import type { JobRecord } from "../lambda/shared/job";
import { profileRegion, useRegion } from "../scripts/lib/aws-session";
import { parseJobRef } from "../scripts/lib/job-ref";
import { pulumiCli } from "../scripts/lib/pulumi";
import { type StatusCliDeps, statusCli } from "../scripts/lib/status-cli";
import { LABEL_PATH, seedPool } from "./deployed-stack-support";
import { jobRecord, linuxConfig } from "./lifecycle-support";
import { operatorStandIn } from "./operator-pulumi-stand-in";
import { type Sandbox, startSandbox } from "./sandbox";
import { FakePulumi } from "./scripts-support";

const run = promisify(execFile);
const LABEL_CONFIGS = {
  "linux-x64": { labels: ["linux", "x64"], instanceTypes: ["m7i.large"], arch: "x64" },
  "linux-x64-large": { labels: ["linux", "x64", "large"], instanceTypes: ["m7i.2xlarge"], arch: "x64" },
};

describe("--job", () => {
  it("takes a job id, or the job's URL on github.com or a GHES host", () => {
    expect(parseJobRef(" 29679449 ")).toEqual({ jobId: "29679449" });
    expect(parseJobRef("https://github.com/acme/widgets/actions/runs/77/job/4242")).toEqual({
      jobId: "4242",
      repo: "acme/widgets",
      runId: 77,
      host: "github.com",
    });
    expect(
      parseJobRef(
        "https://GHES.example.com/platform/api.server/actions/runs/9/attempts/2/job/31?pr=4#step:3:12",
      ),
    ).toEqual({ jobId: "31", repo: "platform/api.server", runId: 9, host: "ghes.example.com" });
  });

  it("says what it expected for a run's URL and for something else", () => {
    expect(() => parseJobRef("https://github.com/acme/widgets/actions/runs/77")).toThrow(
      "--job https://github.com/acme/widgets/actions/runs/77: that is a run's URL: open the job in it and copy that URL (…/job/ID)",
    );
    expect(() => parseJobRef("job-4242")).toThrow(/expected a job id \(e\.g\. 29679449\) or a job URL/);
  });
});

describe("the region", () => {
  const configFile = (text: string) => {
    const file = join(mkdtempSync(join(tmpdir(), "rf-aws-")), "config");
    writeFileSync(file, text);
    return file;
  };

  it("comes from --region, else AWS_REGION, else the stack, else the profile", () => {
    const AWS_CONFIG_FILE = configFile("[default]\nregion = ap-south-1\n[profile ops]\nregion=eu-north-1\n");
    const resolve = (sources: { flag?: string; stackRegion?: string }, env: Record<string, string>) => {
      const all: Record<string, string | undefined> = { AWS_CONFIG_FILE, ...env };
      return [useRegion(sources, all), all.AWS_REGION];
    };
    expect(resolve({ flag: "eu-west-3", stackRegion: "us-east-2" }, { AWS_REGION: "us-west-2" })).toEqual([
      "eu-west-3",
      "eu-west-3",
    ]);
    expect(resolve({ stackRegion: "us-east-2" }, { AWS_DEFAULT_REGION: "us-west-2" })[0]).toBe("us-west-2");
    expect(resolve({ stackRegion: "us-east-2" }, {})[0]).toBe("us-east-2");
    expect(resolve({}, {})[0]).toBe("ap-south-1");
    expect(resolve({}, { AWS_PROFILE: "ops" })[0]).toBe("eu-north-1");
    expect(profileRegion({ AWS_CONFIG_FILE, AWS_PROFILE: "missing" })).toBeUndefined();
  });

  it("without one, says where to give it; a mistyped one is refused", async () => {
    const err: string[] = [];
    const env = { AWS_CONFIG_FILE: configFile(""), AWS_PROFILE: "ops" };
    const code = await statusCli(["--no-pulumi", "--table", "t"], {
      out: () => {},
      err: (l) => err.push(l),
      env,
    });
    expect(code).toBe(1);
    expect(err).toEqual([
      "status: no AWS region: pass --region REGION (the stack's region), or export AWS_REGION=REGION, or set the profile's: aws configure set region REGION --profile ops",
    ]);
    err.length = 0;
    await statusCli(["--no-pulumi", "--table", "t", "--region", "eu-west1"], {
      out: () => {},
      err: (l) => err.push(l),
      env,
    });
    expect(err[0]).toBe(
      'status: "eu-west1" is not an AWS region name (e.g. eu-west-1): check --region / AWS_REGION',
    );
  });
});

describe("without AWS credentials (the real CLI)", () => {
  const home = mkdtempSync(join(tmpdir(), "rf-home-"));
  const status = async (env: Record<string, string>) => {
    const result = await run(
      process.execPath,
      [
        "scripts/run-ts.mjs",
        "scripts/fleet-status.ts",
        "--no-pulumi",
        "--table",
        "jobs",
        "--region",
        "eu-west-1",
      ],
      // Nothing of this machine's AWS setup: an empty home, no instance metadata.
      { env: { PATH: process.env.PATH ?? "", HOME: home, AWS_EC2_METADATA_DISABLED: "true", ...env } },
    ).catch((error: { code: number; stderr: string }) => error);
    return result as { code?: number; stderr: string };
  };

  it("names every way to get them", async () => {
    const { code, stderr } = await status({});
    expect(code).toBe(1);
    expect(stderr).toContain("status: no AWS credentials found. One of:");
    for (const way of [
      "aws configure",
      "aws sso login --profile X && export AWS_PROFILE=X",
      "export AWS_PROFILE=X",
    ])
      expect(stderr).toContain(way);
    expect(stderr).not.toContain("Could not load credentials from any providers");
  });

  it("sends an SSO profile without a session to aws sso login, and a missing profile to the list", async () => {
    const config = join(home, "config");
    writeFileSync(
      config,
      "[profile ops]\nsso_session = corp\nsso_account_id = 123456789012\nsso_role_name = Admin\n" +
        "[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n",
    );
    const sso = await status({ AWS_PROFILE: "ops", AWS_CONFIG_FILE: config });
    expect(sso.stderr.trim()).toBe(
      "status: the AWS SSO session (profile ops) has expired or never started: aws sso login --profile ops",
    );
    const missing = await status({ AWS_PROFILE: "opz", AWS_CONFIG_FILE: config });
    expect(missing.stderr.trim()).toBe(
      'status: there is no AWS profile "opz" (AWS_PROFILE): list them with `aws configure list-profiles`, or create it with `aws configure --profile opz`',
    );
  });
});

describe("npm run status on a stack", () => {
  let sandbox: Sandbox;
  let restoreEnv: () => void;
  let jobsTable: string;
  let poolTable: string;
  let cli: FakePulumi;
  const now = new Date();
  const ago = (s: number) => new Date(now.getTime() - s * 1000).toISOString();

  /** A job queued 5 minutes ago in config linux-x64-large (lifecycle-support's record otherwise). */
  const job = (jobId: string, overrides: Partial<JobRecord> = {}): JobRecord =>
    jobRecord(
      jobId,
      {
        configName: "linux-x64-large",
        runId: 77,
        labels: ["self-hosted", "linux", "x64", "large"],
        ...overrides,
      },
      new Date(now.getTime() - 300_000),
    );

  /** Runs the tool with the stand-in CLI; what it printed, and its exit code. */
  const status = async (argv: string[], deps: Partial<StatusCliDeps> = {}) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await statusCli(argv, {
      out: (line) => out.push(line),
      err: (line) => err.push(line),
      pulumi: (stack) => pulumiCli({ run: operatorStandIn(cli), stack }),
      ...deps,
    });
    return { code, out, err, text: out.join("\n") };
  };

  beforeAll(async () => {
    sandbox = await startSandbox();
    ({ jobs: jobsTable, pool: poolTable } = await sandbox.createTables("status-cli"));
    // POOL_TABLE: the pool is seeded with the Lambdas' own adapter.
    restoreEnv = sandbox.useEnv({ POOL_TABLE: poolTable });
    await createJob(job("4242"), jobsTable);
    await createJob(
      job("4343", { state: "running", instanceId: "i-0abc", startedAt: ago(120), repo: "acme/gadgets" }),
      jobsTable,
    );
    const unmatched = { owner: "acme", repo: "acme/widgets", deliveryId: "d-u" };
    await recordUnmatchedDelivery(
      {
        ...unmatched,
        jobId: "555",
        labels: ["self-hosted", "linux", "x64", "larg"],
        runUrl: "https://github.com/acme/widgets/actions/runs/88",
        jobUrl: "https://github.com/acme/widgets/actions/runs/88/job/555",
        deliveredAt: ago(240),
      },
      jobsTable,
    );
    // Past its day (its TTL deletion is lazy): not shown.
    await recordUnmatchedDelivery(
      { ...unmatched, jobId: "444", labels: ["self-hosted", "gpu"], deliveredAt: ago(25 * 3600) },
      jobsTable,
    );
  });
  afterAll(async () => {
    restoreEnv?.();
    await sandbox?.close();
  });
  beforeEach(() => {
    cli = new FakePulumi({ jobsTableName: jobsTable })
      .set("runner-fleet:github.owner", "acme")
      .set("runner-fleet:labelConfigs", JSON.stringify(LABEL_CONFIGS));
  });

  it("shows the deliveries that matched no config, each with its closest config and the label difference", async () => {
    const { code, text } = await status([]);
    expect(code).toBe(0);
    expect(text).toContain(
      [
        "deliveries that matched no label config (kept 24 h):",
        "  555 acme/widgets 4 min ago: runs-on [self-hosted, linux, x64, larg] matched no label config",
        '    closest config linux-x64-large: "larg" is not one of its labels (did you mean "large"?)',
        "    https://github.com/acme/widgets/actions/runs/88/job/555",
      ].join("\n"),
    );
    expect(text).not.toContain("444");
    const json = JSON.parse((await status(["--json"])).out[0]!);
    expect(json.unmatched).toEqual([
      expect.objectContaining({
        jobId: "555",
        suggestion: {
          config: "linux-x64-large",
          extra: ["larg"],
          missing: ["large"],
          typos: [{ label: "larg", meant: "large" }],
        },
      }),
    ]);
  });

  it("records an unmatched delivery bounded in size, for a day, in no index", async () => {
    const deliveredAt = ago(10);
    await recordUnmatchedDelivery(
      {
        jobId: "666",
        labels: Array.from({ length: 60 }, (_, i) => `label-${i}-${"x".repeat(300)}`),
        owner: "o".repeat(1000),
        repo: `acme/${"r".repeat(1000)}`,
        jobUrl: `https://github.com/${"p".repeat(5000)}`,
        deliveredAt,
      },
      jobsTable,
    );
    const { Item } = await sandbox.dynamodb.client.send(
      new GetItemCommand({ TableName: jobsTable, Key: marshall({ jobId: "#unmatched#666" }) }),
    );
    const item = unmarshall(Item!);
    expect(JSON.stringify(item).length).toBeLessThan(3_500);
    expect(item.labels).toHaveLength(20);
    expect(item).not.toHaveProperty("state");
    expect(item.expiresAt).toBe(Math.floor(Date.parse(deliveredAt) / 1000) + 24 * 3600);
    await sandbox.dynamodb.client.send(
      new DeleteItemCommand({ TableName: jobsTable, Key: marshall({ jobId: "#unmatched#666" }) }),
    );
  });

  it("explains a job given by its URL, and an unmatched one by its closest config", async () => {
    const found = await status(["--job", "https://github.com/acme/widgets/actions/runs/77/job/4242"]);
    expect(found.out[0]).toBe(
      "job 4242 in acme/widgets (run 77, attempt 1), config linux-x64-large, labels self-hosted, linux, x64, large",
    );
    expect(found.out[1]).toMatch(/^queued for 5 min: waiting for the launcher/);
    const elsewhere = await status(["--job", "https://ghes.example.com/acme/api/actions/runs/1/job/4343"]);
    expect(elsewhere.out.at(-1)).toBe(
      "note: the URL names acme/api, but the ledger's job 4343 is in acme/gadgets",
    );
    const unmatched = await status(["--job", "https://github.com/acme/widgets/actions/runs/88/job/555"]);
    expect(unmatched.out.slice(0, 2)).toEqual([
      "555 acme/widgets 4 min ago: runs-on [self-hosted, linux, x64, larg] matched no label config",
      '  closest config linux-x64-large: "larg" is not one of its labels (did you mean "large"?)',
    ]);
  });

  it("reads a stack without config in pulumi up's plain words, and knows no closest config then", async () => {
    cli = new FakePulumi({ jobsTableName: jobsTable });
    const { code, text } = await status([]);
    expect(code).toBe(0);
    expect(text).toContain(
      "note: limits and label configs unknown: Invalid stack config in Pulumi.dev.yaml (2 problems):",
    );
    expect(text).toContain("runner-fleet:github: got nothing (not set); expected a map of settings");
    expect(text).not.toMatch(/Invalid input|expected string, received undefined/);
    expect(text).toContain("closest config: unknown (the stack's label configs were not read)");
    cli = new FakePulumi(undefined);
    const undeployed = await status([]);
    expect(undeployed.code).toBe(1);
    expect(undeployed.err[0]).toMatch(
      /^status: no jobs table: pass --table NAME or run where `pulumi stack output` works\n/,
    );
    expect(undeployed.err[0]).toContain("runner-fleet:github: got nothing (not set)");
  });

  it("says a table not found may be in another region", async () => {
    const { code, err } = await status(["--table", "no-such-table"]);
    expect(code).toBe(1);
    expect(err).toEqual([
      `status: the jobs table no-such-table is not in ${sandbox.region} (ResourceNotFoundException): is the stack in another region? pass --region REGION`,
    ]);
  });

  it("shows the stopped pools from the stack's pool table, priced in the stack's region", async () => {
    const ami = "ami-0123456789abcdef0";
    const large = { ...LABEL_CONFIGS["linux-x64-large"], amiId: ami, pool: { size: 2 } };
    cli.set("runner-fleet:labelConfigs", JSON.stringify({ ...LABEL_CONFIGS, "linux-x64-large": large }));
    cli.outputs = {
      jobsTableName: jobsTable,
      poolTableName: poolTable,
      labelConfigParameterPath: LABEL_PATH,
    };
    // What `pulumi up` publishes of that config, as the reconciler reads it.
    const published = { ...linuxConfig, name: "linux-x64-large", pool: { size: 2 }, diskSizeGb: 50 };
    sandbox.ssm.put(`${LABEL_PATH}/linux-x64-large`, JSON.stringify({ ...published, image: { amiId: ami } }));
    const [ready] = await seedPool(sandbox, "linux-x64-large", [
      { state: "ready", launchedSecondsAgo: 3600, amiId: ami },
    ]);
    const { code, text } = await status([]);
    expect(code).toBe(0);
    expect(text).toContain(
      "stopped pools (idle cost: ready members' gp3 volumes at $0.08/GB-month in us-east-1):\n" +
        "  linux-x64-large: wants 2 now (size 2); 1 ready",
    );
    expect(text).toMatch(new RegExp(`^ {4}ready +${ready} +stopped +1 h +${ami} \\(current\\)$`, "m"));
    expect(text).toContain("    idle cost: 1 ready × 50 GiB × $0.08 = $4.00/month");
    const json = JSON.parse((await status(["--json"])).out[0]!);
    expect(json.pools.pools[0]).toMatchObject({
      configName: "linux-x64-large",
      wanted: 2,
      idleCost: { readyMembers: 1, diskSizeGb: 50, usdPerMonth: 4 },
    });
    // A stack deployed before the pools exports no pool table: said, not fatal.
    cli.outputs = { jobsTableName: jobsTable };
    const older = await status([]);
    expect(older.code).toBe(0);
    expect(older.text).toContain(
      "note: stopped pools not read: no pool table or label config path in the stack outputs (`pulumi up` exports them)",
    );
  });

  it("--watch redraws every --interval seconds, a failed draw included, --count times", async () => {
    const waits: number[] = [];
    let clears = 0;
    let draws = 0;
    const { code, out } = await status(["--watch", "--interval", "5", "--count", "3", "--job", "4242"], {
      clear: () => {
        clears++;
      },
      sleep: async (ms) => {
        waits.push(ms);
        draws++;
        // The second draw fails (DynamoDB answers every call with a 500); the third works again.
        if (draws === 1) sandbox.faults.fail("dynamodb", "*", { code: "InternalServerError", status: 500 });
        if (draws === 2) sandbox.faults.clear();
      },
    });
    expect(code).toBe(0);
    expect(waits).toEqual([5000, 5000]);
    expect(clears).toBe(3);
    const screens = out.join("\n").split(/\n\(every 5 s, Ctrl-C stops; at [^)]+\)/);
    expect(screens).toHaveLength(4);
    expect(screens[0]).toMatch(/^job 4242 in acme\/widgets/);
    expect(screens[1]).toMatch(/^\nstatus: /);
    expect(screens[1]).toContain("(tried again in 5 s)");
    expect(screens[2]).toMatch(/^\njob 4242 in acme\/widgets/);
  });
});
