/**
 * The spec's stories260K table, checked on the run recorded in docs/ by
 * scripts/reproduce-stories260k-table.ts (65,536 tokens per row, about 20 CPU-minutes, too slow
 * for every CI run). This test proves the recorded file is that run on these exact inputs (model
 * and text hashes, token counts) and that every row is within 1% of the spec;
 * perplexity-evaluation.test.ts recomputes a prefix with the same 1% criterion.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { findAll, parseXml, sharedModelPaths } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import {
  type EvaluationReport,
  type PerplexityCell,
  stories260KSpecScoredTokens,
  stories260KSpecTable,
} from "../src/index.js";

const docs = join(import.meta.dirname, "..", "docs");
const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

describe("the spec's stories260K perplexity table (recorded run)", () => {
  const report = JSON.parse(
    readFileSync(join(docs, "stories260k-perplexity.json"), "utf8"),
  ) as EvaluationReport<PerplexityCell>;

  it("was measured on this model and text, complete, on the same 65,536 tokens per row", () => {
    expect(report.complete).toBe(true);
    expect(report.backend).toBe("reference");
    expect(report.model.sha256).toBe(sha256(sharedModelPaths.stories260K));
    expect(report.settings.textSha256).toBe(sha256(sharedModelPaths.validationText));
    expect(report.settings.scoredTokens).toBe(stories260KSpecScoredTokens);
    for (const cell of report.cells) expect(cell.predictionCount).toBe(stories260KSpecScoredTokens);
  });

  it.each(
    stories260KSpecTable.map(
      (row) =>
        [`${row.length} G=${row.selfExtend.groupSize} W=${row.selfExtend.neighborWindow}`, row] as const,
    ),
  )("%s is within 1% of the spec", (_name, row) => {
    const cell = report.cells.find(
      (candidate) =>
        candidate.length === row.length &&
        candidate.selfExtend.groupSize === row.selfExtend.groupSize &&
        (row.selfExtend.groupSize === 1 ||
          candidate.selfExtend.neighborWindow === row.selfExtend.neighborWindow),
    );
    expect(cell).toBeDefined();
    expect(Math.abs(cell!.perplexity / row.perplexity - 1)).toBeLessThan(0.01);
    if (row.farPerplexity !== undefined) {
      const far = cell!.buckets.find((bucket) => bucket.start === 1024 && bucket.end === 2048);
      expect(far?.predictionCount).toBe((stories260KSpecScoredTokens / 2048) * 1024);
      expect(Math.abs(far!.perplexity / row.farPerplexity - 1)).toBeLessThan(0.01);
    }
  });

  it("has its plot beside it, one line per row", () => {
    const svg = parseXml(readFileSync(join(docs, "stories260k-perplexity.svg"), "utf8"));
    expect(findAll(svg, "polyline")).toHaveLength(stories260KSpecTable.length);
  });
});
