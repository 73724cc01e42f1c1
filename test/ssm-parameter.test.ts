/**
 * The SDK-less SSM read (lambda/adapters/ssm-parameter.ts) against the sandbox's SSM fake: the same
 * request the SDK makes (target, SigV4 for service ssm), decryption, the SDK's error names, and
 * retries only where the SDK's standard mode retries.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { getParameterValue, SsmError } from "../lambda/adapters/ssm-parameter";
import { type Sandbox, startSandbox } from "./sandbox";

let sandbox: Sandbox;
let restoreEnv: () => void;

beforeAll(async () => {
  sandbox = await startSandbox();
  restoreEnv = sandbox.useEnv();
});

afterAll(async () => {
  restoreEnv?.();
  await sandbox?.close();
});

beforeEach(async () => {
  await sandbox.reset();
});

it("reads and decrypts a SecureString with a signed GetParameter", async () => {
  sandbox.ssm.put("/rf/test/secret", "s3cr3t value", { type: "SecureString" });
  expect(await getParameterValue("/rf/test/secret")).toBe("s3cr3t value");
  const [call] = sandbox.callsTo("ssm", "GetParameter");
  expect(call?.params).toMatchObject({ Name: "/rf/test/secret", WithDecryption: true });
  expect(call?.status).toBe(200);
});

it("names a missing parameter as the SDK does and does not retry it", async () => {
  const error = await getParameterValue("/rf/test/missing").catch((e: unknown) => e);
  expect(error).toBeInstanceOf(SsmError);
  expect((error as SsmError).name).toBe("ParameterNotFound");
  expect(sandbox.callsTo("ssm", "GetParameter")).toHaveLength(1);
});

it("retries a 5xx or throttled answer, up to three attempts", async () => {
  sandbox.ssm.put("/rf/test/secret", "v", { type: "SecureString" });
  sandbox.faults.fail("ssm", "GetParameter", { code: "ThrottlingException", status: 400 }, { times: 1 });
  sandbox.faults.fail("ssm", "GetParameter", { code: "InternalServerError", status: 500 }, { times: 1 });
  expect(await getParameterValue("/rf/test/secret")).toBe("v");
  expect(sandbox.callsTo("ssm", "GetParameter")).toHaveLength(3);

  sandbox.faults.fail("ssm", "GetParameter", { code: "InternalServerError", status: 500 });
  await expect(getParameterValue("/rf/test/secret")).rejects.toMatchObject({ name: "InternalServerError" });
  expect(sandbox.callsTo("ssm", "GetParameter")).toHaveLength(6);
});
