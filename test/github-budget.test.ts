/**
 * The JIT registration budget shared by every launcher (lambda/adapters/github-budget.ts), against
 * the sandbox's DynamoDB. Each "launcher" is only a caller: the adapter keeps nothing in module state,
 * so concurrent callers here are as separate as launcher processes are.
 */
import { GetItemCommand } from "@aws-sdk/client-dynamodb";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  githubBurst,
  holdGitHubWrites,
  returnGitHubTokens,
  takeGitHubTokens,
} from "../lambda/adapters/github-budget";
import { RESERVED_KEYS } from "../lambda/shared/reserved-keys";
import { type Sandbox, startSandbox } from "./sandbox";
import { quietLambdaLogs } from "./webhook-support";

let sandbox: Sandbox;
let restoreEnv: () => void;
let table: string;
const RATE = 180;
const BURST = githubBurst(RATE);
const T0 = Date.parse("2026-11-23T12:00:00Z");

quietLambdaLogs();

beforeAll(async () => {
  sandbox = await startSandbox();
  table = (await sandbox.createTables()).jobs;
  restoreEnv = sandbox.useEnv({ JOBS_TABLE: table, GITHUB_WRITES_PER_MINUTE: String(RATE) });
});
afterAll(async () => {
  restoreEnv();
  await sandbox.close();
});
beforeEach(() => sandbox.reset());

async function bucketItem(): Promise<Record<string, unknown> | undefined> {
  const { Item } = await sandbox.dynamodb.client.send(
    new GetItemCommand({ TableName: table, Key: marshall({ jobId: RESERVED_KEYS.githubBudget }) }),
  );
  return Item && unmarshall(Item);
}

describe("takeGitHubTokens", () => {
  it("holds a few seconds' worth less than GitHub's bucket", () => {
    expect(BURST).toBeLessThan(RATE);
    expect(BURST).toBeGreaterThanOrEqual(RATE * 0.9);
    expect(githubBurst(1)).toBe(1);
  });

  it("lets one launcher alone use the whole burst, then the whole per-App rate", async () => {
    expect((await takeGitHubTokens(500, T0)).granted).toBe(BURST);
    expect((await takeGitHubTokens(10, T0 + 100)).granted).toBe(0);
    // 20 s at 3 a second.
    expect((await takeGitHubTokens(500, T0 + 20_000)).granted).toBe(60);
    // Never more than the burst, however long the bucket idled.
    expect((await takeGitHubTokens(500, T0 + 3_600_000)).granted).toBe(BURST);
  });

  it("says when the next token comes while jobs are left waiting", async () => {
    await takeGitHubTokens(BURST, T0);
    const grant = await takeGitHubTokens(5, T0 + 1_000);
    expect(grant).toMatchObject({ granted: 3, perMinute: RATE });
    expect(grant.nextAt).toBeGreaterThan(T0 + 1_000);
    expect(grant.nextAt).toBeLessThanOrEqual(T0 + 1_000 + 334);
  });

  it("never grants more than burst + rate × elapsed in total to concurrent launchers", async () => {
    const launchers = 5;
    const rounds = 12;
    let granted = 0;
    // Every 2 s each launcher asks for a batch of 10 at the same moment: far more than the budget.
    for (let round = 0; round < rounds; round++) {
      const now = T0 + round * 2_000;
      const grants = await Promise.all(
        Array.from({ length: launchers }, () => takeGitHubTokens(10 * 4, now)),
      );
      granted += grants.reduce((n, g) => n + g.granted, 0);
    }
    const elapsedMs = (rounds - 1) * 2_000;
    const allowed = BURST + (RATE * elapsedMs) / 60_000;
    expect(granted).toBeLessThanOrEqual(allowed);
    // Contention costs some grants (a launcher that keeps losing grants 0), but most of the budget is used.
    expect(granted).toBeGreaterThan(allowed * 0.6);
  });

  it("does not overdraw under a storm of conflicting takes", async () => {
    // 40 callers at once on a bucket with 12 tokens: most find fewer than they read, read again.
    await takeGitHubTokens(BURST - 12, T0);
    const grants = await Promise.all(Array.from({ length: 40 }, () => takeGitHubTokens(3, T0)));
    const total = grants.reduce((n, g) => n + g.granted, 0);
    expect(total).toBeLessThanOrEqual(12);
    expect(total).toBeGreaterThan(0);
    // What is left is exactly what was not granted.
    expect((await takeGitHubTokens(50, T0)).granted).toBe(12 - total);
    expect(await bucketItem()).toMatchObject({ emptyAt: expect.any(Number) });
  });

  it("grants nothing when DynamoDB fails, and does not write", async () => {
    sandbox.faults.fail("dynamodb", "GetItem", { code: "InternalServerError", status: 500 }, { times: 10 });
    expect((await takeGitHubTokens(5, T0)).granted).toBe(0);
    sandbox.faults.clear();
    expect((await takeGitHubTokens(500, T0)).granted).toBe(BURST);
  });
});

describe("holdGitHubWrites", () => {
  it("stops every launcher until the hold ends; a shorter hold does not cut it short", async () => {
    await takeGitHubTokens(10, T0);
    await holdGitHubWrites(T0 + 60_000);
    await holdGitHubWrites(T0 + 5_000);
    const during = await Promise.all([takeGitHubTokens(5, T0 + 1_000), takeGitHubTokens(5, T0 + 30_000)]);
    expect(during.map((g) => g.granted)).toEqual([0, 0]);
    expect(during[0]!.nextAt).toBe(T0 + 60_000);
    expect((await takeGitHubTokens(5, T0 + 60_000)).granted).toBe(5);
  });

  it("holds launchers that never took a token (the item may not exist yet)", async () => {
    await holdGitHubWrites(T0 + 10_000);
    expect((await takeGitHubTokens(5, T0)).granted).toBe(0);
    expect((await takeGitHubTokens(5, T0 + 10_000)).granted).toBe(5);
  });
});

describe("returnGitHubTokens", () => {
  it("gives unused registrations back to the others, never above the burst", async () => {
    expect((await takeGitHubTokens(BURST, T0)).granted).toBe(BURST);
    expect(await returnGitHubTokens(7, T0 + 10)).toBe(true);
    expect((await takeGitHubTokens(BURST, T0 + 10)).granted).toBe(7);
    await returnGitHubTokens(RATE * 3, T0 + 20);
    expect((await takeGitHubTokens(RATE * 3, T0 + 20)).granted).toBe(BURST);
  });
});
