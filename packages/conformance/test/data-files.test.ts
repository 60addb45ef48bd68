import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import {
  adapterTolerance,
  ConformanceDataError,
  generatedTokenCount,
  loadConformanceCases,
  loadSkipList,
  loadTolerances,
  mergeTolerances,
  promptTokenCount,
  resolveTolerance,
} from "../src/index.js";

describe("conformance data", () => {
  const temporary = useTemporaryFolder();

  it("ships cases for all three tiers, and 4x greedy cases long enough for the issue's proof", () => {
    const cases = loadConformanceCases();
    expect(new Set(cases.map((testCase) => testCase.tier))).toEqual(
      new Set(["position-map", "logits", "greedy"]),
    );
    const greedy4x = cases.find((testCase) => testCase.name === "greedy-4x")!;
    for (const trained of [64, 128, 256, 512]) {
      expect(promptTokenCount(greedy4x, trained)).toBeGreaterThanOrEqual(3 * trained);
      expect(generatedTokenCount(greedy4x, trained)).toBeGreaterThanOrEqual(256);
    }
  });

  it("rejects a case that breaks the schema, naming the file and the problem", () => {
    const folder = temporary();
    writeFileSync(
      join(folder, "bad.json"),
      JSON.stringify({ name: "Bad Name", description: "x", tier: "logits" }),
    );
    expect(() => loadConformanceCases(folder)).toThrow(ConformanceDataError);
    expect(() => loadConformanceCases(folder)).toThrow(
      /bad\.json: does not match case\.schema\.json: .*name/,
    );
  });

  it("requires a reason for every skip and every tolerance override", () => {
    const folder = temporary();
    writeFileSync(join(folder, "skips.json"), JSON.stringify({ skips: [{ backend: "webgpu" }] }));
    expect(() => loadSkipList(join(folder, "skips.json"))).toThrow(/reason/);
    writeFileSync(
      join(folder, "tolerances.json"),
      JSON.stringify({ default: { atol: 1, rtol: 0 }, overrides: [{ backend: "x", atol: 2 }] }),
    );
    expect(() => loadTolerances(join(folder, "tolerances.json"))).toThrow(/reason/);
  });

  it("resolves the most specific tolerance and merges an adapter's own file", () => {
    const table = loadTolerances();
    expect(resolveTolerance(table, { backend: "reference" }).atol).toBe(1e-9);
    expect(resolveTolerance(table, { backend: "unknown" })).toEqual(table.default);
    const merged = mergeTolerances(
      table,
      {
        default: { atol: 5e-3, rtol: 0 },
        overrides: [
          { cachePrecision: "float16", atol: 5e-2, reason: "16-bit keys are re-rounded at every shift" },
        ],
      },
      "third-party",
    );
    expect(resolveTolerance(merged, { backend: "third-party" }).atol).toBe(5e-3);
    expect(resolveTolerance(merged, { backend: "third-party", cachePrecision: "float16" }).atol).toBe(5e-2);
    expect(resolveTolerance(merged, { backend: "another", cachePrecision: "float16" })).toEqual(
      table.default,
    );
  });

  it("resolves an adapter's per-model overrides and its own named checks only where asked for", () => {
    const adapter = {
      default: { atol: 1e-3, rtol: 0 },
      overrides: [
        { model: "stories260K", atol: 2e-3, reason: "longer rows accumulate more float32 rounding" },
        { check: "float16-weights", atol: 2e-2, reason: "weights rounded to IEEE half on the device" },
      ],
    };
    expect(adapterTolerance(adapter, { backend: "third-party" }).atol).toBe(1e-3);
    expect(adapterTolerance(adapter, { backend: "third-party", model: "stories260K" }).atol).toBe(2e-3);
    expect(adapterTolerance(adapter, { backend: "third-party", model: "demo" }).atol).toBe(1e-3);
    expect(adapterTolerance(adapter, { backend: "third-party", check: "float16-weights" }).atol).toBe(2e-2);
    // Another backend never gets this adapter's numbers.
    const merged = mergeTolerances(loadTolerances(), adapter, "third-party");
    expect(resolveTolerance(merged, { backend: "other", check: "float16-weights" })).toEqual(
      loadTolerances().default,
    );
  });
});
