import { describe, expect, it } from "vitest";
import { findRoutingConflicts, normalizeLabels, routeJob } from "../lambda/core/routing";
import type { LabelRoute } from "../lambda/shared/label-config";

const routes: LabelRoute[] = [
  { name: "linux-x64", labels: ["linux", "x64"] },
  { name: "linux-x64-large", labels: ["linux", "x64", "large"] },
  { name: "linux-x64-gpu", labels: ["linux", "x64", "large", "gpu"] },
  { name: "linux-arm64", labels: ["linux", "arm64", "self-hosted"] }, // required label written: ignored
];

describe("routeJob", () => {
  const cases: { name: string; labels: string[]; expected: ReturnType<typeof routeJob> }[] = [
    {
      name: "the DESIGN example routes to linux-x64-large",
      labels: ["self-hosted", "linux", "x64", "large"],
      expected: { config: "linux-x64-large" },
    },
    { name: "exact match", labels: ["self-hosted", "linux", "x64"], expected: { config: "linux-x64" } },
    {
      name: "label order does not matter",
      labels: ["x64", "linux", "self-hosted"],
      expected: { config: "linux-x64" },
    },
    {
      name: "labels are case-insensitive and trimmed",
      labels: ["Self-Hosted", " LINUX", "X64 ", "Large"],
      expected: { config: "linux-x64-large" },
    },
    {
      name: "duplicate labels count once",
      labels: ["self-hosted", "linux", "linux", "LINUX", "x64", "self-hosted"],
      expected: { config: "linux-x64" },
    },
    {
      name: "a subset goes to the smallest superset",
      labels: ["self-hosted", "gpu"],
      expected: { config: "linux-x64-gpu" },
    },
    {
      name: "a subset shared by configs of different sizes goes to the smaller",
      labels: ["self-hosted", "large"],
      expected: { config: "linux-x64-large" },
    },
    {
      name: "the required label written in a config is implicit, not counted",
      labels: ["self-hosted", "arm64"],
      expected: { config: "linux-arm64" },
    },
    {
      name: "self-hosted missing",
      labels: ["linux", "x64", "large"],
      expected: { ignored: 'job lacks the required label "self-hosted"' },
    },
    { name: "empty labels", labels: [], expected: { ignored: 'job lacks the required label "self-hosted"' } },
    {
      name: "GitHub-hosted label",
      labels: ["ubuntu-latest"],
      expected: { ignored: 'job lacks the required label "self-hosted"' },
    },
    {
      name: "a label no config has",
      labels: ["self-hosted", "linux", "x64", "huge"],
      expected: { ignored: "no label config has all of the job's labels", unmatched: true },
    },
    {
      name: "labels from two configs that no single config has",
      labels: ["self-hosted", "arm64", "gpu"],
      expected: { ignored: "no label config has all of the job's labels", unmatched: true },
    },
  ];
  it.each(cases)("$name", ({ labels, expected }) => {
    expect(routeJob(labels, routes, "self-hosted")).toEqual(expected);
  });

  it("routes a plain runs-on: self-hosted to the one smallest config", () => {
    expect(routeJob(["self-hosted"], [{ name: "default", labels: [] }, ...routes], "self-hosted")).toEqual({
      config: "default",
    });
    expect(routeJob(["self-hosted"], routes.slice(0, 3), "self-hosted")).toEqual({ config: "linux-x64" });
  });

  it("honours another required label, case-insensitively", () => {
    const custom = [{ name: "fleet-linux", labels: ["Fleet", "linux"] }];
    expect(routeJob(["FLEET", "linux"], custom, "fleet")).toEqual({ config: "fleet-linux" });
    expect(routeJob(["self-hosted", "linux"], custom, "fleet")).toEqual({
      ignored: 'job lacks the required label "fleet"',
    });
  });

  it("ignores a job that ties (only if conflicting configs were deployed anyway)", () => {
    const tied = [
      { name: "a", labels: ["linux", "x64"] },
      { name: "b", labels: ["LINUX", "x64"] },
    ];
    expect(routeJob(["self-hosted", "linux", "x64"], tied, "self-hosted")).toEqual({
      ignored: "the job's labels match configs a, b equally",
      unmatched: true,
    });
  });

  it("routes with no configs to nothing", () => {
    expect(routeJob(["self-hosted"], [], "self-hosted")).toEqual({
      ignored: "no label config has all of the job's labels",
      unmatched: true,
    });
  });
});

describe("the routing examples of docs/workflow-authors.md", () => {
  const readme = [
    { name: "linux-x64", labels: ["linux", "x64"] },
    { name: "linux-x64-large", labels: ["linux", "x64", "large"] },
    { name: "gpu", labels: ["linux", "x64", "large", "gpu"] },
  ];
  it.each([
    [["self-hosted", "linux", "x64", "large"], "linux-x64-large"],
    [["self-hosted", "Linux", "X64"], "linux-x64"],
    [["self-hosted", "gpu"], "gpu"],
    [["self-hosted", "large"], "linux-x64-large"],
    [["self-hosted"], "linux-x64"],
    [["self-hosted", "linux", "arm64"], undefined],
    [["linux", "x64", "large"], undefined],
    [["ubuntu-latest"], undefined],
  ])("%j → %s", (labels, config) => {
    const result = routeJob(labels, readme, "self-hosted");
    expect("config" in result ? result.config : undefined).toBe(config);
  });

  it("has no conflicts, until linux-arm64 joins; a [linux] config resolves that", () => {
    expect(findRoutingConflicts(readme)).toEqual([]);
    const arm = [...readme, { name: "linux-arm64", labels: ["linux", "arm64"] }];
    expect(findRoutingConflicts(arm).map((c) => c.configs)).toEqual([["linux-x64", "linux-arm64"]]);
    expect(findRoutingConflicts([...arm, { name: "linux", labels: ["linux"] }])).toEqual([]);
  });
});

