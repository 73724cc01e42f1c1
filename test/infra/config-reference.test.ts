/**
 * docs/configuration.md's reference table is generated from the config schema; this fails when the
 * two differ. To regenerate it: UPDATE_CONFIG_REFERENCE=1 npx vitest run test/infra/config-reference.test.ts
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { configReferenceMarkdown, configReferenceRows } from "../../src/config/reference";
import { devStackValues, PROJECT, ROOT } from "./stack-config";

const START = "<!-- config-reference:start (generated from src/config/schema.ts) -->";
const END = "<!-- config-reference:end -->";
const docPath = join(ROOT, "docs", "configuration.md");

function referenceSection(doc: string): string {
  const start = doc.indexOf(START);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) throw new Error(`docs/configuration.md lacks the ${START} … ${END} markers`);
  return doc.slice(start + START.length, end).trim();
}

describe("docs/configuration.md reference", () => {
  it("is the table generated from the schema", () => {
    const doc = readFileSync(docPath, "utf8");
    const generated = configReferenceMarkdown();
    if (process.env.UPDATE_CONFIG_REFERENCE === "1" && referenceSection(doc) !== generated) {
      const start = doc.indexOf(START) + START.length;
      writeFileSync(docPath, `${doc.slice(0, start)}\n\n${generated}\n\n${doc.slice(doc.indexOf(END))}`);
      return;
    }
    expect(referenceSection(doc), "docs/configuration.md reference is stale: see this test's header").toBe(
      generated,
    );
  });

  it("documents every key the example stack sets, and every key has a description", () => {
    const keys = configReferenceRows().map((r) => r.key.replace(/`/g, ""));
    for (const row of configReferenceRows()) expect(row.description, row.key).not.toBe("");
    const walk = (value: unknown, key: string) => {
      expect(keys, `Pulumi.dev.yaml key ${key}`).toContain(key);
      if (value && typeof value === "object" && !Array.isArray(value)) {
        for (const [k, v] of Object.entries(value)) {
          walk(v, `${key}.${k}`);
        }
      }
    };
    for (const [k, v] of Object.entries(devStackValues())) {
      if (!k.startsWith(`${PROJECT}:`)) continue;
      const key = k.slice(PROJECT.length + 1);
      if (key === "labelConfigs") {
        for (const config of Object.values(v as Record<string, Record<string, unknown>>))
          for (const [field, fv] of Object.entries(config)) walk(fv, `labelConfigs.<name>.${field}`);
      } else walk(v, key);
    }
  });
});
