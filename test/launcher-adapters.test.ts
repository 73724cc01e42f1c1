/**
 * The launcher's small adapters against the sandbox: label configs from SSM (defaults, a broken
 * parameter, the cache), the JIT config hand-off item and the register of recent claims.
 */
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { isServiceError } from "../lambda/adapters/aws-json";
import { CLAIM_REGISTER_SECONDS, registerClaims, unregisterClaims } from "../lambda/adapters/claims-register";
import { deleteHandoff, readHandoff, writeHandoff } from "../lambda/adapters/handoff";
import {
  currentAmisOf,
  forgetLabelConfigs,
  LABEL_CONFIG_CACHE_MS,
  loadLabelConfigs,
} from "../lambda/adapters/label-configs";
import type { LabelConfig } from "../lambda/shared/label-config";
import { RESERVED_KEYS } from "../lambda/shared/reserved-keys";
import { type Sandbox, startSandbox } from "./sandbox";
import { quietLambdaLogs } from "./webhook-support";

let sandbox: Sandbox;
let restoreEnv: () => void;
const PATH = "/runner-fleet/adapters/label-configs";

quietLambdaLogs();

beforeAll(async () => {
  sandbox = await startSandbox();
  const tables = await sandbox.createTables();
  restoreEnv = sandbox.useEnv({
    JOBS_TABLE: tables.jobs,
    HANDOFF_TABLE: tables.handoff,
    POOL_TABLE: tables.pool,
    LABEL_CONFIG_PATH: PATH,
    RUNNER_ROLE_ID: "AROAADAPTERS",
    HANDOFF_TTL_SECONDS: "600",
    POWERTOOLS_LOG_LEVEL: "CRITICAL",
  });
});

afterAll(async () => {
  restoreEnv?.();
  await sandbox?.close();
});

beforeEach(async () => {
  await sandbox.reset();
  forgetLabelConfigs();
});

const minimal = {
  name: "linux-x64",
  labels: ["self-hosted", "linux", "x64"],
  arch: "x64",
  instanceTypes: ["m7i.large"],
  launchTemplateId: "lt-0123",
  maxRunners: 5,
};

describe("loadLabelConfigs", () => {
  it("reads every config under the path (all pages) with the documented defaults", async () => {
    for (let i = 0; i < 12; i++) {
      sandbox.ssm.put(`${PATH}/c${i}`, JSON.stringify({ ...minimal, name: `c${i}` }));
    }
    sandbox.ssm.put("/elsewhere/other", JSON.stringify({ ...minimal, name: "other" }));
    const configs = await loadLabelConfigs();
    expect([...configs.keys()].sort()).toEqual(Array.from({ length: 12 }, (_, i) => `c${i}`).sort());
    expect(configs.get("c0")).toMatchObject({
      spotPolicy: "spotPreferred",
      spotFailuresBeforeOnDemand: 1,
      allocationStrategy: "capacity-optimized",
      runnerGroupId: 1,
      retryOnInterruption: true,
    });
  });

  it("skips a broken parameter instead of failing every config", async () => {
    sandbox.ssm.put(`${PATH}/good`, JSON.stringify(minimal));
    sandbox.ssm.put(`${PATH}/not-json`, "{oops");
    sandbox.ssm.put(`${PATH}/bad`, JSON.stringify({ ...minimal, name: "bad", spotPolicy: "sometimes" }));
    sandbox.ssm.put(`${PATH}/negative`, JSON.stringify({ ...minimal, name: "negative", maxRunners: -1 }));
    sandbox.ssm.put(`${PATH}/no-types`, JSON.stringify({ ...minimal, name: "no-types", instanceTypes: [] }));
    sandbox.ssm.put(`${PATH}/fraction`, JSON.stringify({ ...minimal, name: "fraction", runnerGroupId: 1.5 }));
    const configs = await loadLabelConfigs();
    expect([...configs.keys()]).toEqual(["linux-x64"]);
  });

  it("asks SSM once per cache period", async () => {
    sandbox.ssm.put(`${PATH}/good`, JSON.stringify(minimal));
    const now = Date.now();
    await loadLabelConfigs(now);
    await loadLabelConfigs(now + 1_000);
    expect(sandbox.callsTo("ssm", "GetParametersByPath")).toHaveLength(1);
    await loadLabelConfigs(now + LABEL_CONFIG_CACHE_MS + 1);
    expect(sandbox.callsTo("ssm", "GetParametersByPath")).toHaveLength(2);
  });
});

