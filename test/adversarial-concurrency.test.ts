/**
 * Issue 12's concurrency suite: CONCURRENCY_SUITE.jobs jobs, each delivered deliveriesPerJob times at
 * once through the real webhook (the same signed delivery sent again, and redeliveries with new
 * delivery ids, as GitHub makes them), while several launcher invocations consume the queue at the
 * same time. Every receive leaves its messages visible (SQS delivers at least once), so the racing
 * launchers get the same jobs. Every job must end launched with exactly one instance, one hand-off
 * item and one runner registration (JIT), and one launch message: none lost, none doubled.
 */
import { randomUUID } from "node:crypto";
import { ScanCommand } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { HandoffItem } from "../lambda/adapters/handoff";
import { runnerNameFor, TAGS } from "../lambda/core/stack-identity";
import { CONCURRENCY_SUITE } from "./adversarial-counts";
import { signedApiGatewayEvent } from "./fixtures/webhooks";
import {
  allJobs,
  linuxConfig,
  payloadOf,
  STACK,
  sentLaunchMessages,
  startWorld,
  WEBHOOK_SECRET,
  type World,
} from "./lifecycle-support";
import type { Job } from "./sandbox/github-state";
import { quietLambdaLogs } from "./webhook-support";

const { jobs: JOBS, deliveriesPerJob, sameDeliveryRepeats, jobsPerWave, racingLaunchers } = CONCURRENCY_SUITE;
/** Room for every job at once: the limits are not what this suite tries. */
const CONFIG = { ...linuxConfig, maxRunners: JOBS * 2 };
/** Bounds the drain after the last wave (in sandbox-clock steps, not time): a stuck job fails the test. */
const MAX_IDLE_ROUNDS = 200;

quietLambdaLogs();

let world: World;
let webhook: typeof import("../lambda/webhook").handler;
let launcher: (event: SQSEvent) => Promise<SQSBatchResponse>;

beforeAll(async () => {
  world = await startWorld("race", {}, [CONFIG]);
  ({ handler: webhook } = await import("../lambda/webhook"));
  ({ handler: launcher } = await import("../lambda/launcher"));
});

afterAll(async () => {
  await world?.close();
});

/** A job's deliveries, all at once: the first one, the same one again, and redeliveries with new ids. */
async function deliverAtOnce(job: Job): Promise<string[]> {
  const payload = payloadOf(world, "queued", job);
  const first = await signedApiGatewayEvent(payload, WEBHOOK_SECRET, { deliveryId: randomUUID() });
  const events = await Promise.all(
    Array.from({ length: deliveriesPerJob }, (_, i) =>
      i <= sameDeliveryRepeats
        ? first
        : signedApiGatewayEvent(payload, WEBHOOK_SECRET, { deliveryId: randomUUID() }),
    ),
  );
  const responses = await Promise.all(events.map((event) => webhook(structuredClone(event))));
  for (const r of responses) expect(r.statusCode, r.body).toBeLessThan(300);
  return responses.map((r) => (JSON.parse(r.body ?? "{}") as { status: string }).status);
}

/**
 * One launcher invocation after another, as the event source makes them, until the deliveries are
 * over and the queue is empty. Messages are received with no visibility timeout, so every racing
 * launcher may get the same ones; when only delayed messages are left, the sandbox clock moves on.
 */
async function racingLauncher(deliveriesOver: () => boolean, received: string[]): Promise<void> {
  const { sqs, clock } = world.sandbox;
  for (let idle = 0; idle < MAX_IDLE_ROUNDS; ) {
    const records = sqs.receive(world.queue.url, 10, { visibilityTimeout: 0 });
    if (records.length > 0) {
      received.push(...records.map((r) => r.messageId));
      sqs.settle(world.queue.url, records, await launcher({ Records: records }));
      continue;
    }
    if (!deliveriesOver()) {
      await new Promise((resolve) => setImmediate(resolve));
      continue;
    }
    if (sqs.messages(world.queue.url).length === 0) return;
    idle++;
    clock.advance(30_000);
  }
}

async function handoffItems(): Promise<HandoffItem[]> {
  const { Items = [] } = await world.sandbox.dynamodb.client.send(
    new ScanCommand({ TableName: world.tables.handoff }),
  );
  return Items.map((item) => unmarshall(item) as HandoffItem);
}

it(`${JOBS} jobs × ${deliveriesPerJob} concurrent deliveries, ${racingLaunchers} racing launchers: one instance, hand-off and runner per job`, async () => {
  const gh = world.github.state;
  const jobs = Array.from({ length: JOBS }, () =>
    gh.seedJob({ owner: world.github.repo.owner, repo: world.github.repo.name, labels: CONFIG.labels }),
  );
  let deliveriesOver = false;
  const outcomes: string[][] = [];
  const delivering = (async () => {
    for (let wave = 0; wave < JOBS; wave += jobsPerWave)
      outcomes.push(...(await Promise.all(jobs.slice(wave, wave + jobsPerWave).map(deliverAtOnce))));
  })().finally(() => {
    deliveriesOver = true;
  });
  const received: string[] = [];
  await Promise.all([
    delivering,
    ...Array.from({ length: racingLaunchers }, () => racingLauncher(() => deliveriesOver, received)),
  ]);
  // The launchers did race: some launch messages were received more than once, at the same time.
  expect(received.length).toBeGreaterThan(new Set(received).size);

  // The webhook accepted each job once; every other delivery was a duplicate.
  for (const statuses of outcomes) {
    expect(statuses.filter((s) => s === "accepted")).toHaveLength(1);
    expect(statuses.filter((s) => s === "duplicate")).toHaveLength(deliveriesPerJob - 1);
  }
  expect(sentLaunchMessages(world.sandbox).map((m) => m.jobId)).toHaveLength(JOBS);
  expect(world.launchMessages(), "messages left on the queue").toEqual([]);

  // No job lost: each launched, on an instance of its own.
  const ledger = await allJobs(world.sandbox, world.tables.jobs);
  expect(ledger.map((j) => Number(j.jobId)).sort()).toEqual(jobs.map((j) => j.id).sort());
  expect(ledger.filter((j) => j.state !== "launched")).toEqual([]);
  const instanceOf = new Map(ledger.map((j) => [j.instanceId!, j.jobId]));
  expect(instanceOf.size).toBe(JOBS);

  // Exactly those instances exist: nothing launched twice, nothing orphaned.
  const instances = world.sandbox.ec2.instances({ tag: { [TAGS.stack]: STACK } });
  expect(instances.map((i) => i.instanceId).sort()).toEqual([...instanceOf.keys()].sort());

  // One hand-off item per instance, for the job launched on it.
  const handoffs = await handoffItems();
  expect(handoffs).toHaveLength(JOBS);
  for (const item of handoffs) expect(item.jobId).toBe(instanceOf.get(item.instanceId));

  // One JIT registration per instance (deleted ones count too: a second one would show).
  const runnerNames = [...gh.runners.values()].map((r) => r.name).sort();
  expect(runnerNames).toEqual([...instanceOf.keys()].map((id) => runnerNameFor(STACK, id)).sort());
}, 300_000);
