/**
 * The README's configuration reference is generated from the config schema; this fails when the two
 * differ. To regenerate it: UPDATE_CONFIG_REFERENCE=1 npx vitest run test/infra/config-reference.test.ts
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { configReferenceMarkdown, configReferenceRows } from "../../src/config/reference";
import { devStackValues, PROJECT, ROOT } from "./stack-config";

const START = "<!-- config-reference:start (generated from src/config/schema.ts) -->";
const END = "<!-- config-reference:end -->";
const readmePath = join(ROOT, "README.md");

function readmeSection(readme: string): string {
  const start = readme.indexOf(START);
  const end = readme.indexOf(END);
  if (start < 0 || end < start) throw new Error(`README.md lacks the ${START} … ${END} markers`);
  return readme.slice(start + START.length, end).trim();
}

describe("README configuration reference", () => {
  it("is the table generated from the schema", () => {
    const readme = readFileSync(readmePath, "utf8");
    const generated = configReferenceMarkdown();
    if (process.env.UPDATE_CONFIG_REFERENCE === "1" && readmeSection(readme) !== generated) {
      const start = readme.indexOf(START) + START.length;
      writeFileSync(
        readmePath,
        `${readme.slice(0, start)}\n\n${generated}\n\n${readme.slice(readme.indexOf(END))}`,
      );
      return;
    }
    expect(readmeSection(readme), "README config reference is stale: see this test's header").toBe(generated);
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
