/**
 * The "What the adversarial suite tries" table of docs/reliability-and-security.md is generated from
 * the suites' own counts (test/adversarial-counts.ts); this fails when the two differ.
 * To regenerate it: UPDATE_ADVERSARIAL_TABLE=1 npx vitest run test/adversarial-table.test.ts
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  CONCURRENCY_SUITE,
  LAUNCHER_CRASH_SUITE,
  SECRETS_SCAN,
  WEBHOOK_FUZZ_PROPERTIES,
  WEBHOOK_FUZZ_SEED,
} from "./adversarial-counts";
import { expectSectionUpToDate } from "./generated-docs";

interface Row {
  tried: string;
  /** How many times per run, as a number or a product of counts. */
  times: string;
  holds: string;
}

const n = (count: number) => count.toLocaleString("en-US");

function adversarialRows(): Row[] {
  const crash = LAUNCHER_CRASH_SUITE;
  const race = CONCURRENCY_SUITE;
  const scan = SECRETS_SCAN;
  return [
    ...WEBHOOK_FUZZ_PROPERTIES.map((p) => ({
      tried: `Webhook, fast-check seed ${WEBHOOK_FUZZ_SEED}: ${p.tried}`,
      times: n(p.cases),
      holds: p.holds,
    })),
    {
      tried: `Launcher: the process dies at each of its crash points, then the reconciler runs ${crash.reconcilerTicks} minutes on the sandbox clock`,
      times: `${crash.crashPoints} crash points × ${crash.jobsPerCrashPoint} jobs`,
      holds:
        "every job ends with one runner or an explicit failure; never two live instances for a job; no instance or runner left; a crash after the hand-off launches nothing again",
    },
    {
      tried: `Concurrency: each job delivered ${race.deliveriesPerJob} times at once (the same delivery ${race.sameDeliveryRepeats} more times, the rest redeliveries with new ids), ${race.jobsPerWave} jobs at a time, while ${race.racingLaunchers} launchers receive the same messages`,
      times: `${n(race.jobs)} jobs × ${race.deliveriesPerJob} deliveries`,
      holds:
        "each job accepted once, one launch message; exactly one instance, one hand-off item and one runner registration per job; no job lost",
    },
    {
      tried: `Secrets, running fleet: a full flow (webhook → launcher → hand-off → in_progress → completed; a failed job, a failed JIT registration, a runner that never starts, token mode, bad signatures); every log line, SQS message, EC2 request and tag, the user data, ledger items and Lambda environment searched`,
      times: `${scan.jobs} jobs, ${scan.secretKinds} kinds of secret`,
      holds:
        "no App private key, webhook secret, installation token, PAT or JIT config anywhere: whole, cut short, JSON-escaped, base64 or URL-encoded",
    },
    {
      tried:
        "Secrets, program: every resource's inputs and outputs, every Lambda environment, every launch template's user data and the public stack outputs, under Pulumi mocks",
      times: `${scan.programStacks} token-mode stack`,
      holds: "the PAT and the webhook secret appear only as Pulumi secrets",
    },
  ];
}

/** The table as markdown (cells cannot hold a pipe). */
function adversarialTableMarkdown(rows = adversarialRows()): string {
  const cell = (text: string) => text.replaceAll("|", "\\|");
  return [
    "| What is tried | Times per run | What holds |",
    "| --- | --- | --- |",
    ...rows.map((r) => `| ${cell(r.tried)} | ${cell(r.times)} | ${cell(r.holds)} |`),
  ].join("\n");
}

describe("docs adversarial table", () => {
  it("is the table generated from the suites' counts", () => {
    expectSectionUpToDate({
      docPath: join(__dirname, "..", "docs", "reliability-and-security.md"),
      start: "<!-- adversarial-table:start -->",
      end: "<!-- adversarial-table:end -->",
      generated: adversarialTableMarkdown(),
      updateVariable: "UPDATE_ADVERSARIAL_TABLE",
    });
  });

  it("has a row for every webhook property and every other suite, each with its count", () => {
    const rows = adversarialRows();
    expect(rows).toHaveLength(WEBHOOK_FUZZ_PROPERTIES.length + 4);
    for (const row of rows) expect(row.times).toMatch(/\d/);
  });
});
