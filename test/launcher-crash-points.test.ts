/**
 * Issue 12's crash suite: the launcher dies at each of its crash points (lambda/launcher/launch-batch.ts
 * lists them), once for every job, then the fleet runs on: the real webhook, launcher and reconciler
 * (every minute on the sandbox clock, a fake `Date`), this file playing GitHub's Actions service and
 * the instances' bootstrap as simulated-day.test.ts does. Every job must end with one runner or an
 * explicit failure, no job may have two live instances at any time, and nothing is left at the end.
 *
 * A crash is the process dying at that point: from the call that marks it on (that call included),
 * every call the invocation makes fails (sandbox fault injection, answered at once), and its batch
 * counts as thrown (the messages come back after their visibility timeout). Each job has its own
 * label config, so an instance's config tag says which job it was launched for.
 */
import { randomUUID } from "node:crypto";
import type { SQSBatchResponse, SQSEvent } from "aws-lambda";
import { afterAll, beforeAll, beforeEach, expect, it, vi } from "vitest";
import { TAGS } from "../lambda/core/stack-identity";
import { isTerminal, type JobRecord } from "../lambda/shared/job";
import type { LabelConfig } from "../lambda/shared/label-config";
import { LAUNCHER_CRASH_SUITE } from "./adversarial-counts";
import { signedApiGatewayEvent, workflowJobEvent } from "./fixtures/webhooks";
import {
  allJobs,
  launcherDiesAt,
  linuxConfig,
  reportProgress,
  STACK,
  startWorld,
  WEBHOOK_SECRET,
  type World,
} from "./lifecycle-support";
import type { FaultRequest } from "./sandbox/faults";
import { quietLambdaLogs } from "./webhook-support";

const CONFIGS: LabelConfig[] = Array.from({ length: LAUNCHER_CRASH_SUITE.jobsPerCrashPoint }, (_, i) => ({
  ...linuxConfig,
  name: `crash-${i}`,
  labels: ["self-hosted", `crash-${i}`],
}));
const STEP_MS = 10_000;
const MIN = 60_000;
/** The instance's bootstrap: OS boot, then how long it waits for its hand-off before it shuts down. */
const BOOT_MS = 30_000;
const HANDOFF_WAIT_MS = 120_000;
/** GitHub gives an idle runner its job this long after the runner started: past the launching timeout. */
const PICKUP_MS = 6 * MIN;
const JOB_MS = 2 * MIN;

type DynamoParams = { TableName?: string; ExpressionAttributeNames?: Record<string, string> } & Record<
  string,
  unknown
>;

/** Whether a request is an UpdateItem of a job item whose SET writes `field` (with `value`, if given). */
function setsJobField(world: World, r: FaultRequest, field: string, value?: RegExp): boolean {
  const p = r.params as DynamoParams;
  if (r.service !== "dynamodb" || r.operation !== "UpdateItem" || p.TableName !== world.tables.jobs)
    return false;
  const name = Object.entries(p.ExpressionAttributeNames ?? {}).find(
    ([key, n]) => n === field && key.startsWith("#f"),
  )?.[0];
  if (!name) return false;
  const written = (p.ExpressionAttributeValues as Record<string, { S?: string }>)[`:f${name.slice(2)}`]?.S;
  return !value || value.test(written ?? "");
}

/** Each crash point as the call the launcher dies at (see lambda/launcher/launch-batch.ts). */
const CRASH_POINTS: { name: string; at(world: World, r: FaultRequest): boolean }[] = [
  {
    name: "1. after the claim, before CreateFleet",
    at: (_world, r) => r.service === "ec2" && r.operation === "CreateFleet",
  },
  {
    name: "2. after CreateFleet, before the instance is recorded on its job",
    at: (world, r) => setsJobField(world, r, "instanceId"),
  },
  {
    name: "3. after the runner's registration, before the hand-off",
    at: (world, r) =>
      r.service === "dynamodb" &&
      r.operation === "PutItem" &&
      (r.params as DynamoParams).TableName === world.tables.handoff,
  },
  {
    name: "4. after the hand-off, before `launched`",
    at: (world, r) => setsJobField(world, r, "state", /^launched$/),
  },
];

quietLambdaLogs();

let world: World;
let webhook: typeof import("../lambda/webhook").handler;
let launcher: (event: SQSEvent) => Promise<SQSBatchResponse>;
let reconcile: typeof import("../lambda/reconciler").reconcile;

let START: number;