describe("currentAmisOf", () => {
  const config = (name: string, image?: { amiId: string } | { parameter: string }) =>
    ({ ...minimal, name, image }) as unknown as LabelConfig;

  it("takes a config's own AMI, reads each pipeline parameter once, and leaves out what has none", async () => {
    sandbox.ssm.put("/ami/x64", "ami-0pipeline0000001");
    const unreadable: string[] = [];
    const amis = await currentAmisOf(
      [
        config("own", { amiId: "ami-0own00000000001" }),
        config("a", { parameter: "/ami/x64" }),
        config("b", { parameter: "/ami/x64" }),
        config("unbuilt", { parameter: "/ami/arm64" }),
        config("unsaid"),
      ],
      (c) => unreadable.push(c.name),
    );
    expect(Object.fromEntries(amis)).toEqual({
      own: "ami-0own00000000001",
      a: "ami-0pipeline0000001",
      b: "ami-0pipeline0000001",
    });
    expect(unreadable).toEqual(["unbuilt"]);
    expect(sandbox.callsTo("ssm", "GetParameter")).toHaveLength(2);
  });

  it("fails with the error when the caller throws it", async () => {
    await expect(
      currentAmisOf([config("unbuilt", { parameter: "/ami/arm64" })], (_c, error) => {
        throw error;
      }),
    ).rejects.toSatisfy((error: unknown) => isServiceError(error, "ParameterNotFound"));
  });
});

describe("hand-off", () => {
  it("writes the item under <role id>:<instance id> with its expiry, and deletes it", async () => {
    const now = new Date("2026-11-23T20:00:00Z");
    await writeHandoff({
      instanceId: "i-0abc",
      jobId: "7",
      jitConfig: "secret-config",
      runnerName: "test-i-0abc",
      now,
    });
    expect(await readHandoff("i-0abc")).toEqual({
      handoffKey: "AROAADAPTERS:i-0abc",
      instanceId: "i-0abc",
      jobId: "7",
      jitConfig: "secret-config",
      runnerName: "test-i-0abc",
      createdAt: now.toISOString(),
      expiresAt: Math.floor(now.getTime() / 1000) + 600,
    });
    await deleteHandoff("i-0abc");
    expect(await readHandoff("i-0abc")).toBeUndefined();
  });
});

describe("the register of recent claims", () => {
  const claim = (jobId: string, configName: string, launchingAt: Date) => ({
    jobId,
    configName,
    state: "launching" as const,
    launchingAt: launchingAt.toISOString(),
  });
  const registerItem = async () =>
    (
      await sandbox.dynamodb.client.send(
        new GetItemCommand({
          TableName: process.env.JOBS_TABLE,
          Key: { jobId: { S: RESERVED_KEYS.claims } },
          ConsistentRead: true,
        }),
      )
    ).Item;

  it("returns every recent claim, the others' and these, from the write that adds these", async () => {
    const t0 = new Date();
    expect(await registerClaims([claim("1", "a", t0), claim("2", "a", t0)], t0)).toHaveLength(2);
    const seen = await registerClaims([claim("3", "b", t0)], t0);
    expect(seen.map((c) => c.jobId).sort()).toEqual(["1", "2", "3"]);
    expect(seen.find((c) => c.jobId === "3")).toEqual(claim("3", "b", t0));
  });

  it("stops counting claims older than its window, and the next write removes them", async () => {
    const t0 = new Date();
    await registerClaims([claim("old", "a", t0)], t0);
    const later = new Date(t0.getTime() + (CLAIM_REGISTER_SECONDS + 1) * 1000);
    expect((await registerClaims([claim("new", "a", later)], later)).map((c) => c.jobId)).toEqual(["new"]);
    expect(Object.keys((await registerItem()) ?? {})).toContain("claim:old");
    await registerClaims([], later);
    expect(Object.keys((await registerItem()) ?? {})).not.toContain("claim:old");
  });

  it("forgets claims given back, and creates nothing when there is no register", async () => {
    await unregisterClaims(["1"]);
    expect(await registerItem()).toBeUndefined();
    const t0 = new Date();
    await registerClaims([claim("1", "a", t0), claim("2", "a", t0)], t0);
    await unregisterClaims(["1"]);
    expect((await registerClaims([], t0)).map((c) => c.jobId)).toEqual(["2"]);
  });
});
