/**
 * The closest label config of a job that routed nowhere (lambda/core/label-suggestion.ts): a typo is
 * paired with the label it most likely meant; labels compare as routing compares them; and for a job
 * that does route, the suggestion is routing's own pick (property-checked against routeJob).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { describeSuggestion, suggestLabelConfig } from "../lambda/core/label-suggestion";
import { routeJob } from "../lambda/core/routing";

const ROUTES = [
  { name: "linux-x64", labels: ["linux", "x64"] },
  { name: "linux-x64-large", labels: ["self-hosted", "linux", "x64", "large"] },
  { name: "linux-arm64-large", labels: ["linux", "arm64", "large"] },
];

describe("suggestLabelConfig", () => {
  it("pairs a mistyped label with the one it most likely meant, over a config it would merely lack", () => {
    const suggestion = suggestLabelConfig(["self-hosted", "linux", "x64", "larg"], ROUTES, "self-hosted");
    expect(suggestion).toEqual({
      config: "linux-x64-large",
      extra: ["larg"],
      missing: ["large"],
      typos: [{ label: "larg", meant: "large" }],
    });
    expect(describeSuggestion(suggestion)).toBe(
      'closest config linux-x64-large: "larg" is not one of its labels (did you mean "large"?)',
    );
  });

  it("compares labels as routing does: trimmed, case-insensitive, the required label implicit", () => {
    const suggestion = suggestLabelConfig([" Self-Hosted ", "LINUX", "X64", "Largee"], ROUTES, "self-hosted");
    expect(suggestion).toMatchObject({ config: "linux-x64-large", extra: ["largee"], missing: ["large"] });
  });

  it("names a label no config knows, and what the closest config has that the job lacks", () => {
    const suggestion = suggestLabelConfig(["self-hosted", "linux", "gpu", "arm64"], ROUTES, "self-hosted");
    expect(suggestion).toEqual({
      config: "linux-arm64-large",
      extra: ["gpu"],
      missing: ["large"],
      typos: [],
    });
    expect(describeSuggestion(suggestion)).toBe(
      'closest config linux-arm64-large: "gpu" is not one of its labels; the job lacks "large" (that alone would not block it)',
    );
  });

  it("has nothing to suggest without configs", () => {
    expect(suggestLabelConfig(["self-hosted", "linux"], [], "self-hosted")).toBeUndefined();
    expect(describeSuggestion(undefined)).toBe("no label configs to compare with");
  });

  it("suggests routing's own pick, with nothing extra, for every job that routes", () => {
    const label = fc.constantFrom("linux", "x64", "arm64", "large", "gpu", "Linux", " x64");
    const routes = fc
      .array(fc.array(label, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 5 })
      .map((sets) => sets.map((labels, i) => ({ name: `c${i}`, labels })));
    fc.assert(
      fc.property(fc.array(label, { maxLength: 4 }), routes, (jobLabels, configs) => {
        const labels = ["self-hosted", ...jobLabels];
        const routed = routeJob(labels, configs, "self-hosted");
        if (!("config" in routed)) return;
        const suggestion = suggestLabelConfig(labels, configs, "self-hosted")!;
        expect(suggestion.config).toBe(routed.config);
        expect(suggestion.extra).toEqual([]);
      }),
    );
  });
});
