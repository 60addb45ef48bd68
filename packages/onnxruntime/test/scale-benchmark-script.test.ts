/**
 * scripts/scale-benchmark.ts end to end, in its smoke size (SELF_EXTEND_SCALE_SMOKE=1: the 1B-shape
 * model's widths with 1 layer and a 1024-token vocabulary), as it is run on a machine with many
 * cores: it writes the model, runs Self-Extend and plain attention at each multiple, and prints and
 * writes a row per multiple under this adapter's label.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repositoryRoot, useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";

const script = join(import.meta.dirname, "..", "scripts", "scale-benchmark.ts");

describe("scripts/scale-benchmark.ts", () => {
  const temporaryFolder = useTemporaryFolder("onnxruntime-scale-benchmark-");

  it("runs the smoke model at 1x and 2x of L = 64 and reports one onnxruntime row per multiple", () => {
    const folder = temporaryFolder();
    const jsonPath = join(folder, "scale.json");
    const output = execFileSync(
      process.execPath,
      ["--import", "tsx", script, join(folder, "model"), "64", "1,2", jsonPath, "--decode", "4"],
      {
        cwd: repositoryRoot(),
        encoding: "utf8",
        env: {
          ...process.env,
          SELF_EXTEND_SCALE_SMOKE: "1",
          SELF_EXTEND_ONNX_CACHE: join(folder, "cache"),
        },
      },
    );
    // The planner for 2 x 64 + 4 tokens, and the two rows of the shared table, labelled onnxruntime.
    expect(output).toMatch(/Self-Extend G = \d+, W = \d+ \(the adapter's default mode\), 4 decoded tokens/);
    expect(output).toMatch(/^onnxruntime \| 1x \(64\) \|/m);
    expect(output).toMatch(/^onnxruntime \| 2x \(128\) \|/m);
    const written = JSON.parse(readFileSync(jsonPath, "utf8"));
    expect(written.executionProvider).toBe("cpu");
    expect(written.info).toMatchObject({
      layerCount: 1,
      vocabularySize: 1024,
      headCount: 32,
      kvHeadCount: 8,
    });
    expect(written.rows.map((row: { contextSize: number }) => row.contextSize)).toEqual([64, 128]);
    // Issue 14's bound on the cache: at most 1.5x plain's (this adapter keeps a group-level key copy).
    for (const row of written.rows) {
      expect(row.selfExtend.cacheBytes).toBeGreaterThan(row.plain.cacheBytes);
      expect(row.selfExtend.cacheBytes).toBeLessThanOrEqual(row.plain.cacheBytes * 1.5);
    }
  });
});
