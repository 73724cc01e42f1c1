/**
 * For a job whose `runs-on` labels match no label config: the config it most likely meant, and how
 * its labels differ, so a mistyped label (`larg` for `large`) is visible to the on-call and the
 * workflow author. Pure; labels are compared as routing compares them (core/routing.ts: trimmed,
 * case-insensitive, the required label implicit).
 */
// The config errors' spelling helper: pure, no dependencies (a Lambda bundle would take it whole).

import type { LabelRoute } from "../shared/label-config";
import { normalizeLabels } from "./routing";
import { editDistance } from "./spelling";

export interface LabelSuggestion {
  /** The closest config's name. */
  config: string;
  /** The job's labels that config lacks: each one alone keeps the job from routing there. */
  extra: string[];
  /** That config's labels the job lacks (they do not block routing; they hint at what was meant). */
  missing: string[];
  /** Pairs of an extra and a missing label a typo apart: `label` was most likely `meant`. */
  typos: { label: string; meant: string }[];
}

/** A label this close to another is taken for a typo of it: 1 edit, 2 from 6 characters, at most 3. */
const typoDistance = (label: string) => Math.max(1, Math.min(3, Math.floor(label.length / 3)));

/** Pairs each extra label with the nearest unpaired missing one within its typo distance. */
function pairTypos(extra: string[], missing: string[]): { label: string; meant: string }[] {
  const free = [...missing];
  const typos: { label: string; meant: string }[] = [];
  for (const label of extra) {
    let best: { index: number; distance: number } | undefined;
    free.forEach((candidate, index) => {
      const distance = editDistance(label, candidate);
      if (distance <= typoDistance(label) && (!best || distance < best.distance)) best = { index, distance };
    });
    if (best) typos.push({ label, meant: free.splice(best.index, 1)[0]! });
  }
  return typos;
}

function compare(jobLabels: string[], route: LabelRoute, required: string): LabelSuggestion {
  const configLabels = normalizeLabels(route.labels).filter((label) => label !== required);
  const extra = jobLabels.filter((label) => !configLabels.includes(label));
  const missing = configLabels.filter((label) => !jobLabels.includes(label));
  return { config: route.name, extra, missing, typos: pairTypos(extra, missing) };
}

/**
 * How far a config is from the job, compared in order: extra labels that are no typo (each is a real
 * mismatch), then typos, then missing labels no typo explains. A config with nothing extra is one the
 * job routes to, so it always wins, and the smallest such (routing's pick) first.
 */
const distance = (s: LabelSuggestion) => [
  s.extra.length - s.typos.length,
  s.typos.length,
  s.missing.length - s.typos.length,
];

function closer(a: LabelSuggestion, b: LabelSuggestion): boolean {
  const [da, db] = [distance(a), distance(b)];
  const differing = da.findIndex((d, i) => d !== db[i]);
  return differing >= 0 && da[differing]! < db[differing]!;
}

/**
 * The config closest to the job's labels (undefined when there are no configs; ties go to the config
 * listed first). Meant for jobs that carry the required label and route nowhere; for one that routes,
 * it is the config routing picks, with no extra labels.
 */
export function suggestLabelConfig(
  labels: readonly string[],
  routes: readonly LabelRoute[],
  requiredLabel: string,
): LabelSuggestion | undefined {
  const required = requiredLabel.trim().toLowerCase();
  const jobLabels = normalizeLabels(labels).filter((label) => label !== required);
  let best: LabelSuggestion | undefined;
  for (const route of routes) {
    const candidate = compare(jobLabels, route, required);
    if (!best || closer(candidate, best)) best = candidate;
  }
  return best;
}

/** The suggestion in one line: `closest config linux-x64-large: "larg" is not one of its labels (did you mean "large"?)`. */
export function describeSuggestion(suggestion: LabelSuggestion | undefined): string {
  if (!suggestion) return "no label configs to compare with";
  const meant = new Map(suggestion.typos.map((t) => [t.label, t.meant]));
  const quote = (labels: string[]) => labels.map((l) => `"${l}"`).join(", ");
  const parts = suggestion.extra.map((label) =>
    meant.has(label)
      ? `"${label}" is not one of its labels (did you mean "${meant.get(label)}"?)`
      : `"${label}" is not one of its labels`,
  );
  const unexplained = suggestion.missing.filter((label) => ![...meant.values()].includes(label));
  if (unexplained.length) parts.push(`the job lacks ${quote(unexplained)} (that alone would not block it)`);
  return `closest config ${suggestion.config}: ${parts.join("; ") || "its labels match"}`;
}
