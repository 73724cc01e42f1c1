/**
 * The reconciler of an App-mode stack deployed before its App exists (GITHUB_APP_STATE=pending, no
 * App id or key): it still reconciles the fleet in AWS and leaves its heartbeat for `npm run doctor`,
 * but asks GitHub nothing (there is no App to ask as). Its own file: settings are read per process.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { getReserved, type ReconcilerHeartbeat } from "../lambda/adapters/reserved-items";
import { RESERVED_KEYS } from "../lambda/shared/reserved-keys";
import { startWorld, type World } from "./lifecycle-support";

let world: World;
let reconciler: typeof import("../lambda/reconciler");

beforeAll(async () => {
  world = await startWorld("reconciler-pending", {
    GITHUB_APP_STATE: "pending",
    GITHUB_APP_ID: "",
    GITHUB_PRIVATE_KEY_PARAM: "",
  });
  reconciler = await import("../lambda/reconciler");
});
afterAll(async () => {
  await world?.close();
});
beforeEach(async () => {
  await world.reset();
});

it("makes no GitHub call, even with failed deliveries waiting and runners due for a sweep", async () => {
  world.github.state.seedDelivery({
    event: "workflow_job",
    action: "queued",
    status: "Invalid HTTP Response: 503",
    status_code: 503,
  });
  const report = await reconciler.reconcile({ now: new Date(), sweepRunners: true });
  expect(world.sandbox.callsTo("github")).toEqual([]);
  expect(report).toMatchObject({ redelivered: 0, rerun: 0, unreadable: [] });
});

it("records its run for the doctor, with what it could not read", async () => {
  const now = new Date("2026-12-02T10:00:00Z");
  await reconciler.reconcile({ now, sweepRunners: false });
  const heartbeat = await getReserved<ReconcilerHeartbeat>(
    RESERVED_KEYS.reconcilerHeartbeat,
    world.tables.jobs,
  );
  expect(heartbeat).toMatchObject({ ranAt: now.toISOString(), failed: 0, unreadable: [] });
});
