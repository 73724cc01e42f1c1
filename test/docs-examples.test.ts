/**
 * The example workflows in examples/ run on the example stack: every job's `runs-on` routes (with the
 * webhook's own rule) to a label config of Pulumi.dev.yaml, the one its comment names.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { routeJob } from "../lambda/core/routing";
import { REQUIRED_LABEL } from "../src/config/schema";
import { ROOT } from "./docs-support";

const stack = parse(readFileSync(join(ROOT, "Pulumi.dev.yaml"), "utf8")) as {
  config: Record<string, unknown>;
};
const configs = stack.config["runner-fleet:labelConfigs"] as Record<string, { labels: string[] }>;
const routes = Object.entries(configs).map(([name, c]) => ({ name, labels: c.labels }));

const workflows = readdirSync(join(ROOT, "examples")).filter((f) => /\.ya?ml$/.test(f));

describe.each(workflows)("examples/%s", (file) => {
  const text = readFileSync(join(ROOT, "examples", file), "utf8");
  const jobs = Object.entries((parse(text) as { jobs: Record<string, { "runs-on": string[] }> }).jobs);

  it("has jobs", () => expect(jobs.length).toBeGreaterThan(0));

  it.each(jobs)("job %s routes to the label config its comment names", (name, job) => {
    const result = routeJob(job["runs-on"], routes, REQUIRED_LABEL);
    expect(result, `runs-on of ${name}`).toHaveProperty("config");
    const config = (result as { config: string }).config;
    // The comment above the job says where it goes, so a reader learns the rule from the example.
    const comment =
      text
        .slice(0, text.indexOf(`\n  ${name}:`))
        .split("\n\n")
        .at(-1) ?? "";
    expect(comment, `the comment above ${name}`).toContain(config);
  });
});
