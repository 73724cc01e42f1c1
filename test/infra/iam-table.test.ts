/**
 * The IAM table of docs/reliability-and-security.md is generated from the policy definitions (their
 * statements as a program run declares them, and each one's `why`); this fails when the two differ.
 * To regenerate it: UPDATE_IAM_TABLE=1 npx vitest run test/infra/iam-table.test.ts
 */
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { expectSectionUpToDate } from "../generated-docs";
import { type DeclaredRole, declaredRoles, iamTableMarkdown, runIamStack } from "./iam-policies";
import { ROOT } from "./stack-config";

let roles: DeclaredRole[];
beforeAll(async () => {
  roles = declaredRoles(await runIamStack());
}, 600_000);

describe("docs IAM table", () => {
  it("is the table generated from the policy definitions", () => {
    expectSectionUpToDate({
      docPath: join(ROOT, "docs", "reliability-and-security.md"),
      start: "<!-- iam-table:start (generated from the policy definitions) -->",
      end: "<!-- iam-table:end -->",
      generated: iamTableMarkdown(roles),
      updateVariable: "UPDATE_IAM_TABLE",
    });
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
