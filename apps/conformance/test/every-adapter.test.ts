import { readFileSync } from "node:fs";
import { join } from "node:path";
import { registeredBackends } from "@self-extend/backends";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { formatMatrix, runConformanceApp, writeHtmlReport } from "../src/index.js";

/**
 * What CI promises: every adapter built in this repository is available here and passes, against
 * the reference and against each other. A shortened grid (two generated shapes and the demo
 * model); `pnpm conformance` runs all of it.
 */
describe("self-extend conformance on this machine", () => {
  const temporary = useTemporaryFolder();

  it("finds every registered adapter available, and every one passes every tier", async () => {
    const cacheFolder = temporary();
    const report = await runConformanceApp({
      caseNames: ["position-maps", "logits-2x", "greedy-4x"],
      modelIds: ["tiny:llama-h16-gqa2", "tiny:qwen2-h8-gqa2-bias-base1e6", "demo"],
      cacheFolder,
    });
    const problems = report.results
      .filter((result) => result.status !== "pass" && result.informational !== true)
      .map((result) => `${result.backend} ${result.case}: ${result.status} ${result.reason}`);
    expect(problems).toEqual([]);
    const backends = new Set(report.results.map((result) => result.backend));
    for (const { name } of registeredBackends) expect(backends).toContain(name);
    // Cross-adapter rows: every pair of the four backends (reference included) on every run.
    expect([...backends].filter((name) => name.includes("+"))).toHaveLength(6);
    expect(report.summary.failed).toBe(0);
    // llama.cpp's fast-prefill is measured on every run (logit deviation, greedy agreement, its
    // largest position error) and reported apart from pass/fail.
    const fastPrefill = report.results.filter((result) => result.backend === "llama-cpp:fast-prefill");
    expect(fastPrefill.length).toBeGreaterThan(0);
    for (const result of fastPrefill) {
      expect(result.informational).toBe(true);
      expect(result.status).not.toBe("fail");
      if (result.tier === "position-map") {
        // Read from llama.cpp's cells: keys are not moved between the queries of a chunk.
        expect(result.status).toBe("deviation");
        expect(result.reason).toMatch(/r\(\d+, \d+\) = \d+, golden \d+/);
      } else {
        expect(result.note).toMatch(/largest position error \d+/);
      }
      if (result.tier === "logits") expect(result.maxAbsLogitDiff).toBeGreaterThan(0);
    }
    // Tier 1 checks every adapter's runtime positions, not only core's map.
    const positionRows = report.results.filter((result) => result.tier === "position-map");
    expect(positionRows.map((result) => result.backend).sort()).toEqual(
      ["core", "llama-cpp", "llama-cpp:fast-prefill", "onnxruntime", "reference", "webgpu"].sort(),
    );
    expect(report.summary.informational).toBe(fastPrefill.length);

    const matrix = formatMatrix(report.results);
    expect(matrix).toContain("greedy-4x@demo");
    const page = writeHtmlReport(join(cacheFolder, "report"), report, "self-extend conformance");
    const html = readFileSync(page, "utf8");
    expect(html).toContain("<svg");
    expect(html.match(/<polyline/g)?.length).toBeGreaterThanOrEqual(4);
    const json = JSON.parse(readFileSync(join(cacheFolder, "report", "conformance.json"), "utf8"));
    expect(Object.keys(json)).toEqual(["specVersion", "results", "summary"]);
    expect(Object.keys(json.results[0]).slice(0, 6)).toEqual([
      "backend",
      "case",
      "status",
      "maxAbsLogitDiff",
      "firstDivergentToken",
      "reason",
    ]);
  });
});
