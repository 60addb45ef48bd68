import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { computePerplexity } from "@self-extend/reference";
import { findAll, parseXml, useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import {
  createReportWriter,
  type EvaluationReport,
  evaluatePerplexity,
  type PerplexityCell,
  planEvaluationRuns,
  renderPerplexityPlot,
  scoredTokenCount,
  trainedContextBuckets,
} from "../src/index.js";
import { stories260KModel, validationTokens } from "./stories260k.js";

describe("perplexity evaluation", () => {
  const temporary = useTemporaryFolder();

  it("scores the same tokens at every length, a multiple of every length", () => {
    expect(scoredTokenCount(126_048, [512, 1024, 2048], 65_536)).toBe(65_536);
    expect(scoredTokenCount(126_048, [512, 1024, 2048])).toBe(124_928);
    expect(scoredTokenCount(1000, [64, 96])).toBe(960);
    expect(() => scoredTokenCount(100, [64, 96])).toThrow(/too few/);
  });

  it("buckets positions by multiples of the trained context", () => {
    expect(trainedContextBuckets(512, 2048)).toEqual([
      { start: 0, end: 512 },
      { start: 512, end: 1024 },
      { start: 1024, end: 2048 },
    ]);
    expect(trainedContextBuckets(512, 1500).at(-1)).toEqual({ start: 1024, end: 1500 });
    expect(trainedContextBuckets(512, 300)).toEqual([{ start: 0, end: 300 }]);
  });

  it("agrees with computePerplexity, and its curve averages to the overall loss", async () => {
    const model = await stories260KModel();
    const tokens = validationTokens();
    const selfExtend = { groupSize: 2, neighborWindow: 16 };
    const runs = planEvaluationRuns({
      lengths: [64, 128],
      trainedContext: 512,
      selfExtend,
      comparePlain: true,
    });
    const progress: number[] = [];
    const cells = await evaluatePerplexity(model, tokens, {
      runs,
      scoredTokens: 512,
      curveBucketWidth: 16,
      onProgress: ({ tokensDone, tokensTotal }) => progress.push(tokensDone / tokensTotal),
    });
    expect(cells.map((cell) => [cell.length, cell.label, cell.predictionCount])).toEqual([
      [64, "Self-Extend G=2 W=16", 512],
      [64, "plain", 512],
      [128, "Self-Extend G=2 W=16", 512],
      [128, "plain", 512],
    ]);
    expect(progress.at(-1)).toBe(1);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    for (const cell of cells) {
      const direct = await computePerplexity(model, tokens, {
        contextSize: cell.length,
        selfExtend: cell.selfExtend,
        windowCount: 512 / cell.length,
      });
      expect(cell.perplexity).toBeCloseTo(direct.perplexity, 12);
      expect(cell.buckets).toEqual([
        { start: 0, end: cell.length, perplexity: cell.perplexity, predictionCount: 512 },
      ]);
      expect(cell.curve.meanNegativeLogLikelihood).toHaveLength(cell.length / 16);
      const curveMean =
        cell.curve.meanNegativeLogLikelihood.reduce((sum, loss) => sum + loss, 0) /
        cell.curve.meanNegativeLogLikelihood.length;
      expect(curveMean).toBeCloseTo(cell.meanNegativeLogLikelihood, 12);
    }
  });

  // The spec's table (65,536 tokens) takes ~20 minutes: scripts/reproduce-stories260k-table.ts runs
  // it and test/stories260k-table.test.ts checks its recorded output. Here the same 1% criterion on
  // the first 4,096 scored tokens (2,048 at 1024), against float64 numbers pinned by the reference
  // package's perplexity test for exactly these tokens.
  it("reproduces stories260K numbers on a prefix of the validation text within 1%", async () => {
    const model = await stories260KModel();
    const tokens = validationTokens();
    const [plain] = await evaluatePerplexity(model, tokens, {
      runs: planEvaluationRuns({ lengths: [512], trainedContext: 512 }),
      scoredTokens: 4096,
    });
    const [extended] = await evaluatePerplexity(model, tokens, {
      runs: planEvaluationRuns({
        lengths: [1024],
        trainedContext: 512,
        selfExtend: { groupSize: 4, neighborWindow: 256 },
      }),
      scoredTokens: 2048,
    });
    expect(plain.predictionCount).toBe(4096);
    expect(Math.abs(plain.perplexity / 3.468971431 - 1)).toBeLessThan(0.01);
    expect(Math.abs(extended.perplexity / 3.506941598 - 1)).toBeLessThan(0.01);
    const far = extended.buckets.find((bucket) => bucket.start === 512);
    expect(far?.predictionCount).toBe(1024);
    expect(Math.abs((far?.perplexity ?? 0) / 3.682784264 - 1)).toBeLessThan(0.01);
  });

  it("keeps the finished cells in a valid file when interrupted mid-run", async () => {
    const model = await stories260KModel();
    const folder = temporary();
    const jsonPath = join(folder, "results.json");
    const plotPath = join(folder, "plot.svg");
    const writer = createReportWriter<PerplexityCell>({
      report: {
        evaluation: "perplexity",
        formatVersion: 1,
        commandLine: ["test"],
        startedAt: new Date().toISOString(),
        backend: "reference",
        model: { path: "m", sha256: "0", architecture: "llama", trainedContext: 512, vocabularySize: 512 },
        settings: {},
      },
      jsonPath,
      plotPath,
      renderPlot: (cells) => renderPerplexityPlot(cells, { trainedContext: 512 }),
    });
    writer.update([]);
    const controller = new AbortController();
    const seen: number[] = [];
    const run = evaluatePerplexity(model, validationTokens(), {
      runs: planEvaluationRuns({ lengths: [64, 128, 256], trainedContext: 512 }),
      scoredTokens: 512,
      signal: controller.signal,
      onCell: (_cell, cells) => {
        writer.update(cells);
        // The file on disk is complete after every cell.
        seen.push(
          (JSON.parse(readFileSync(jsonPath, "utf8")) as EvaluationReport<PerplexityCell>).cells.length,
        );
      },
      // Abort in the middle of the second run, after one of its windows.
      onProgress: ({ run }) => {
        if (run.length === 128)
          controller.abort(Object.assign(new Error("interrupted"), { name: "AbortError" }));
      },
    });
    await expect(run).rejects.toMatchObject({ name: "AbortError" });
    writer.finish(false);
    const report = JSON.parse(readFileSync(jsonPath, "utf8")) as EvaluationReport<PerplexityCell>;
    expect(seen).toEqual([1]);
    expect(report.complete).toBe(false);
    expect(report.finishedAt).not.toBeNull();
    expect(report.cells.map((cell) => cell.length)).toEqual([64]);
    expect(findAll(parseXml(readFileSync(plotPath, "utf8")), "polyline")).toHaveLength(1);
    expect(readdirSync(folder).sort()).toEqual(["plot.svg", "results.json"]);
  });
});
