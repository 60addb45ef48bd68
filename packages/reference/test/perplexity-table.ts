/**
 * Runs rows of the spec's stories260K perplexity table on the reference backend. Shared by the
 * table test files, which are split so that vitest can run them on two workers where it has them.
 */
import { largestUsableContext } from "@self-extend/core";
import { expect, it } from "vitest";
import { computePerplexity, createReferenceBackend } from "../src/index.js";
import { sharedModelPaths } from "./shared-data.js";
import {
  type PerplexityTableRow,
  rowLabel,
  scoredPositions,
  validationTokens,
} from "./stories260K-perplexity.js";

/** Each 2048-token row takes about three minutes on one core. */
const rowTimeoutMilliseconds = 30 * 60 * 1000;

export function checkPerplexityRows(rows: readonly PerplexityTableRow[]): void {
  it.each(rows.map((row) => [rowLabel(row), row] as const))(
    "%s reproduces the spec's perplexity within 1%",
    async (_label, row) => {
      const model = await createReferenceBackend().loadModel({ path: sharedModelPaths.stories260K });
      const tokens = validationTokens().slice(0, scoredPositions + 1);
      // The W=256 G=4 row at 2048 passes (L - W) * G + W = 1280 on purpose: it shows what that costs.
      const beyondLimit = row.contextSize > largestUsableContext(model.info.trainedContext, row.selfExtend);
      const started = performance.now();
      const result = await computePerplexity(model, tokens, {
        contextSize: row.contextSize,
        selfExtend: row.selfExtend,
        buckets: [{ start: 1024, end: 2048 }],
        sessionOptions: { allowBeyondUsableContext: row.selfExtend.groupSize > 1 && beyondLimit },
      });
      const seconds = (performance.now() - started) / 1000;
      const far = result.buckets[0];
      console.log(
        `${rowLabel(row)}: PPL ${result.perplexity.toFixed(4)} (spec ${row.perplexity})` +
          (row.farPerplexity === undefined
            ? ""
            : `, 1024-2047 ${far.perplexity.toFixed(4)} (spec ${row.farPerplexity})`) +
          `, ${result.predictionCount} predictions in ${seconds.toFixed(1)} s`,
      );
      expect(result.predictionCount).toBe(scoredPositions);
      expect(Math.abs(result.perplexity / row.perplexity - 1)).toBeLessThan(0.01);
      if (row.farPerplexity !== undefined) {
        expect(far.predictionCount).toBe((scoredPositions / row.contextSize) * 1024);
        expect(Math.abs(far.perplexity / row.farPerplexity - 1)).toBeLessThan(0.01);
      }
    },
    rowTimeoutMilliseconds,
  );
}
