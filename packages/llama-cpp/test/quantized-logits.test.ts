/**
 * Quantized weights, llama.cpp against the reference backend on the same llama-quantize output,
 * plain (G = 1) and with Self-Extend (G = 4, W = 32) at 3x the trained context.
 *
 * Why they differ, and by how much (conformance/quantized-weights.json):
 * - Both read the same weights: our dequantiser is bit-identical to ggml's
 *   (dequantize-against-ggml.test.ts), and llama.cpp run on an F32 file holding exactly those
 *   dequantised values matches the reference as closely as on any F32 model (the control below,
 *   held to the adapter's tolerance of the exact mode).
 * - So what remains on the quantized file is llama.cpp's quantized matrix products: its CPU backend
 *   rounds each activation row to 8-bit blocks (Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K
 *   for the K-quants) and takes integer dot products with the weight blocks, where we multiply the
 *   dequantised weights by float activations. That error is measured per weight type; the
 *   tolerance is the measurement with headroom for other CPUs' ggml kernels (see the data file).
 * - Greedy tokens may part only where the reference's two best tokens are closer than twice the
 *   tolerance: a near-tie that the measured arithmetic difference can flip.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { SelfExtendConfig, SelfExtendSessionV1 } from "@self-extend/core";
import { loadLlamaWeights, writeLlamaGguf } from "@self-extend/models/node";
import { createReferenceModel } from "@self-extend/reference";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { createSelfExtendContext } from "../src/index.js";
import {
  compareLogSoftmax,
  concatenateRows,
  greedyRun,
  logSoftmaxRows,
  seededTokens,
  tolerance,
} from "./helpers.js";
import { pureWeightTypes, quantizableSpec, quantizedModel } from "./quantized-models.js";

interface QuantizedWeightsData {
  readonly measuredOn: string;
  readonly types: Record<
    string,
    {
      readonly tolerance: {
        readonly maxLogSoftmaxDifference: number;
        readonly maxSelfExtendEffectDifference: number;
      };
      readonly measured: Record<
        "plain" | "selfExtend",
        { maxLogSoftmaxDifference: number; greedyTokensEqual: number }
      >;
    }
  >;
}

const data: QuantizedWeightsData = JSON.parse(
  readFileSync(join(import.meta.dirname, "..", "conformance", "quantized-weights.json"), "utf8"),
);

const temporaryFolder = useTemporaryFolder("quantized-logits-");
const vocabularySize = quantizableSpec.vocabularySize;
const prompt = seededTokens(3 * quantizableSpec.trainedContext, vocabularySize, 7);
const decodeCount = 32;
const contextSize = prompt.length + decodeCount;
const configs: Record<"plain" | "selfExtend", SelfExtendConfig> = {
  plain: { groupSize: 1, neighborWindow: 32 },
  selfExtend: { groupSize: 4, neighborWindow: 32 },
};

interface Run {
  readonly tokens: number[];
  readonly rows: Float32Array;
}

async function run(session: SelfExtendSessionV1): Promise<Run> {
  const { tokens, promptRows, decodeRows } = await greedyRun(session, prompt, decodeCount);
  return { tokens, rows: concatenateRows([promptRows, ...decodeRows]) };
}

/**
 * Largest log-probability difference over the rows both runs computed in the same context (the
 * prompt, then decode steps up to and including the first differing token), the number of equal
 * greedy tokens, and, where they part, the reference's gap between its two best tokens there.
 */
function compare(reference: Run, candidate: Run) {
  let equalTokens = 0;
  while (equalTokens < decodeCount && reference.tokens[equalTokens] === candidate.tokens[equalTokens])
    equalTokens++;
  // Row r (r >= prompt.length - 1) predicts decode token r - prompt.length + 1.
  const sharedRows = Math.min(prompt.length + equalTokens, reference.rows.length / vocabularySize);
  const referenceLogProbabilities = logSoftmaxRows(
    reference.rows.subarray(0, sharedRows * vocabularySize),
    vocabularySize,
  );
  const { maxDifference } = compareLogSoftmax(
    referenceLogProbabilities,
    candidate.rows.subarray(0, sharedRows * vocabularySize),
    vocabularySize,
  );
  let partingGap: number | undefined;
  if (equalTokens < decodeCount) {
    const row = referenceLogProbabilities
      .subarray((prompt.length - 1 + equalTokens) * vocabularySize)
      .subarray(0, vocabularySize);
    const sorted = [...row].sort((a, b) => b - a);
    partingGap = sorted[0] - sorted[1];
  }
  return { maxDifference, equalTokens, partingGap };
}