beforeAll(async () => {
  vi.useFakeTimers({ toFake: ["Date"] });
  START = Math.ceil(Date.now() / 3_600_000 + 1) * 3_600_000;
  world = await startWorld("crash", {}, CONFIGS);
  ({ handler: webhook } = await import("../lambda/webhook"));
  ({ handler: launcher } = await import("../lambda/launcher"));
  ({ reconcile } = await import("../lambda/reconciler"));
});

afterAll(async () => {
  await world?.close();
  vi.useRealTimers();
});

beforeEach(async () => {
  await world.reset();
});

it("counts every crash point the launcher's header lists", () => {
  expect(CRASH_POINTS).toHaveLength(LAUNCHER_CRASH_SUITE.crashPoints);
});

it.each(CRASH_POINTS.map((point, i) => ({ ...point, i })))(
  "crash point $name: every job ends with one runner, never two live instances, nothing left",
  async ({ at, i }) => {
    // Each scenario on its own stretch of the fake clock, on whole minutes, later than the last and
    // than the real time the fakes started at (their rate-limit buckets refill from then).
    let now = START + i * 24 * 3_600_000;
    vi.setSystemTime(now);
    const gh = world.github.state;
    const fleet = new Fleet(world, () => now);

    for (const config of CONFIGS) await fleet.queueJob(config.labels);
    // The first launch of every job dies at the crash point.
    for (;;) {
      const records = world.sandbox.sqs.receive(world.queue.url, 1);
      if (records.length === 0) break;
      const crashed = await launcherDiesAt(world, launcher, records, (r) => at(world, r));
      expect(crashed, "the launch reached the crash point").toBe(true);
    }

    const end = now + LAUNCHER_CRASH_SUITE.reconcilerTicks * MIN;
    while (now < end) {
      now += STEP_MS;
      vi.setSystemTime(now);
      await fleet.step();
      await drainLauncher();
      if (now % MIN === 0) await reconcile();
      fleet.expectOneLiveInstancePerJob();
    }

    const jobs = await allJobs(world.sandbox, world.tables.jobs);
    expect(jobs).toHaveLength(CONFIGS.length);
    for (const job of jobs) {
      const remote = gh.jobs.get(Number(job.jobId))!;
      const ranOnce = job.state === "completed" && remote.status === "completed" && remote.runner_name;
      const failedWithReason = (job.state === "failed" || job.state === "timed-out") && !!job.reason;
      expect(ranOnce || failedWithReason, JSON.stringify(job)).toBeTruthy();
      expect(fleet.runnersStarted(job), `runners started for ${job.jobId}`).toBeLessThanOrEqual(1);
      if (ranOnce) expect(fleet.runnersStarted(job)).toBe(1);
    }
    expect(jobs.filter((j) => !isTerminal(j.state))).toEqual([]);
    // No orphan: no instance left running, no runner left registered.
    expect(
      world.sandbox.ec2.instances({ state: ["pending", "running"], tag: { [TAGS.stack]: STACK } }),
    ).toEqual([]);
    expect(gh.listRunners().filter((r) => r.name.startsWith(`${STACK}-`))).toEqual([]);
    // The launcher that died after the hand-off had done its work: no job was launched again.
    if (i === 3) expect(world.sandbox.callsTo("ec2", "CreateFleet")).toHaveLength(CONFIGS.length);
  },
  600_000,
);

async function drainLauncher() {
  for (;;) {
    const records = world.sandbox.sqs.receive(world.queue.url, 10);
    if (records.length === 0) return;
    world.sandbox.sqs.settle(world.queue.url, records, await launcher({ Records: records }));
  }
}

interface Machine {
  instanceId: string;
  configName: string;
  launchedAt: number;
  phase: "booting" | "idle" | "busy" | "gone";
  runnerId?: number;
  runnerStartedAt?: number;
}

/** GitHub's side and the instances' side of the fleet, stepped on the fake clock. */
class Fleet {
  private readonly machines = new Map<string, Machine>();
  private readonly started = new Map<string, number>(); // config → runners that came online
  private readonly agenda: { at: number; run: () => Promise<void> }[] = [];

  constructor(
    private readonly world: World,
    private readonly now: () => number,
  ) {}

  async queueJob(labels: string[]) {
    const job = this.world.github.state.seedJob({
      owner: this.world.github.repo.owner,
      repo: this.world.github.repo.name,
      labels,
    });
    await this.deliver("queued", job.id);
  }

  runnersStarted(job: JobRecord): number {
    return this.started.get(job.configName) ?? 0;
  }

