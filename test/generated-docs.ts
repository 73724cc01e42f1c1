/**
 * The docs' generated sections (a table between two markers, e.g. in docs/reliability-and-security.md):
 * a test checks that a section is what its generator makes now, or, when the named environment
 * variable is 1, writes it so.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { expect } from "vitest";

export interface GeneratedSection {
  docPath: string;
  /** The marker lines around the section. */
  start: string;
  end: string;
  /** The section as its generator makes it now. */
  generated: string;
  /** The environment variable that regenerates the section (set to 1), named in the failure. */
  updateVariable: string;
}

function sectionOf(doc: string, { docPath, start, end }: GeneratedSection): string {
  const from = doc.indexOf(start);
  const to = doc.indexOf(end);
  if (from < 0 || to < from) throw new Error(`${docPath} lacks the ${start} … ${end} markers`);
  return doc.slice(from + start.length, to).trim();
}

/** Fails when the doc's section differs from `generated` (or rewrites it, under `updateVariable`=1). */
export function expectSectionUpToDate(section: GeneratedSection): void {
  const doc = readFileSync(section.docPath, "utf8");
  const current = sectionOf(doc, section);
  if (process.env[section.updateVariable] === "1" && current !== section.generated) {
    const from = doc.indexOf(section.start) + section.start.length;
    const rest = doc.slice(doc.indexOf(section.end));
    writeFileSync(section.docPath, `${doc.slice(0, from)}\n\n${section.generated}\n\n${rest}`);
    return;
  }
  expect(current, `the section is stale: regenerate it with ${section.updateVariable}=1`).toBe(
    section.generated,
  );
}
