import { describe, expect, it } from "vitest";
import { evaluateInBlocks, LogitCollector } from "../src/index.js";

/** A fake block runner: row r of a block holds the value of its absolute index, vocabulary of 2. */
function rowsOf(blockStart: number, rows: readonly number[]): Float32Array {
  return Float32Array.from(rows.flatMap((row) => [blockStart + row, -(blockStart + row)]));
}

describe("evaluateInBlocks", () => {
  it("runs blocks in order, stores the wanted rows and reports progress", async () => {
    const tokenCounts: number[] = [];
    const progress: number[] = [];
    const evaluation = await evaluateInBlocks({
      count: 7,
      blockSize: 3,
      firstPosition: 10,
      collector: new LogitCollector([6, 0, 6], 7, 10, 2),
      onProgress: ({ evaluated }) => progress.push(evaluated),
      runBlock: (blockStart, _count, rows) => rowsOf(blockStart, rows),
      setTokenCount: (tokens) => tokenCounts.push(tokens),
    });
    expect(Array.from(evaluation.positions)).toEqual([16, 10, 16]);
    expect(Array.from(evaluation.logits)).toEqual([6, -6, 0, -0, 6, -6]);
    expect(tokenCounts).toEqual([13, 16, 17]);
    expect(progress).toEqual([3, 6, 7]);
  });

  it("puts the token count back and rethrows on an abort between blocks", async () => {
    const controller = new AbortController();
    const tokenCounts: number[] = [];
    const attempt = evaluateInBlocks({
      count: 7,
      blockSize: 3,
      firstPosition: 10,
      collector: new LogitCollector("last", 7, 10, 2),
      signal: controller.signal,
      runBlock: (blockStart, _count, rows) => {
        controller.abort();
        return rowsOf(blockStart, rows);
      },
      setTokenCount: (tokens) => tokenCounts.push(tokens),
    });
    await expect(attempt).rejects.toThrow(/abort/i);
    expect(tokenCounts).toEqual([13, 10]);
  });
});
