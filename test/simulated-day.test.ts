/**
 * A simulated working day on the sandbox, on a fake clock (Date only; every fake and the real SDK
 * clients read it): hundreds of jobs arrive at random (seeded PRNG), some are cancelled, runners get
 * "stolen" (GitHub gives an idle runner any queued job), spot instances are interrupted, some
 * instances never start their runner, and some webhooks and EC2 events are lost. The real handlers
 * run — webhook, launcher, ec2-events (EventBridge), reconciler (every minute) — and this file plays
 * GitHub's Actions service and the instances: an instance boots, reads its hand-off through the
 * hand-off adapter, starts its runner, takes a job GitHub assigns, runs it, reports its progress on
 * the hand-off item and shuts down. At the end every job is closed with a reason and no stack
 * instance is left running.
 */
import { randomUUID } from "node:crypto";
import type {
  APIGatewayProxyEventV2,
  APIGatewayProxyStructuredResultV2,
  SQSBatchResponse,
  SQSEvent,
} from "aws-lambda";
import { afterAll, beforeAll, expect, it, vi } from "vitest";
import { TAGS } from "../lambda/core/stack-identity";
import type { Ec2Event } from "../lambda/ec2-events";
import { isTerminal, type JobRecord } from "../lambda/shared/job";
import { signedApiGatewayEvent, workflowJobEvent } from "./fixtures/webhooks";
import {
  allJobs,
  interruptionWarning,
  reportProgress,
  STACK,
  startWorld,
  stateChange,
  WEBHOOK_SECRET,
  type World,
} from "./lifecycle-support";
import type { Delivery } from "./sandbox/github-state";

const SEED = 0x5eed_2026;
// SIM_JOBS / SIM_HOURS shrink or grow the day; SIM_TRACE=1 prints progress and handler time every 10 min.
const JOBS = Number(process.env.SIM_JOBS ?? 200);
const ARRIVAL_HOURS = Number(process.env.SIM_HOURS ?? 2);
const STEP_MS = 10_000;
const LOSS = { webhook: 0.04, ec2Event: 0.05 };
const P = { cancelQueued: 0.06, cancelRunning: 0.03, fail: 0.08, interrupt: 0.08, brokenInstance: 0.03 };
const LABELS = ["self-hosted", "linux", "x64"];
const START = Date.parse("2026-11-24T07:00:00Z");

/** mulberry32: small, fast, seedable. */
function prng(seed: number) {
  let a = seed;
  const next = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    chance: (p: number) => next() < p,
    between: (lo: number, hi: number) => lo + next() * (hi - lo),
    pick: <T>(items: T[]): T => items[Math.floor(next() * items.length)]!,
  };
}

type Webhook = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

let world: World;
let webhook: Webhook;
let launcher: (event: SQSEvent) => Promise<SQSBatchResponse>;
let ec2Events: (event: Ec2Event) => Promise<unknown>;
let reconcile: (event: never) => Promise<import("../lambda/reconciler").ReconcileReport>;

beforeAll(async () => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(START);
  world = await startWorld("day", { IDLE_TIMEOUT_MINUTES: "10", QUEUE_TIMEOUT_MINUTES: "90" });
  ({ handler: webhook } = await import("../lambda/webhook"));
  ({ handler: launcher } = await import("../lambda/launcher"));
  ({ handler: ec2Events } = await import("../lambda/ec2-events"));
  ({ handler: reconcile } = (await import("../lambda/reconciler")) as never);
});

afterAll(async () => {
  await world?.close();
  vi.useRealTimers();
});

interface Machine {
  instanceId: string;
  phase: "booting" | "idle" | "busy" | "done" | "dead";
  runnerId?: number;
  jobId?: number;
  broken: boolean;
}

