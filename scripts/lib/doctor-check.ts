/**
 * One `npm run doctor` check's result, and how the tool prints them: ✔ passed, ! a warning (worth a
 * look, not a failure), ✖ failed (its fix on the next line), – not applicable here.
 */

export type CheckLevel = "ok" | "warn" | "fail" | "skip";

export interface Check {
  name: string;
  /** False only for a failure: a warning is ok. */
  ok: boolean;
  level: CheckLevel;
  detail: string;
  /** What to do; null when there is nothing to do. */
  fix: string | null;
}

const check = (level: CheckLevel, name: string, detail: string, fix: string | null = null): Check => ({
  name,
  ok: level !== "fail",
  level,
  detail,
  fix,
});

export const pass = (name: string, detail: string) => check("ok", name, detail);
export const warn = (name: string, detail: string, fix?: string) => check("warn", name, detail, fix);
export const fail = (name: string, detail: string, fix: string) => check("fail", name, detail, fix);
export const skip = (name: string, detail: string) => check("skip", name, detail);

/**
 * Runs one check; a check that throws (AWS or GitHub refused, the network failed) is a failure of
 * that check alone, said with `explain` when it knows the error.
 */
export async function guarded(
  name: string,
  run: () => Promise<Check | Check[]>,
  explain: (error: unknown) => string | undefined,
): Promise<Check[]> {
  try {
    const result = await run();
    return Array.isArray(result) ? result : [result];
  } catch (error) {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return [
      fail(
        name,
        `could not check: ${message}`,
        explain(error) ?? "run the check again; if it persists, see the error above",
      ),
    ];
  }
}

const SYMBOL: Record<CheckLevel, string> = { ok: "✔", warn: "!", fail: "✖", skip: "–" };

/** The checks as the terminal shows them, with a closing count. */
export function renderChecks(checks: Check[]): string[] {
  const lines: string[] = [];
  for (const c of checks) {
    lines.push(`${SYMBOL[c.level]} ${c.name}: ${c.detail}`);
    if (c.fix && c.level !== "ok") lines.push(`    fix: ${c.fix}`);
  }
  const failed = checks.filter((c) => c.level === "fail").length;
  const warnings = checks.filter((c) => c.level === "warn").length;
  lines.push(
    "",
    failed || warnings
      ? `${failed} failed, ${warnings} warning${warnings === 1 ? "" : "s"} of ${checks.length} checks`
      : `all ${checks.length} checks passed`,
  );
  return lines;
}
