import { demoModelInfo } from "@self-extend/demo-model";
import { describe, expect, it } from "vitest";
import { runCli } from "../src/index.js";
import { captureTerminal } from "./capture-terminal.js";

async function cli(...args: string[]) {
  const terminal = captureTerminal();
  const code = await runCli(args, terminal);
  return { code, stdout: terminal.stdout, stderr: terminal.stderr };
}

interface Measurement {
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  cacheBytes?: number;
}

interface Row {
  multiple: number;
  contextSize: number;
  plain: Measurement;
  selfExtend: Measurement;
  prefillTimeRatio: number;
  decodeTimeRatio: number;
}

// One token's key or value row in one layer: kvHeadCount x headSize numbers (the model card's shape).
const { layerCount, kvHeadCount, headSize, trainedContext } = demoModelInfo;
const rowWidth = kvHeadCount * headSize;

describe("self-extend bench", () => {
  it("times Self-Extend and plain attention on the same backend, with each adapter's KV cache size (--json)", async () => {
    const { code, stdout, stderr } = await cli(
      "bench",
      "--backend",
      "reference,onnxruntime",
      "--multiples",
      "1,2",
      "--decode",
      "4",
      "--repeat",
      "1",
      "--json",
    );
    expect(stderr).toContain("(L = 256)");
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.trainedContext).toBe(trainedContext);
    expect(report.decodeTokens).toBe(4);
    // The planner's setting for the longest context, 2 x 256 = 512 tokens.
    expect(report.selfExtend.groupSize).toBeGreaterThan(1);
    expect(
      (256 - report.selfExtend.neighborWindow) * report.selfExtend.groupSize +
        report.selfExtend.neighborWindow,
    ).toBeGreaterThanOrEqual(512);
    expect(report.results.map((result: { backend: string }) => result.backend)).toEqual([
      "reference",
      "onnxruntime",
    ]);
    for (const result of report.results as { backend: string; rows: Row[] }[]) {
      expect(result.rows.map((row) => [row.multiple, row.contextSize])).toEqual([
        [1, 256],
        [2, 512],
      ]);
      for (const row of result.rows) {
        for (const measurement of [row.plain, row.selfExtend]) {
          expect(measurement.prefillTokensPerSecond).toBeGreaterThan(0);
          expect(measurement.decodeTokensPerSecond).toBeGreaterThan(0);
        }
        // The ratios are of times: plain speed over Self-Extend speed.
        expect(row.prefillTimeRatio).toBeCloseTo(
          row.plain.prefillTokensPerSecond / row.selfExtend.prefillTokensPerSecond,
          10,
        );
        expect(row.decodeTimeRatio).toBeCloseTo(
          row.plain.decodeTokensPerSecond / row.selfExtend.decodeTokensPerSecond,
          10,
        );
        const n = row.contextSize;
        if (result.backend === "reference") {
          // float64 keys at both levels plus values, whatever G, grown to hold the n tokens.
          expect(row.plain.cacheBytes).toBe(layerCount * 3 * n * rowWidth * 8);
          expect(row.selfExtend.cacheBytes).toBe(layerCount * 3 * n * rowWidth * 8);
        } else {
          // float32 keys and values; Self-Extend keeps a second, group-rotated key copy (1.5x).
          expect(row.plain.cacheBytes).toBe(layerCount * 2 * n * rowWidth * 4);
          expect(row.selfExtend.cacheBytes).toBe(layerCount * 3 * n * rowWidth * 4);
        }
      }
    }
  });

  it("prints one table row per backend and context", async () => {
    const { code, stdout } = await cli(
      "bench",
      "--backend",
      "reference",
      "--multiples",
      "1",
      "--decode",
      "2",
      "--repeat",
      "1",
    );
    expect(code).toBe(0);
    const lines = stdout.trim().split("\n");
    expect(lines[0]).toContain("prefill time SE/plain");
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^reference \| 1x \(256\) \| /);
    expect(lines[1].split(" | ")).toHaveLength(10);
  });
});
