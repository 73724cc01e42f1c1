/**
 * docs/architecture.md stays true to the code: every `file:function` of its "Where is…?" table is
 * declared in that file, its state-machine table is `ALLOWED_FROM`, and its settings table lists
 * every environment variable lambda/shared/settings.ts reads.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ALLOWED_FROM, JOB_STATES } from "../lambda/shared/job";
import { ROOT } from "./docs-support";

const doc = readFileSync(join(ROOT, "docs", "architecture.md"), "utf8");

/** The rows of the markdown table that follows a heading, as cells. */
function tableAfter(heading: string): string[][] {
  const start = doc.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`docs/architecture.md has no heading ${heading}`);
  const lines = doc.slice(start).split("\n").slice(2);
  const first = lines.findIndex((line) => line.startsWith("|"));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(
      line
        .split("|")
        .slice(1, -1)
        .map((cell) => cell.trim()),
    );
  }
  return rows;
}

const ticked = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

describe("docs/architecture.md", () => {
  const answers = tableAfter("## Where is…?").map(([question, answer]) => [question!, answer!] as const);

  it("answers the issue's questions", () => {
    const questions = answers.map(([q]) => q).join("\n");
    for (const topic of ["spot fallback", "limits", "deletes a runner", "writes the hand-off", "verified"])
      expect(questions).toContain(topic);
    expect(questions).toMatch(/GitHub budget/);
    expect(questions).toMatch(/timed out/);
  });

  it.each(answers)("%s → %s names a function declared in that file", (_question, answer) => {
    const [ref] = ticked(answer);
    const match = /^([\w./-]+\.ts):([A-Za-z_$][\w$]*)$/.exec(ref ?? "");
    expect(match, `"${answer}" is not \`path:function\``).not.toBeNull();
    const [, path, name] = match!;
    expect(existsSync(join(ROOT, path!)), path).toBe(true);
    const source = readFileSync(join(ROOT, path!), "utf8");
    const declared = new RegExp(`(?:function\\*?|const|let|class)\\s+${name!.replace(/\$/g, "\\$")}\\b`);
    expect(source, `${name} in ${path}`).toMatch(declared);
  });

  it("shows the job state machine as ALLOWED_FROM has it", () => {
    const documented: Record<string, string[]> = {};
    for (const [to, from] of tableAfter("## The job state machine")) {
      for (const state of ticked(to!)) documented[state] = ticked(from!).sort();
    }
    const actual = Object.fromEntries(JOB_STATES.map((s) => [s, [...ALLOWED_FROM[s]].sort()]));
    expect(documented).toEqual(actual);
  });

  it("lists every setting lambda/shared/settings.ts reads", () => {
    const settings = readFileSync(join(ROOT, "lambda", "shared", "settings.ts"), "utf8");
    const variables = new Set(
      [...settings.matchAll(/r\.\w+(?:<[^>]*>)?\(\s*"([A-Z][A-Z0-9_]+)"/g)].map((m) => m[1]!),
    );
    expect(variables.size).toBeGreaterThan(20);
    const missing = [...variables].filter((name) => !doc.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });
});
