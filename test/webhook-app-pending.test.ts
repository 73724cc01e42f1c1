/**
 * An App-mode stack deployed before its App exists (GITHUB_APP_STATE=pending, set by the program):
 * the webhook still verifies and answers GitHub's ping, but a job gets 503 and nothing is recorded
 * or enqueued, so the delivery stays failed for the reconciler to have redelivered once the App's
 * credentials arrive.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { signedApiGatewayEvent, workflowJobEvent } from "./fixtures/webhooks";
import { quietLambdaLogs, SECRET, startWebhookSandbox, type WebhookSandbox } from "./webhook-support";

let world: WebhookSandbox;
beforeAll(async () => {
  world = await startWebhookSandbox("app-pending", { GITHUB_APP_STATE: "pending" });
});
afterAll(async () => {
  await world?.close();
});
beforeEach(async () => {
  await world.reset();
});
quietLambdaLogs();

it("answers a queued job 503 with what to run, and records and sends nothing", async () => {
  const response = await world.handler(await signedApiGatewayEvent(workflowJobEvent("queued"), SECRET));
  expect(response.statusCode).toBe(503);
  expect(JSON.parse(String(response.body))).toEqual({
    status: "unavailable",
    reason: "the GitHub App is not set up yet: run `npm run setup:github-app -- create`, then `pulumi up`",
  });
  expect(await world.jobs()).toEqual([]);
  expect(world.sandbox.callsTo("sqs")).toEqual([]);
});

it("still answers GitHub's ping, and still refuses a forged delivery with 401", async () => {
  const ping = await world.handler(
    await signedApiGatewayEvent({ zen: "Keep it logically awesome.", hook_id: 1 }, SECRET, { event: "ping" }),
  );
  expect(ping.statusCode).toBe(200);
  const forged = await world.handler(
    await signedApiGatewayEvent(workflowJobEvent("queued"), "not-the-stack-secret-0123456789"),
  );
  expect(forged.statusCode).toBe(401);
});
