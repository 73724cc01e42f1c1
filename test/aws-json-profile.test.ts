/**
 * The operator scripts (`npm run status`) reuse the Lambdas' adapters from a laptop, where the
 * credentials are in a profile, not in the environment: the JSON-protocol client then signs with the
 * SDK's default credential chain. (Its own file: the client keeps its credential provider per process.)
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createJob, getJob } from "../lambda/adapters/jobs-table";
import { type SigV4Proxy, startSigV4Proxy } from "./bootstrap/sigv4-proxy";
import { jobRecord } from "./lifecycle-support";
import { type Sandbox, startSandbox } from "./sandbox";

let sandbox: Sandbox;
let proxy: SigV4Proxy;
const saved = { ...process.env };

beforeAll(async () => {
  sandbox = await startSandbox();
  const { jobs } = await sandbox.createTables();
  const env = sandbox.env;
  const profile = { AccessKeyId: "AKIDPROFILEONLY", SecretAccessKey: "profile-secret", Token: "" };
  proxy = await startSigV4Proxy({
    target: env.AWS_ENDPOINT_URL_DYNAMODB!,
    credentials: profile,
    region: env.AWS_REGION!,
  });
  const dir = mkdtempSync(join(tmpdir(), "rf-profile-"));
  writeFileSync(
    join(dir, "credentials"),
    `[operator]\naws_access_key_id = ${profile.AccessKeyId}\naws_secret_access_key = ${profile.SecretAccessKey}\n`,
  );
  writeFileSync(join(dir, "config"), "");
  for (const key of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"])
    delete process.env[key];
  Object.assign(process.env, {
    AWS_PROFILE: "operator",
    AWS_SHARED_CREDENTIALS_FILE: join(dir, "credentials"),
    AWS_CONFIG_FILE: join(dir, "config"),
    AWS_DEFAULT_REGION: env.AWS_REGION,
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_ENDPOINT_URL_DYNAMODB: proxy.url,
    JOBS_TABLE: jobs,
  });
});

afterAll(async () => {
  process.env = saved;
  await proxy?.close();
  await sandbox?.close();
});

it("signs with the profile's keys when the environment has none", async () => {
  expect(await createJob(jobRecord("7001"))).toBe(true);
  expect(await getJob("7001")).toMatchObject({ jobId: "7001", state: "queued" });
  expect(proxy.records).toHaveLength(2);
  for (const record of proxy.records) expect(record.problem).toBeUndefined();
});
