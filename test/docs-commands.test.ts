/**
 * Every command the README and docs/ show runs as written: each `npm run X` is a script of
 * package.json, each flag after `--` is one the script parses, each subcommand one it knows; each
 * repository path in backticks exists, and each relative link leads to a file (and heading) that
 * exists.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { describe, expect, it } from "vitest";
import { anchorsOf, blockLines, codeSpans, type Doc, ROOT, readDocs, relativeLinks } from "./docs-support";

const docs = readDocs();
const scripts: Record<string, string> = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).scripts;

interface NpmRun {
  doc: string;
  script: string;
  args: string[];
}

/** `npm run [-s] NAME [-- ARGS]` in code spans and code blocks; ARGS end at a comment. */
function npmRuns(doc: Doc): NpmRun[] {
  const snippets = [...codeSpans(doc.text), ...blockLines(doc.text)];
  return snippets.flatMap((snippet) =>
    [...snippet.matchAll(/npm run(?: -s| --silent)? ([\w:.-]+)((?: -- [^#|`]*)?)/g)].map((m) => ({
      doc: doc.path,
      script: m[1]!,
      args: m[2]!.replace(/^ -- /, "").trim().split(/\s+/).filter(Boolean),
    })),
  );
}

/** The sources that parse a script's command line: its entry and the scripts/lib modules it imports. */
function commandLineSources(script: string): string {
  // `node scripts/run-ts.mjs scripts/doctor.ts`: the last script named is the entry.
  const entry = [...(scripts[script] ?? "").matchAll(/scripts\/[\w./-]+\.(?:ts|mjs)/g)].at(-1)?.[0];
  if (!entry) return "";
  const source = readFileSync(join(ROOT, entry), "utf8");
  const libs = [...source.matchAll(/from "\.\/lib\/([\w-]+)"/g)].map((m) => `scripts/lib/${m[1]}.ts`);
  return [source, ...libs.map((lib) => readFileSync(join(ROOT, lib), "utf8"))].join("\n");
}

function knownFlags(source: string): Set<string> {
  const options = [...source.matchAll(/^\s+"?([a-z][\w-]*)"?: \{ type: "(?:string|boolean)"/gm)].map(
    (m) => m[1]!,
  );
  const literal = [...source.matchAll(/"--([a-z][\w-]*)"/g)].map((m) => m[1]!);
  return new Set([...options, ...literal]);
}

function knownCommands(source: string): string[] {
  return [...source.matchAll(/command === "([\w-]+)"/g)].map((m) => m[1]!);
}

/** Repository paths in code spans: `lambda/…`, `src/…`, … (a `:function` suffix dropped). */
const REPO_PATH = /^(?:src|lambda|scripts|docs|examples|test|image|runner)\/[\w./-]*$/;
function repoPaths(doc: Doc): string[] {
  return codeSpans(doc.text)
    .flatMap((span) => span.split(/[\s,()]+/))
    .map((token) => token.replace(/:[\w$]+$/, ""))
    .filter((token) => REPO_PATH.test(token));
}

describe("commands in README.md and docs/", () => {
  const runs = docs.flatMap(npmRuns);

  it("finds the README's first-deploy commands", () => {
    const readme = runs.filter((r) => r.doc === "README.md").map((r) => r.script);
    expect(readme).toEqual(expect.arrayContaining(["setup:github-app", "doctor", "status", "demo", "bench"]));
  });

  it.each(runs.map((r) => [`${r.doc}: npm run ${r.script} ${r.args.join(" ")}`.trim(), r] as const))(
    "%s",
    (_name, run) => {
      expect(Object.keys(scripts), `npm run ${run.script} in ${run.doc}`).toContain(run.script);
      const source = commandLineSources(run.script);
      const flags = knownFlags(source);
      for (const arg of run.args.filter((a) => a.startsWith("--"))) {
        expect([...flags], `${arg} of npm run ${run.script} in ${run.doc}`).toContain(arg.slice(2));
      }
      const commands = knownCommands(source);
      const first = run.args[0];
      if (commands.length && first && !first.startsWith("-")) {
        expect(commands, `subcommand of npm run ${run.script} in ${run.doc}`).toContain(first);
      }
    },
  );
});

describe("paths and links in README.md and docs/", () => {
  it.each(docs.map((d) => [d.path, d] as const))(
    "%s: every repository path in backticks exists",
    (_p, doc) => {
      const missing = repoPaths(doc).filter((path) => !existsSync(join(ROOT, path)));
      expect(missing, `paths named in ${doc.path}`).toEqual([]);
    },
  );

  it.each(docs.map((d) => [d.path, d] as const))("%s: every relative link leads somewhere", (_p, doc) => {
    const broken = relativeLinks(doc.text).filter((link) => {
      const [file, anchor] = link.split("#");
      const target = file ? normalize(join(dirname(doc.path), file)) : doc.path;
      if (!existsSync(join(ROOT, target))) return true;
      if (!anchor || !target.endsWith(".md")) return false;
      return !anchorsOf(readFileSync(join(ROOT, target), "utf8")).has(anchor);
    });
    expect(broken, `links in ${doc.path}`).toEqual([]);
  });
});
