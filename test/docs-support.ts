/**
 * Reading the project's documents for the docs tests: README.md and docs/*.md, their backticked code
 * spans and fenced blocks, their links and their headings' anchors (as GitHub makes them).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export const ROOT = join(__dirname, "..");

export interface Doc {
  /** Path from the repository root, e.g. `docs/on-call.md`. */
  path: string;
  text: string;
}

export function readDocs(): Doc[] {
  const docs = readdirSync(join(ROOT, "docs"))
    .filter((name) => name.endsWith(".md"))
    .map((name) => `docs/${name}`);
  return ["README.md", ...docs].map((path) => ({ path, text: readFileSync(join(ROOT, path), "utf8") }));
}

/** The contents of every inline code span (fenced blocks excluded). */
export function codeSpans(text: string): string[] {
  const withoutBlocks = text.replace(/^```[\s\S]*?^```/gm, "");
  return [...withoutBlocks.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
}

/** The lines of every fenced code block. */
export function blockLines(text: string): string[] {
  return [...text.matchAll(/^```[^\n]*\n([\s\S]*?)^```/gm)].flatMap((m) => m[1]!.split("\n"));
}

/** Relative link targets (`[text](target)`), without web links. */
export function relativeLinks(text: string): string[] {
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((t) => !/^[a-z]+:/.test(t));
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes. */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");
}

export function anchorsOf(text: string): Set<string> {
  const withoutBlocks = text.replace(/^```[\s\S]*?^```/gm, "");
  return new Set([...withoutBlocks.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchorOf(m[1]!)));
}
