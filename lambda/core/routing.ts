/**
 * Label routing: which label config serves a job, from the job's `runs-on` labels. Pure, so the
 * webhook routes with it and the Pulumi program validates the configs with it at deploy time.
 *
 * The rule (docs/workflow-authors.md, "How labels pick a runner"):
 * - Labels are compared case-insensitively, trimmed, duplicates ignored (GitHub matches runner labels
 *   the same way).
 * - A job must carry the required label (`self-hosted` by default); otherwise it is not ours.
 * - The required label is implicit in every config: a config's label set is written without it, and
 *   is ignored if written anyway. It is likewise removed from the job's labels before matching.
 * - The job routes to the config whose label set equals the job's labels or, failing that, is the
 *   smallest superset of them. A config missing any of the job's labels never serves it.
 * - Two configs that a job could tie on (same smallest size, both containing the job's labels) are a
 *   config error that `findRoutingConflicts` reports at deploy time, so at run time the choice is
 *   always unique; should a tie reach the webhook anyway, the job is ignored rather than guessed.
 */
import type { LabelRoute } from "../shared/label-config";

/** `unmatched`: the job is meant for this fleet (it has the required label) but no config takes it. */
export type RouteResult = { config: string } | { ignored: string; unmatched?: true };

export interface RoutingConflict {
  /**
   * `duplicate-name`: two configs share a name. `same-labels`: two configs have the same label set.
   * `ambiguous`: some jobs (`labels`, and subsets no smaller config serves) fit both equally.
   */
  kind: "duplicate-name" | "same-labels" | "ambiguous";
  /** The configs a job could not choose between (or that share a name). */
  configs: [string, string];
  /** A job label set (besides the required label) that ties; empty for a plain `runs-on: self-hosted`. */
  labels: string[];
  message: string;
}

/** Lower-cased, trimmed, de-duplicated labels, without empty ones, in first-seen order. */
export function normalizeLabels(labels: readonly string[]): string[] {
  return [...new Set(labels.map((label) => label.trim().toLowerCase()).filter(Boolean))];
}

interface NormalizedRoute {
  name: string;
  labels: Set<string>;
}

function normalizeRoutes(routes: readonly LabelRoute[], requiredLabel: string): NormalizedRoute[] {
  const required = requiredLabel.trim().toLowerCase();
  return routes.map((route) => ({
    name: route.name,
    labels: new Set(normalizeLabels(route.labels).filter((label) => label !== required)),
  }));
}

const containsAll = (set: Set<string>, labels: Iterable<string>) => {
  for (const label of labels) if (!set.has(label)) return false;
  return true;
};

/**
 * Routes a job's `runs-on` labels to the name of the label config that serves it. An `ignored` reason
 * names only our own labels and configs, never the job's (they are the request's text).
 */
export function routeJob(
  labels: readonly string[],
  routes: readonly LabelRoute[],
  requiredLabel: string,
): RouteResult {
  const required = requiredLabel.trim().toLowerCase();
  const jobLabels = normalizeLabels(labels);
  if (!jobLabels.includes(required)) return { ignored: `job lacks the required label "${required}"` };
  const wanted = jobLabels.filter((label) => label !== required);
  const candidates = normalizeRoutes(routes, required).filter((route) => containsAll(route.labels, wanted));
  if (candidates.length === 0) {
    return { ignored: "no label config has all of the job's labels", unmatched: true };
  }
  const smallest = Math.min(...candidates.map((route) => route.labels.size));
  const best = candidates.filter((route) => route.labels.size === smallest);
  if (best.length > 1) {
    return {
      ignored: `the job's labels match configs ${best.map((r) => r.name).join(", ")} equally`,
      unmatched: true,
    };
  }
  return { config: best[0]!.name };
}

/**
 * Every pair of configs some job could not be routed between, and duplicate names. Empty means routing
 * is unambiguous for every possible job.
 *
 * Why pairs suffice: a job with labels S ties when its smallest supersets A and B have equal size. Then
 * T = A ∩ B ⊇ S, every superset of T is one of S, and A and B contain T: so T ties on A and B too.
 * Conversely, T = A ∩ B ties on equal-size A and B unless a strictly smaller config contains T (and
 * then no subset of T can tie on A and B either). So checking T for each equal-size pair finds all.
 */
export function findRoutingConflicts(
  routes: readonly LabelRoute[],
  requiredLabel = "self-hosted",
): RoutingConflict[] {
  const normalized = normalizeRoutes(routes, requiredLabel);
  const required = requiredLabel.trim().toLowerCase();
  const conflicts: RoutingConflict[] = [];
  const show = (labels: Iterable<string>) => `[${[required, ...labels].join(", ")}]`;
  for (let i = 0; i < normalized.length; i++) {
    for (let j = i + 1; j < normalized.length; j++) {
      const a = normalized[i]!;
      const b = normalized[j]!;
      if (a.name === b.name) {
        conflicts.push({
          kind: "duplicate-name",
          configs: [a.name, b.name],
          labels: [],
          message: `two label configs are named "${a.name}"`,
        });
        continue;
      }
      if (a.labels.size !== b.labels.size) continue;
      const shared = [...a.labels].filter((label) => b.labels.has(label));
      const smallerServes = normalized.some(
        (c) => c.labels.size < a.labels.size && containsAll(c.labels, shared),
      );
      if (smallerServes) continue;
      const same = shared.length === a.labels.size;
      conflicts.push({
        kind: same ? "same-labels" : "ambiguous",
        configs: [a.name, b.name],
        labels: shared,
        message: same
          ? `label configs "${a.name}" and "${b.name}" have the same labels ${show(shared)}`
          : `a job with runs-on: ${show(shared)} could go to "${a.name}" or "${b.name}" (both are its ` +
            `smallest matching configs); add a config with exactly these labels, or change one of the two`,
      });
    }
  }
  return conflicts;
}