async function llamaCppRun(model: string, config: SelfExtendConfig): Promise<Run> {
  const context = await createSelfExtendContext({ model, ...config, contextSize, threads: 1 });
  try {
    return await run(context);
  } finally {
    await context.dispose();
  }
}

const cases = [
  ...pureWeightTypes.map(({ type }) => ({ key: `${type}-pure`, type, pure: true })),
  { key: "Q4_K_M", type: "Q4_K_M", pure: false },
];

describe.sequential("quantized weights: llama.cpp against the reference on the same file", () => {
  for (const { key, type, pure } of cases) {
    it(`${key}: dequantised weights agree exactly; quantized products stay within the measured tolerance`, async () => {
      const file = quantizedModel(temporaryFolder(), type, pure);
      const weights = loadLlamaWeights(file);
      const control = join(temporaryFolder(), `${key}-dequantised-F32.gguf`);
      writeLlamaGguf(control, weights);
      const expected = data.types[key];
      expect(expected, `conformance/quantized-weights.json has no entry ${key}`).toBeDefined();
      const measured: Record<string, unknown> = {};
      const promptRows: Record<string, { reference: Run; llamaCpp: Run }> = {};
      for (const [name, config] of Object.entries(configs) as ["plain" | "selfExtend", SelfExtendConfig][]) {
        const reference = await run(
          await createReferenceModel(weights).createSession({ selfExtend: config, contextSize }),
        );
        const onControl = compare(reference, await llamaCppRun(control, config));
        const llamaCpp = await llamaCppRun(file, config);
        promptRows[name] = { reference, llamaCpp };
        const onQuantized = compare(reference, llamaCpp);
        measured[name] = {
          maxLogSoftmaxDifference: Number(onQuantized.maxDifference.toPrecision(3)),
          greedyTokensEqual: onQuantized.equalTokens,
          partingGap: onQuantized.partingGap,
          control: {
            maxLogSoftmaxDifference: Number(onControl.maxDifference.toPrecision(3)),
            greedyTokensEqual: onControl.equalTokens,
          },
        };
        expect(onControl.maxDifference).toBeLessThanOrEqual(tolerance().atol);
        expect(onControl.equalTokens).toBe(decodeCount);
        const typeTolerance = expected.tolerance.maxLogSoftmaxDifference;
        expect(onQuantized.maxDifference).toBeLessThanOrEqual(typeTolerance);
        if (onQuantized.partingGap !== undefined)
          expect(onQuantized.partingGap).toBeLessThanOrEqual(2 * typeTolerance);
      }
      // Self-Extend's own effect, each runtime against itself: how much G = 4 moves each prompt
      // log-probability away from the same runtime's plain run, compared between the runtimes.
      // The quantized arithmetic is common to both of a runtime's runs, so this isolates
      // Self-Extend from it.
      const effect = (runs: { plain: Run; selfExtend: Run }) => {
        const rows = prompt.length * vocabularySize;
        const plain = logSoftmaxRows(runs.plain.rows.subarray(0, rows), vocabularySize);
        const extended = logSoftmaxRows(runs.selfExtend.rows.subarray(0, rows), vocabularySize);
        return extended.map((value, index) => value - plain[index]);
      };
      const referenceEffect = effect({
        plain: promptRows.plain.reference,
        selfExtend: promptRows.selfExtend.reference,
      });
      const llamaCppEffect = effect({
        plain: promptRows.plain.llamaCpp,
        selfExtend: promptRows.selfExtend.llamaCpp,
      });
      let effectDifference = 0;
      let largestEffect = 0;
      for (let index = 0; index < referenceEffect.length; index++) {
        effectDifference = Math.max(
          effectDifference,
          Math.abs(referenceEffect[index] - llamaCppEffect[index]),
        );
        largestEffect = Math.max(largestEffect, Math.abs(referenceEffect[index]));
      }
      measured.selfExtendEffect = {
        largestInReference: Number(largestEffect.toPrecision(3)),
        maxDifferenceBetweenRuntimes: Number(effectDifference.toPrecision(3)),
      };
      console.info(`quantized weights ${key}: ${JSON.stringify(measured)}`);
      expect(effectDifference).toBeLessThanOrEqual(expected.tolerance.maxSelfExtendEffectDifference);
    });
  }
});
