/**
 * The IAM table of docs/reliability-and-security.md is generated from the policy definitions (their
 * statements as a program run declares them, and each one's `why`); this fails when the two differ.
 * To regenerate it: UPDATE_IAM_TABLE=1 npx vitest run test/infra/iam-table.test.ts
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type DeclaredRole, declaredRoles, iamTableMarkdown, runIamStack } from "./iam-policies";
import { ROOT } from "./stack-config";

const START = "<!-- iam-table:start (generated from the policy definitions) -->";
const END = "<!-- iam-table:end -->";
const docPath = join(ROOT, "docs", "reliability-and-security.md");

function tableSection(doc: string): string {
  const start = doc.indexOf(START);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${docPath} lacks the ${START} … ${END} markers`);
  return doc.slice(start + START.length, end).trim();
}

let roles: DeclaredRole[];
beforeAll(async () => {
  roles = declaredRoles(await runIamStack());
}, 120_000);

describe("docs IAM table", () => {
  it("is the table generated from the policy definitions", () => {
    const doc = readFileSync(docPath, "utf8");
    const generated = iamTableMarkdown(roles);
    if (process.env.UPDATE_IAM_TABLE === "1" && tableSection(doc) !== generated) {
      const start = doc.indexOf(START) + START.length;
      writeFileSync(docPath, `${doc.slice(0, start)}\n\n${generated}\n\n${doc.slice(doc.indexOf(END))}`);
      return;
    }
    expect(tableSection(doc), "the IAM table is stale: see this test's header").toBe(generated);
  });

  it("has a row, with a reason, for every statement and managed policy of every role", () => {
    const table = iamTableMarkdown(roles);
    for (const role of roles) {
      expect(table).toContain(`### ${role.name} `);
      for (const s of role.statements)
        expect(table).toMatch(new RegExp(`^\\| ${s.Sid} \\|.*\\| [^|]+ \\|$`, "m"));
      for (const m of role.managed) expect(table).toContain(`| ${m} (AWS managed) |`);
    }
  });
});
