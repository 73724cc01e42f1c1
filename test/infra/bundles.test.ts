/**
 * How the program gets fresh Lambda bundles and each function's settings: the staleness check that
 * decides whether `pulumi up` rebuilds, and the settings found from a bundle's source map.
 */
import { mkdirSync, mkdtempSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bundlesStale, ensureBundles, LAMBDA_NAMES } from "../../src/packaging/bundles";
import { environmentFor, settingsReadBy, settingVariables } from "../../src/packaging/settings-env";
import { ROOT } from "./stack-config";

function fakeProject() {
  const root = mkdtempSync(join(tmpdir(), "rf-bundles-"));
  mkdirSync(join(root, "lambda", "shared"), { recursive: true });
  mkdirSync(join(root, "scripts"));
  writeFileSync(join(root, "package-lock.json"), "{}");
  writeFileSync(join(root, "scripts", "build-lambdas.mjs"), "");
  writeFileSync(
    join(root, "lambda", "shared", "settings.ts"),
    'get jobsTable() {\n return r.str("JOBS_TABLE");\n}\nget labelRoutes() {\n return r.json<LabelRoute[]>("LABEL_ROUTES");\n}\n',
  );
  return root;
}

describe("bundles", () => {
  it("are stale when missing or older than any Lambda source", () => {
    const root = fakeProject();
    const past = new Date(Date.now() - 60_000);
    for (const f of ["package-lock.json", "scripts/build-lambdas.mjs", "lambda/shared/settings.ts"])
      utimesSync(join(root, f), past, past);
    expect(bundlesStale(root)).toBe(true);
    for (const name of LAMBDA_NAMES) {
      mkdirSync(join(root, "dist", name), { recursive: true });
      writeFileSync(join(root, "dist", name, "index.mjs"), "");
    }
    expect(bundlesStale(root)).toBe(false);
    writeFileSync(join(root, "lambda", "webhook.ts"), "// edited after the build");
    const future = new Date(Date.now() + 60_000);
    utimesSync(join(root, "lambda", "webhook.ts"), future, future);
    expect(bundlesStale(root)).toBe(true);
  });
});

describe("settings a bundle reads", () => {
  it("maps every settings getter to its variable", () => {
    const variables = settingVariables(ROOT);
    expect(variables.get("jobsTable")).toBe("JOBS_TABLE");
    expect(variables.get("labelRoutes")).toBe("LABEL_ROUTES");
    expect(variables.get("runnerRoleId")).toBe("RUNNER_ROLE_ID");
    expect(variables.size).toBeGreaterThanOrEqual(20);
  });

  it("are the getters named in the bundle's lambda/ sources, and only those get a value", () => {
    const root = fakeProject();
    const dir = join(root, "dist", "fn");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(root, "lambda", "fn.ts"), "export const t = () => settings().jobsTable;");
    writeFileSync(
      join(dir, "index.mjs.map"),
      JSON.stringify({ sources: ["../../lambda/fn.ts", "../../node_modules/x/labelRoutes.js"] }),
    );
    expect([...settingsReadBy(dir, root)]).toEqual(["JOBS_TABLE"]);
  });

  it("gives a real function only what it reads", { timeout: 200_000 }, () => {
    const bundles = ensureBundles();
    const env = environmentFor(bundles.janitor, {
      STACK_NAME: "dev",
      JOBS_TABLE: "t",
      LAUNCH_QUEUE_URL: "q",
    });
    expect(env).toEqual({ STACK_NAME: "dev" });
  });
});