it("a simulated day ends with every job closed with a reason and no instance running", async () => {
  const rnd = prng(SEED);
  const gh = world.github.state;
  const repo = `${world.github.repo.owner}/${world.github.repo.name}`;
  let now = START;
  const agenda: { at: number; seq: number; run: () => Promise<void> }[] = [];
  let seq = 0;
  const at = (when: number, run: () => Promise<void>) => agenda.push({ at: when, seq: seq++, run });
  const machines = new Map<string, Machine>();
  const lastState = new Map<string, string>();
  const stats = {
    webhooksLost: 0,
    ec2EventsLost: 0,
    interrupted: 0,
    stolen: 0,
    reruns: 0,
    broken: 0,
    cancelled: 0,
  };
  const launchedFor = new Map<string, string>(); // instance → job id it was launched for (tag)

  // ---- GitHub's side: deliveries ----
  const send = async (payload: object, guid: string) => {
    const response = await webhook(
      await signedApiGatewayEvent(payload, WEBHOOK_SECRET, { deliveryId: guid }),
    );
    return response.statusCode ?? 500;
  };
  const deliver = async (action: "queued" | "in_progress" | "completed", jobId: number) => {
    const job = gh.jobs.get(jobId)!;
    const payload = workflowJobEvent(action, {
      id: job.id,
      runId: job.run_id,
      runAttempt: job.run_attempt,
      labels: job.labels,
      repo,
      installationId: world.github.installationId,
      ...(job.runner_name ? { runnerName: job.runner_name, runnerId: job.runner_id ?? undefined } : {}),
      ...(action === "completed" ? { conclusion: job.conclusion ?? "success" } : {}),
    });
    if (action === "completed" && !job.runner_name)
      Object.assign(payload.workflow_job, { runner_name: null, runner_id: null });
    const guid = randomUUID();
    const lost = rnd.chance(LOSS.webhook);
    const status = lost ? 502 : await send(payload, guid);
    if (status >= 300) {
      stats.webhooksLost++;
      gh.seedDelivery({
        guid,
        event: "workflow_job",
        action,
        status: `Invalid HTTP Response: ${status}`,
        status_code: status,
        installation_id: world.github.installationId,
        payload: payload as Record<string, unknown>,
      });
    }
  };
  const stopRedeliveries = gh.onRedelivery((d: Delivery) => {
    // GitHub sends the redelivery with the event's guid; the fake already recorded it as delivered.
    pending.push(send(d.payload, d.guid).then(() => undefined));
  });
  const pending: Promise<void>[] = [];

  const ec2Event = async (event: Ec2Event) => {
    if (rnd.chance(LOSS.ec2Event)) {
      stats.ec2EventsLost++;
      return;
    }
    await ec2Events(event);
  };

  // ---- Jobs arrive; some are cancelled ----
  for (let i = 0; i < JOBS; i++) {
    const arrival = START + rnd.between(0, ARRIVAL_HOURS * 3_600_000);
    const duration = rnd.between(1, 15) * 60_000;
    const cancelQueued = rnd.chance(P.cancelQueued) ? rnd.between(10_000, 240_000) : undefined;
    const cancelRunning = rnd.chance(P.cancelRunning);
    const outcome = rnd.chance(P.fail) ? "failure" : "success";
    at(arrival, async () => {
      const job = gh.seedJob({
        owner: world.github.repo.owner,
        repo: world.github.repo.name,
        labels: LABELS,
      });
      plans.set(job.id, { duration, outcome, cancelRunning });
      await deliver("queued", job.id);
      if (cancelQueued !== undefined) {
        at(now + cancelQueued, async () => {
          const current = gh.jobs.get(job.id)!;
          if (current.status !== "queued") return;
          Object.assign(current, {
            status: "completed",
            conclusion: "cancelled",
            completed_at: new Date(now).toISOString(),
          });
          stats.cancelled++;
          await deliver("completed", job.id);
        });
      }
    });
  }
  const plans = new Map<
    number,
    { duration: number; outcome: "success" | "failure"; cancelRunning: boolean }
  >();

  // ---- The instances ----
  const report = async (instanceId: string, field: string) => {
    // The item may be gone (reconciler cleanup): the real bootstrap ignores that too.
    await reportProgress(world, instanceId, { [field]: new Date(now).toISOString() }).catch(() => undefined);
  };
  const { readHandoff } = await import("../lambda/adapters/handoff");
  const boot = async (m: Machine, tries = 0) => {
    if (m.phase !== "booting") return;
    const item = await readHandoff(m.instanceId);
    if (!item?.jitConfig) {
      // Not written yet (the launcher is registering the runner): the bootstrap retries for a while.
      if (tries < 12) at(now + 10_000, () => boot(m, tries + 1));
      return;
    }
    launchedFor.set(m.instanceId, item.jobId);
    await report(m.instanceId, "fetchedAt");
    const runner = gh.connectRunner(item.jitConfig);
    m.runnerId = runner.id;
    m.phase = "idle";
    await report(m.instanceId, "runnerStartedAt");
  };
  const finishJob = async (m: Machine, jobId: number, conclusion: "success" | "failure" | "cancelled") => {
    const job = gh.jobs.get(jobId)!;
    if (job.status === "completed") return;
    gh.completeJob(jobId, conclusion);
    await deliver("completed", jobId);
    if (m.phase === "busy" && m.jobId === jobId) {
      m.phase = "done";
      await report(m.instanceId, "jobFinishedAt");
      // run.sh exits, the bootstrap shuts the instance down.
      at(now + rnd.between(5_000, 30_000), async () => {
        if (world.sandbox.ec2.instance(m.instanceId)?.state === "running")
          world.sandbox.ec2.setState(m.instanceId, "terminated");
      });
    }
  };
  const dies = (m: Machine) => {
    const was = m.phase;
    m.phase = "dead";
    if (m.runnerId !== undefined && !gh.runners.get(m.runnerId)?.deleted)
      gh.setRunner(m.runnerId, { status: "offline", busy: false });
    if (was === "busy" && m.jobId !== undefined) {
      const jobId = m.jobId;
      // GitHub notices the runner is gone and fails the job.
      at(now + rnd.between(30_000, 120_000), async () => {
        const job = gh.jobs.get(jobId)!;
        if (job.status !== "in_progress") return;
        Object.assign(job, {
          status: "completed",
          conclusion: "failure",
          completed_at: new Date(now).toISOString(),
        });
        await deliver("completed", jobId);
      });
    }
  };

  const watchInstances = async () => {
    for (const instance of world.sandbox.ec2.instances({ tag: { [TAGS.stack]: STACK } })) {
      const { instanceId, state } = instance;
      const before = lastState.get(instanceId);
      lastState.set(instanceId, state);
      if (!machines.has(instanceId) && (state === "pending" || state === "running")) {
        const broken = rnd.chance(P.brokenInstance);
        const m: Machine = { instanceId, phase: "booting", broken };
        machines.set(instanceId, m);
        if (broken) stats.broken++;
        else at(now + rnd.between(20_000, 90_000), () => boot(m));
        if (instance.market === "spot" && rnd.chance(P.interrupt)) {
          at(now + rnd.between(60_000, 15 * 60_000), async () => {
            if (world.sandbox.ec2.instance(instanceId)?.state !== "running") return;
            stats.interrupted++;
            // The bootstrap sees the notice in IMDS too and reports it on its hand-off item.
            await report(instanceId, "interruptedAt");
            await ec2Event(interruptionWarning(instanceId, new Date(now)));
            at(now + 120_000, async () => {
              if (world.sandbox.ec2.instance(instanceId)?.state === "running") {
                world.sandbox.ec2.setState(instanceId, "terminated", "Server.SpotInstanceTermination");
              }
            });
          });
        }
      }
      if (before !== state && (state === "terminated" || state === "shutting-down" || state === "stopped")) {
        const m = machines.get(instanceId);
        if (m && m.phase !== "dead") dies(m);
        if (before !== undefined && state === "terminated")
          await ec2Event(stateChange(instanceId, state, new Date(now)));
      }
    }
  };

  // ---- GitHub assigns queued jobs to idle runners (any job whose labels match: "stolen" runners) ----
  const assign = async () => {
    const queued = [...gh.jobs.values()].filter((j) => j.status === "queued").sort((a, b) => a.id - b.id);
    for (const m of machines.values()) {
      if (m.phase !== "idle" || queued.length === 0) continue;
      // Mostly the oldest queued job, sometimes another: either way not always the one launched for.
      const index = rnd.chance(0.7) ? 0 : Math.floor(rnd.next() * queued.length);
      const job = queued.splice(index, 1)[0]!;
      gh.assignJob(m.runnerId!, job.id);
      m.phase = "busy";
      m.jobId = job.id;
      if (launchedFor.get(m.instanceId) !== String(job.id)) stats.stolen++;
      await report(m.instanceId, "jobStartedAt");
      await deliver("in_progress", job.id);
      const plan = plans.get(job.id)!;
      const cancel = plan.cancelRunning;
      at(now + (cancel ? plan.duration / 3 : plan.duration), () =>
        finishJob(m, job.id, cancel ? "cancelled" : plan.outcome),
      );
    }
  };

  // ---- Re-runs the reconciler asked for: a new attempt of the run, queued ----
  let rerunsSeen = 0;
  const rerun = async () => {
    while (rerunsSeen < gh.reruns.length) {
      const { jobId } = gh.reruns[rerunsSeen++]!;
      const old = gh.jobs.get(jobId)!;
      // GitHub runs the new attempt as a new job (new id); the fake re-queues the old one in place:
      // put it back as it was and queue the new job instead.
      Object.assign(old, { status: "completed", conclusion: "failure", run_attempt: old.run_attempt - 1 });
      const job = gh.seedJob({
        owner: world.github.repo.owner,
        repo: world.github.repo.name,
        labels: old.labels,
        run_id: old.run_id,
        run_attempt: old.run_attempt + 1,
      });
      plans.set(job.id, { ...plans.get(jobId)!, cancelRunning: false, outcome: "success" });
      stats.reruns++;
      await deliver("queued", job.id);
    }
  };

  const drainLauncher = async () => {
    for (;;) {
      const records = world.sandbox.sqs.receive(world.queue.url, 10);
      if (records.length === 0) return;
      const t = performance.now();
      const response = await launcher({ Records: records });
      timing.launcher += performance.now() - t;
      world.sandbox.sqs.settle(world.queue.url, records, response);
    }
  };

  // ---- The day ----
  const end = START + (ARRIVAL_HOURS + 2) * 3_600_000;
  let lastReconcile = 0;
  let settledAt: number | undefined;
  const wall = performance.now();
  const timing = { reconcile: 0, launcher: 0 };
  while (now < end) {
    now += STEP_MS;
    if (process.env.SIM_TRACE && (now - START) % 600_000 === 0)
      console.log(
        "t+min",
        (now - START) / 60_000,
        "wall s",
        ((performance.now() - wall) / 1000).toFixed(1),
        JSON.stringify(stats),
        "agenda",
        agenda.length,
        JSON.stringify(timing),
      );
    vi.setSystemTime(now);
    agenda.sort((a, b) => a.at - b.at || a.seq - b.seq);
    while (agenda.length && agenda[0]!.at <= now) await agenda.shift()!.run();
    await Promise.all(pending.splice(0));
    await watchInstances();
    await assign();
    await drainLauncher();
    if (now - lastReconcile >= 60_000) {
      lastReconcile = now;
      const t = performance.now();
      await reconcile({} as never);
      timing.reconcile += performance.now() - t;
      await Promise.all(pending.splice(0));
      await rerun();
    }
    if (now > START + ARRIVAL_HOURS * 3_600_000 && agenda.length === 0 && now === lastReconcile) {
      const jobs = await allJobs(world.sandbox, world.tables.jobs);
      const live = world.sandbox.ec2.instances({
        state: ["pending", "running"],
        tag: { [TAGS.stack]: STACK },
      });
      const runners = gh.listRunners().filter((r) => r.name.startsWith(`${STACK}-`));
      if (jobs.every((j) => isTerminal(j.state)) && live.length === 0 && runners.length === 0) {
        settledAt = now;
        break;
      }
    }
  }
  stopRedeliveries();

  const jobs = await allJobs(world.sandbox, world.tables.jobs);
  const byState = count(jobs.map((j) => j.state));
  if (!settledAt) {
    const { listHandoffReports } = await import("../lambda/adapters/handoff");
    const reports = await listHandoffReports();
    for (const i of world.sandbox.ec2.instances({
      state: ["pending", "running"],
      tag: { [TAGS.stack]: STACK },
    })) {
      console.info(
        "stuck instance",
        i.instanceId,
        new Date(i.launchTime).toISOString(),
        machines.get(i.instanceId),
        {
          report: reports.find((r) => r.instanceId === i.instanceId),
          jobs: jobs.filter((j) => j.instanceId === i.instanceId || j.runnerName?.endsWith(i.instanceId)),
        },
      );
    }
    console.info("not settled", {
      jobs: jobs.filter((j) => !isTerminal(j.state)),
      instances: world.sandbox.ec2.instances({ state: ["pending", "running"], tag: { [TAGS.stack]: STACK } }),
      runners: gh.listRunners().filter((r) => r.name.startsWith(`${STACK}-`)),
      github: [...gh.jobs.values()].filter((j) => j.status !== "completed"),
    });
  }
  const summary = {
    ...stats,
    jobs: jobs.length,
    instances: machines.size,
    byState,
    settledAfterMinutes: settledAt && (settledAt - START) / 60_000,
  };
  console.info("simulated day", JSON.stringify(summary));

  // Every job GitHub knows is in the ledger, closed, with a reason (a conclusion from GitHub, or ours).
  expect(jobs).toHaveLength(gh.jobs.size);
  expect(jobs.filter((j) => !isTerminal(j.state))).toEqual([]);
  const unexplained = jobs.filter((j: JobRecord) => !(j.conclusion || j.reason));
  expect(unexplained).toEqual([]);
  // GitHub agrees: every job ran (or was cancelled) and completed.
  expect([...gh.jobs.values()].filter((j) => j.status !== "completed").map((j) => j.id)).toEqual([]);
  expect(settledAt).toBeDefined();
  // Nothing left running or registered.
  expect(
    world.sandbox.ec2.instances({ state: ["pending", "running"], tag: { [TAGS.stack]: STACK } }),
  ).toEqual([]);
  expect(gh.listRunners().filter((r) => r.name.startsWith(`${STACK}-`))).toEqual([]);
  // No launch storm: an instance per job, plus the relaunches that stolen runners, broken instances
  // and interruptions call for.
  expect(machines.size).toBeLessThan(jobs.length * 1.5);
  // The day had what it was meant to have.
  expect(stats.webhooksLost).toBeGreaterThan(0);
  expect(stats.interrupted).toBeGreaterThan(0);
  expect(stats.stolen).toBeGreaterThan(0);
  expect(stats.broken).toBeGreaterThan(0);
  expect(stats.reruns).toBeGreaterThan(0);
  expect(world.github.violations()).toEqual([]);
}, 600_000);

function count(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}