  /** No config (so no job) has two instances pending or running at once. */
  expectOneLiveInstancePerJob() {
    const live = this.world.sandbox.ec2.instances({
      state: ["pending", "running"],
      tag: { [TAGS.stack]: STACK },
    });
    const configs = live.map((i) => i.tags[TAGS.config]);
    expect(configs.length, `live instances ${JSON.stringify(configs)}`).toBe(new Set(configs).size);
  }

  async step() {
    const due = this.agenda.filter((e) => e.at <= this.now());
    this.agenda.splice(0, this.agenda.length, ...this.agenda.filter((e) => e.at > this.now()));
    for (const event of due) await event.run();
    this.watchInstances();
    for (const m of this.machines.values()) {
      if (m.phase === "booting" && this.now() >= m.launchedAt + BOOT_MS) await this.boot(m);
      if (m.phase === "idle" && this.now() >= m.runnerStartedAt! + PICKUP_MS) await this.assign(m);
    }
  }

  private watchInstances() {
    for (const i of this.world.sandbox.ec2.instances({ tag: { [TAGS.stack]: STACK } })) {
      const m = this.machines.get(i.instanceId);
      if (!m && (i.state === "pending" || i.state === "running")) {
        const configName = i.tags[TAGS.config]!;
        this.machines.set(i.instanceId, {
          instanceId: i.instanceId,
          configName,
          launchedAt: this.now(),
          phase: "booting",
        });
      } else if (m && m.phase !== "gone" && i.state !== "pending" && i.state !== "running") {
        m.phase = "gone";
        const runner = m.runnerId === undefined ? undefined : this.world.github.state.runners.get(m.runnerId);
        if (runner && !runner.deleted) this.world.github.state.setRunner(runner.id, { status: "offline" });
      }
    }
  }

  /** The bootstrap: takes the JIT config from the hand-off and starts the runner, or gives up and shuts down. */
  private async boot(m: Machine) {
    const { readHandoff } = await import("../lambda/adapters/handoff");
    const item = await readHandoff(m.instanceId);
    if (!item?.jitConfig) {
      if (this.now() >= m.launchedAt + BOOT_MS + HANDOFF_WAIT_MS) this.shutDown(m);
      return;
    }
    await this.report(m, "fetchedAt");
    const runner = this.world.github.state.connectRunner(item.jitConfig);
    Object.assign(m, { runnerId: runner.id, runnerStartedAt: this.now(), phase: "idle" });
    this.started.set(m.configName, (this.started.get(m.configName) ?? 0) + 1);
    await this.report(m, "runnerStartedAt");
  }

  /** GitHub gives the idle runner the queued job of its labels; the job runs, the instance shuts down. */
  private async assign(m: Machine) {
    const gh = this.world.github.state;
    const labels = gh.runners.get(m.runnerId!)?.labels ?? [];
    const job = [...gh.jobs.values()].find(
      (j) => j.status === "queued" && j.labels.every((l) => labels.includes(l)),
    );
    if (!job) return;
    gh.assignJob(m.runnerId!, job.id);
    m.phase = "busy";
    await this.report(m, "jobStartedAt");
    await this.deliver("in_progress", job.id);
    this.agenda.push({
      at: this.now() + JOB_MS,
      run: async () => {
        gh.completeJob(job.id, "success");
        await this.deliver("completed", job.id);
        await this.report(m, "jobFinishedAt");
        this.shutDown(m);
      },
    });
  }

  private shutDown(m: Machine) {
    if (this.world.sandbox.ec2.instance(m.instanceId)?.state === "running")
      this.world.sandbox.ec2.setState(m.instanceId, "terminated");
  }

  private async report(m: Machine, field: string) {
    // The item may be gone (the reconciler cleaned it up): the real bootstrap ignores that too.
    await reportProgress(this.world, m.instanceId, { [field]: new Date(this.now()).toISOString() }).catch(
      () => undefined,
    );
  }

  private async deliver(action: "queued" | "in_progress" | "completed", jobId: number) {
    const job = this.world.github.state.jobs.get(jobId)!;
    const payload = workflowJobEvent(action, {
      id: job.id,
      runId: job.run_id,
      runAttempt: job.run_attempt,
      labels: job.labels,
      repo: this.world.repoFullName,
      installationId: this.world.github.installationId,
      ...(job.runner_name ? { runnerName: job.runner_name, runnerId: job.runner_id ?? undefined } : {}),
    });
    const response = await webhook(
      await signedApiGatewayEvent(payload, WEBHOOK_SECRET, { deliveryId: randomUUID() }),
    );
    expect(response.statusCode, `${action} delivery of job ${jobId}`).toBeLessThan(300);
  }
}
