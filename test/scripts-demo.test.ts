/**
 * `npm run demo` as a smoke test: the real webhook and launcher handlers against the sandbox, from
 * signed deliveries to instances, hand-offs and the status output, in one process that cleans up.
 */
import { expect, it } from "vitest";
import { runDemo } from "../scripts/lib/demo";
import { quietLambdaLogs } from "./webhook-support";

quietLambdaLogs();

it("runs to completion: routes, launches, hands off and explains", async () => {
  const lines: string[] = [];
  const result = await runDemo((line) => lines.push(line));

  expect(result.deliveries.map((d) => [d.status, JSON.parse(d.body).status])).toEqual([
    [202, "accepted"],
    [202, "accepted"],
    [202, "accepted"],
    [202, "ignored"],
  ]);
  // The two x64 jobs share one spot fleet; the arm64 one found no spot capacity (spotOnly) and waits.
  expect(result.instances).toHaveLength(2);
  expect(result.instances.every((i) => i.market === "spot" && i.instanceType === "m7i.xlarge")).toBe(true);
  const status = result.statusLines.join("\n");
  expect(status).toMatch(/queued {7}1 {2}\(linux-arm64 1\)/);
  expect(status).toMatch(/launched {5}2 {2}\(linux-x64-large 2\)/);
  expect(status).toMatch(/9003 .*last: no spot capacity.*1 spot failure; next: spot \(spotOnly/);
  expect(status).toMatch(/launched on i-\w+ \(spot, m7i\.xlarge, us-east-1[ab]\) .*runner started/);
  // JIT configs are long base64 strings: never printed.
  expect(lines.join("\n")).not.toMatch(/[A-Za-z0-9+/]{60,}/);
});
