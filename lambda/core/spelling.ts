/** Near misses of a name, for "did you mean …?": config errors (src/config) and a mistyped label (label-suggestion.ts). */

/** Levenshtein distance: the fewest single-character insertions, deletions and substitutions. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/**
 * The candidate nearest to `word` (first of equals, in the candidates' order), if it is at most
 * `maxDistance` edits away: beyond that a suggestion is more likely a distraction than the fix.
 */
export function closestName(
  word: string,
  candidates: Iterable<string>,
  maxDistance = Math.max(1, Math.min(3, Math.floor(word.length / 4))),
): string | undefined {
  let best: string | undefined;
  let bestDistance = maxDistance + 1;
  for (const candidate of candidates) {
    const distance = editDistance(word, candidate);
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return best;
}
