/**
 * Queued → job running: a job's whole wait, from what the benchmark measured (the delivery, the EC2
 * request that started its instance, the instance's boot on the sandbox clock, its hand-off) and
 * what it models: the bootstrap's own time (scenario 5's median) and the runner's connection to
 * GitHub. Each path is split into what is ours (control plane, waiting for the hand-off, bootstrap),
 * EC2's (the request, pending, the OS up to the user data) and GitHub's (the runner's connection).
 */
import { BOOTSTRAP_DEFAULTS } from "../../src/components/runner-bootstrap";
import type { InstanceBoot } from "../../test/sandbox/ec2";
import { type Duration, sampleMs, seededRandom } from "../../test/sandbox/ec2-boot";
import { percentile, round } from "./scenarios";

/** The runner's connection (docs/performance.md "Boot model" cites each figure). */
export const RUNNER_MODEL = {
  /** run.sh --jitconfig → "Listening for Jobs", its files read from the volume for the first time. */
  listenFirstBootMs: { p50: 5_000, p90: 8_000 },
  /** The same on a volume already read once (a started or resumed pool member). */
  listenWarmMs: { p50: 4_000, p90: 6_000 },
  /** "Listening for Jobs" → the job assigned to the runner and running. */
  assignMs: { p50: 2_000, p90: 4_000 },
} satisfies Record<string, Duration>;

/** The bootstrap asks for its hand-off every second until it exists (runner/bootstrap.sh POLL_SECONDS). */
const HANDOFF_POLL_MS = 1_000;

/** Scenario 5's median in the run of docs/performance.md, for runs that skip scenario 5. */
export const BOOTSTRAP_FALLBACK_MS = 121;

export interface JobTimeline {
  jobId: string;
  /** When GitHub delivered the job's `queued` webhook (its first attempt). */
  queuedAt: number;
  /** When the EC2 request that started its instance was sent (CreateFleet, or StartInstances of a pool member). */
  requestSentAt: number;
  boot: InstanceBoot;
  /** When its hand-off (the JIT config) was written. */
  handoffAt: number;
}

export interface RunningPath {
  totalMs: number;
  oursMs: number;
  /** The part of `oursMs` the bootstrap spent waiting for a hand-off written after the OS was up. */
  handoffWaitMs: number;
  ec2Ms: number;
  githubMs: number;
  /** The hand-off came after the bootstrap stopped waiting for it: on EC2 the instance shuts down. */
  handoffTooLate: boolean;
}

export function runningPath(t: JobTimeline, bootstrapMs: number, random: () => number): RunningPath {
  const late = t.handoffAt - t.boot.readyAt;
  const handoffWaitMs = late > 0 ? Math.ceil(late / HANDOFF_POLL_MS) * HANDOFF_POLL_MS : 0;
  const listen = t.boot.kind === "launch" ? RUNNER_MODEL.listenFirstBootMs : RUNNER_MODEL.listenWarmMs;
  const oursMs = t.requestSentAt - t.queuedAt + handoffWaitMs + bootstrapMs;
  const ec2Ms = t.boot.readyAt - t.requestSentAt;
  const githubMs = sampleMs(listen, random) + sampleMs(RUNNER_MODEL.assignMs, random);
  const handoffTooLate = late > BOOTSTRAP_DEFAULTS.handoffWaitSeconds * 1000;
  return { totalMs: oursMs + ec2Ms + githubMs, oursMs, handoffWaitMs, ec2Ms, githubMs, handoffTooLate };
}

export interface PathSummary {
  p50Ms: number;
  p90Ms: number;
  /** Of all the waiting (the paths' sum), the parts that were ours, EC2's and GitHub's. */
  shares: { ours: number; ec2: number; github: number };
  /** Medians of the parts. */
  medianMs: { ours: number; handoffWait: number; ec2: number; github: number };
  jobs: number;
  /** Jobs whose hand-off came too late for the bootstrap (their paths here are lower bounds). */
  handoffTooLate: number;
}

/** p50, p90 and shares of the jobs' paths; the runner draws are seeded, so a rerun differs only in what was measured. */
export function summarizePaths(timelines: JobTimeline[], bootstrapMs: number): PathSummary | undefined {
  if (timelines.length === 0) return undefined;
  const random = seededRandom(1);
  const paths = timelines.map((t) => runningPath(t, bootstrapMs, random));
  type Part = Exclude<keyof RunningPath, "handoffTooLate">;
  const sum = (part: Part) => paths.reduce((n, p) => n + p[part], 0);
  const at = (part: Part, p: number) =>
    round(
      percentile(
        paths.map((path) => path[part]),
        p,
      ),
    );
  const median = (part: Part) => at(part, 50);
  const total = sum("totalMs");
  return {
    p50Ms: median("totalMs"),
    p90Ms: at("totalMs", 90),
    shares: {
      ours: round(sum("oursMs") / total, 3),
      ec2: round(sum("ec2Ms") / total, 3),
      github: round(sum("githubMs") / total, 3),
    },
    medianMs: {
      ours: median("oursMs"),
      handoffWait: median("handoffWaitMs"),
      ec2: median("ec2Ms"),
      github: median("githubMs"),
    },
    jobs: paths.length,
    handoffTooLate: paths.filter((p) => p.handoffTooLate).length,
  };
}