describe("normalizeLabels", () => {
  it("lower-cases, trims, drops empty and duplicate labels, keeping first-seen order", () => {
    expect(normalizeLabels([" Linux", "X64", "linux", "", "  ", "x64"])).toEqual(["linux", "x64"]);
  });
});

describe("findRoutingConflicts", () => {
  const conflicts = (list: LabelRoute[]) =>
    findRoutingConflicts(list).map(({ configs, labels }) => ({ configs, labels }));

  it("accepts a nested set of configs (every job has one smallest superset)", () => {
    expect(findRoutingConflicts(routes.slice(0, 3))).toEqual([]);
  });

  it("reports two configs with the same labels, whatever their case or the required label", () => {
    const found = findRoutingConflicts([
      { name: "a", labels: ["linux", "x64"] },
      { name: "b", labels: ["X64", "self-hosted", "Linux", "linux"] },
    ]);
    expect(found).toEqual([
      {
        kind: "same-labels",
        configs: ["a", "b"],
        labels: ["linux", "x64"],
        message: 'label configs "a" and "b" have the same labels [self-hosted, linux, x64]',
      },
    ]);
  });

  it("reports duplicate names", () => {
    expect(
      conflicts([
        { name: "a", labels: ["linux"] },
        { name: "a", labels: ["linux", "x64"] },
      ]),
    ).toEqual([{ configs: ["a", "a"], labels: [] }]);
  });

  it("reports equal-size configs whose shared labels no smaller config serves", () => {
    // runs-on: [self-hosted, linux] fits linux-x64 and linux-arm64 equally.
    const found = findRoutingConflicts([
      { name: "linux-x64", labels: ["linux", "x64"] },
      { name: "linux-arm64", labels: ["linux", "arm64"] },
    ]);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({
      kind: "ambiguous",
      configs: ["linux-x64", "linux-arm64"],
      labels: ["linux"],
    });
    expect(found[0]!.message).toContain("runs-on: [self-hosted, linux]");
    // ...and the conflict is real: routeJob cannot choose.
    expect(
      routeJob(
        ["self-hosted", "linux"],
        [
          { name: "linux-x64", labels: ["linux", "x64"] },
          { name: "linux-arm64", labels: ["linux", "arm64"] },
        ],
        "self-hosted",
      ),
    ).toHaveProperty("ignored");
  });

  it("reports disjoint equal-size configs: a plain runs-on: self-hosted ties", () => {
    expect(
      conflicts([
        { name: "x64", labels: ["x64"] },
        { name: "arm64", labels: ["arm64"] },
      ]),
    ).toEqual([{ configs: ["x64", "arm64"], labels: [] }]);
  });

  it("accepts equal-size configs when a smaller config serves what they share", () => {
    expect(
      conflicts([
        { name: "linux", labels: ["linux"] },
        { name: "linux-x64", labels: ["linux", "x64"] },
        { name: "linux-arm64", labels: ["linux", "arm64"] },
      ]),
    ).toEqual([]);
    // The smaller config must contain the shared labels: "other" does not help.
    expect(
      conflicts([
        { name: "other", labels: ["gpu"] },
        { name: "linux-x64", labels: ["linux", "x64"] },
        { name: "linux-arm64", labels: ["linux", "arm64"] },
      ]),
    ).toEqual([{ configs: ["linux-x64", "linux-arm64"], labels: ["linux"] }]);
  });

  it("agrees with routeJob on every label subset (no conflict reported → every job routes uniquely)", () => {
    const sets: LabelRoute[][] = [
      routes,
      [
        { name: "base", labels: [] },
        { name: "x64", labels: ["x64"] },
        { name: "arm64", labels: ["arm64"] },
        { name: "x64-large", labels: ["x64", "large"] },
      ],
      [
        { name: "a", labels: ["p", "q"] },
        { name: "b", labels: ["q", "r"] },
        { name: "c", labels: ["q"] },
      ],
      [
        { name: "a", labels: ["p", "q", "r"] },
        { name: "b", labels: ["q", "r", "s"] },
        { name: "c", labels: ["q"] },
      ],
    ];
    for (const list of sets) {
      const universe = [...new Set(list.flatMap((r) => normalizeLabels(r.labels)))].filter(
        (l) => l !== "self-hosted",
      );
      let ties = 0;
      for (let mask = 0; mask < 1 << universe.length; mask++) {
        const labels = universe.filter((_, bit) => mask & (1 << bit));
        const result = routeJob(["self-hosted", ...labels], list, "self-hosted");
        if ("ignored" in result && result.ignored.includes("equally")) ties++;
      }
      expect(ties > 0).toBe(findRoutingConflicts(list).length > 0);
    }
  });
});
