/**
 * Which jobs the launcher may launch now, pure: the runner limits before claiming (allocateSlots),
 * the claims that must be given back after claiming when launchers race (claimsOverLimits), how long
 * a job waits for GitHub's registration budget, and the queue timeout. "Where are limits counted?" —
 * here, over the active jobs the launcher reads (lambda/launcher/admit-jobs.ts).
 */

export interface SlotRequest {
  configName: string;
  maxRunners: number;
  /** How many jobs of this config want to launch now. */
  wanted: number;
}

/** Active jobs per label config. */
export function activeCounts(active: { configName: string }[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const job of active) counts.set(job.configName, (counts.get(job.configName) ?? 0) + 1);
  return counts;
}

/**
 * How many jobs of each config may launch now, so that neither the config's `maxRunners` nor the
 * total `maxRunnersTotal` is exceeded, counting the `active` jobs (launching, launched, running)
 * of each config. The total is shared in request order (the caller passes oldest groups first).
 */
export function allocateSlots(
  requests: SlotRequest[],
  active: ReadonlyMap<string, number>,
  maxRunnersTotal: number,
): Map<string, number> {
  let totalActive = 0;
  for (const n of active.values()) totalActive += n;
  let totalFree = Math.max(0, maxRunnersTotal - totalActive);
  const slots = new Map<string, number>();
  for (const { configName, maxRunners, wanted } of requests) {
    const configFree = Math.max(0, maxRunners - (active.get(configName) ?? 0));
    const granted = Math.min(wanted, configFree, totalFree);
    slots.set(configName, (slots.get(configName) ?? 0) + granted);
    totalFree -= granted;
  }
  return slots;
}

export interface ActiveClaim {
  jobId: string;
  configName: string;
  state: string;
  /** When the job was claimed (queued → launching). */
  launchingAt?: string;
}

/**
 * The active jobs the limits count: the byState index's, plus the claims in the launchers' register
 * (adapters/claims-register.ts registerClaims) that the index does not show yet. The index lags its
 * table; the register is read in the very write that adds this launcher's claims.
 */
export function withRecentClaims(indexed: ActiveClaim[], registered: ActiveClaim[]): ActiveClaim[] {
  const seen = new Set(indexed.map((job) => job.jobId));
  return [...indexed, ...registered.filter((claim) => !seen.has(claim.jobId))];
}

/**
 * After claiming, which of `mine` (this invocation's claims) must be given back so the limits
 * hold even when launchers race. Jobs already `launched`/`running` and every other launcher's
 * `launching` claims count first; then this invocation's claims, oldest first, stay while both
 * limits hold.
 *
 * Why the others go first rather than a shared ranking by claim time: a claim's time is taken before
 * its write, so launcher B can see launcher A's claims as older than its own although A checked the
 * limits before B's claims were visible. Ranked by time, B would keep its own "older" claims and A
 * would already have kept its own: over the limit. With the others first, whoever sees both gives
 * way; when both see both, both may give some back (those jobs wait a little; the limit holds).
 */
export function claimsOverLimits(
  active: ActiveClaim[],
  mine: ReadonlySet<string>,
  maxRunnersOf: (configName: string) => number,
  maxRunnersTotal: number,
): Set<string> {
  const counted = new Map<string, number>();
  let total = 0;
  const myClaims: ActiveClaim[] = [];
  for (const job of active) {
    if (job.state === "launching" && mine.has(job.jobId)) myClaims.push(job);
    else {
      counted.set(job.configName, (counted.get(job.configName) ?? 0) + 1);
      total++;
    }
  }
  myClaims.sort(
    (a, b) => (a.launchingAt ?? "").localeCompare(b.launchingAt ?? "") || a.jobId.localeCompare(b.jobId),
  );
  const giveBack = new Set<string>();
  for (const job of myClaims) {
    const n = counted.get(job.configName) ?? 0;
    if (n >= maxRunnersOf(job.configName) || total >= maxRunnersTotal) {
      giveBack.add(job.jobId);
      continue;
    }
    counted.set(job.configName, n + 1);
    total++;
  }
  return giveBack;
}

/** What the shared GitHub budget said when the launcher asked for registrations. */
export interface BudgetAnswer {
  /** When asking again may be worth it (epoch ms): the end of a hold, or the next whole token. */
  nextAt: number;
  /** Registrations the budget refills per minute. */
  perMinute: number;
}

/**
 * Seconds the `position`-th job (0-based) beyond the budget's grant waits before its next try: until
 * the budget's next token, plus its place in line at the budget's rate, with 0–20 % jitter so the
 * waiting jobs of racing launchers spread out; between 2 s and 5 min.
 */
export function budgetWaitSeconds(
  position: number,
  budget: BudgetAnswer,
  askedAt: number,
  random: () => number = Math.random,
): number {
  const untilNext = Math.max(0, budget.nextAt - askedAt) / 1000;
  const seconds = Math.ceil(untilNext + ((position + 1) * 60) / Math.max(1, budget.perMinute));
  return Math.min(300, Math.max(2, Math.round(seconds * (1 + random() * 0.2))));
}

/** Whether a job queued at `queuedAt` has waited past the queue timeout at `now`. */
export function queueTimedOut(queuedAt: string, now: Date, queueTimeoutMinutes: number): boolean {
  return now.getTime() - Date.parse(queuedAt) > queueTimeoutMinutes * 60_000;
}
