/**
 * The reconciler in token mode (a PAT; the program created the webhooks): failed `workflow_job`
 * deliveries of the organization's webhook and of each repository's are redelivered through that
 * webhook's own deliveries API, as the App's are in App mode. (Its own file: the GitHub client is
 * kept per process and auth mode.)
 */
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from "vitest";
import type { GitHubWebhook } from "../lambda/shared/settings";
import { PAT_PARAM, startWorld, type World } from "./lifecycle-support";

const MIN = 60_000;

let world: World;
let reconciler: typeof import("../lambda/reconciler");
let webhooks: { org: GitHubWebhook; repo: GitHubWebhook };

beforeAll(async () => {
  world = await startWorld("reconciler-token", {
    GITHUB_AUTH_MODE: "token",
    GITHUB_TOKEN_PARAM: PAT_PARAM,
  });
  const { state, org, repo } = world.github;
  webhooks = {
    org: { owner: org, hookId: state.addWebhook({ owner: org }) },
    repo: {
      owner: repo.owner,
      repo: repo.name,
      hookId: state.addWebhook({ owner: repo.owner, repo: repo.name }),
    },
  };
  // What the program sets from the webhooks it created (src/components/github-wiring.ts).
  process.env.GITHUB_WEBHOOKS = JSON.stringify([webhooks.org, webhooks.repo]);
  reconciler = await import("../lambda/reconciler");
});

afterAll(async () => {
  delete process.env.GITHUB_WEBHOOKS;
  await world?.close();
});

beforeEach(async () => {
  await world.reset();
  world.sandbox.ssm.put(PAT_PARAM, world.github.state.pat, { type: "SecureString" });
});

afterEach(() => {
  // Every request matched GitHub's OpenAPI description (dotcom).
  expect(world.github.violations()).toEqual([]);
});

const failedQueued = (hookId: number | undefined) =>
  world.github.state.seedDelivery({
    event: "workflow_job",
    action: "queued",
    status: "Invalid HTTP Response: 502",
    status_code: 502,
    hookId,
  });

it("redelivers the failed deliveries of the org's and each repository's webhook, once", async () => {
  const state = world.github.state;
  const atOrg = failedQueued(webhooks.org.hookId);
  const atRepo = failedQueued(webhooks.repo.hookId);
  state.seedDelivery({
    event: "push",
    status: "Invalid HTTP Response: 503",
    status_code: 503,
    hookId: webhooks.org.hookId,
  });

  const first = await reconciler.reconcile();
  expect(first.redelivered).toBe(2);
  expect(first.unreadable).toEqual([]);
  expect(state.redeliveryAttempts.map((a) => a.deliveryId).sort()).toEqual([atOrg.id, atRepo.id].sort());
  // Each attempt went to its own webhook.
  const hookOf = (id: number) => state.deliveries.find((d) => d.id === id)?.hookId;
  for (const attempt of state.redeliveryAttempts)
    expect(hookOf(attempt.newDeliveryId)).toBe(hookOf(attempt.deliveryId));

  // The redeliveries succeeded (the fake's default): later runs leave them alone.
  await reconciler.reconcile({ now: new Date(Date.now() + 2 * MIN) });
  await reconciler.reconcile({ now: new Date(Date.now() + 10 * MIN) });
  expect(state.redeliveryAttempts).toHaveLength(2);
  expect(world.sandbox.callsTo("github", "apps/list-webhook-deliveries")).toEqual([]);
});

it("a webhook GitHub no longer has skips only itself, and the run says deliveries were unreadable", async () => {
  const state = world.github.state;
  const atRepo = failedQueued(webhooks.repo.hookId);
  const orgHook = state.webhooks.get(webhooks.org.hookId)!;
  state.webhooks.delete(webhooks.org.hookId); // deleted by hand on GitHub
  try {
    const report = await reconciler.reconcile();
    expect(report.redelivered).toBe(1);
    expect(report.unreadable).toEqual(["deliveries"]);
    expect(state.redeliveryAttempts.map((a) => a.deliveryId)).toEqual([atRepo.id]);
  } finally {
    state.webhooks.set(orgHook.id, orgHook);
  }
});
