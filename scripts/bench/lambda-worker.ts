/**
 * One Lambda execution environment on a thread of its own (worker_threads): its own module graph,
 * SDK clients and caches, and its own share of the CPU, as on Lambda, where a function does not run
 * on the machine of the services it calls. The scenario posts events; the worker answers with the
 * handler's result and the time the handler took, measured here.
 */
import { parentPort, workerData } from "node:worker_threads";
import { installScaledClock } from "./clock";

interface Data {
  bundleUrl: string;
  clock: { scale: number; origin: number };
}

const data = workerData as Data;
installScaledClock(data.clock.scale, data.clock.origin);
const { handler } = (await import(data.bundleUrl)) as { handler: (event: unknown) => Promise<unknown> };
const port = parentPort!;
port.on("message", async ({ id, event }: { id: number; event: unknown }) => {
  const started = performance.now();
  try {
    const result = await handler(event);
    port.postMessage({ id, result, ms: performance.now() - started });
  } catch (error) {
    port.postMessage({ id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  }
});
port.postMessage({ ready: true });
