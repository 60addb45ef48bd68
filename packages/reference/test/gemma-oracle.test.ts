/**
 * The reference backend on Gemma and Gemma 2 files written by llama.cpp's own converter, against an
 * independent PyTorch Self-Extend over transformers' models (tools/gemma-models/oracle.py), whose
 * G = 1 run reproduces transformers' unmodified forward. Logits at the oracle's positions and its
 * greedy tokens, at G = 1 (a prompt past Gemma 2's sliding window) and with Self-Extend at 4 x L.
 */
import { loadLlamaWeights } from "@self-extend/models/node";
import { describe, expect, it } from "vitest";
import { type GemmaOracleRun, gemmaFamilies, gemmaModelPath, readGemmaOracle } from "./gemma-oracle.js";
import { runOracleOnReference } from "./reference-oracle-run.js";

/**
 * Both sides compute in float64 and round the same things to float32 (the weights, transformers'
 * RMSNorm outputs, the RoPE angle table on the oracle's side, the returned logits here); what is
 * left is float32 rounding carried through three layers: measured 3.9e-6 (gemma, G = 1), 3.0e-6
 * (gemma, Self-Extend), 1.1e-6 (gemma2, G = 1), 1.7e-5 (gemma2, Self-Extend) on logits of order
 * 1-15 (last decode step: at most 1.9e-6), the size of the oracle's own float32-vs-float64 spread (2.9e-6 to 4.1e-6). Moving Gemma 2's
 * window edge by one moves the oracle's logits by 1.7; a wrong scale or soft-cap, far more than 1e-4.
 */
const logitBound = 1e-4;

describe.sequential("Gemma and Gemma 2 (llama.cpp's converter) against the PyTorch oracle", () => {
  it("the converted files read as the transformers configs say (tools/gemma-models/make_models.py)", () => {
    const gemma = loadLlamaWeights(gemmaModelPath("gemma"));
    expect(gemma.description).toMatchObject({
      architecture: "gemma",
      layerCount: 3,
      embeddingSize: 64,
      headCount: 4,
      kvHeadCount: 2,
      headSize: 32,
      trainedContext: 128,
      embeddingScale: 8,
      feedForwardActivation: "gelu-tanh",
    });
    expect(gemma.description.slidingWindow).toBeUndefined();
    expect(gemma.description.attentionLogitSoftCap).toBeUndefined();
    expect(gemma.output).toBe(gemma.tokenEmbedding);
    const gemma2 = loadLlamaWeights(gemmaModelPath("gemma2"));
    expect(gemma2.description).toMatchObject({
      architecture: "gemma2",
      headSize: 16,
      // query_pre_attn_scalar = 16: 1/sqrt(16).
      attentionScale: 0.25,
      attentionLogitSoftCap: 10,
      finalLogitSoftCap: 15,
      hasPostNorms: true,
      // transformers' layer_types: sliding, full, sliding.
      slidingWindow: { size: 48, localLayers: [true, false, true] },
    });
    expect(gemma2.output).toBe(gemma2.tokenEmbedding);
    const gemma3 = loadLlamaWeights(gemmaModelPath("gemma3"));
    expect(gemma3.description).toMatchObject({
      architecture: "gemma3",
      headSize: 16,
      attentionScale: 0.25,
      // Gemma 3's global base and linear scaling (factor 2 in make_models.py); none on local layers.
      ropeBase: 1_000_000,
      ropeLinearScalingFactor: 2,
      hasPostNorms: true,
      hasQueryKeyNorms: true,
      // transformers' layer_types (five sliding, one full) = llama.cpp's default pattern 6.
      slidingWindow: { size: 48, localLayers: [true, true, true, true, true, false], ropeBase: 10_000 },
    });
    expect(gemma3.description.attentionLogitSoftCap).toBeUndefined();
    expect(gemma3.description.finalLogitSoftCap).toBeUndefined();
    expect(gemma3.layers[0].queryNorm).toHaveLength(16);
    expect(gemma3.layers[0].keyNorm).toHaveLength(16);
    expect(gemma3.output).toBe(gemma3.tokenEmbedding);
  });

  for (const family of gemmaFamilies) {
    const oracle = readGemmaOracle(family);
    const runs: [string, GemmaOracleRun][] = [
      ["G = 1", oracle.plain],
      ["Self-Extend G = 8, W = 32 at 4 x L", oracle.self_extend],
    ];
    if (oracle.self_extend_window_covers_local_layers !== undefined) {
      runs.push([
        "Self-Extend G = 8, W = 48 = the window at 4 x L",
        oracle.self_extend_window_covers_local_layers,
      ]);
    }
    for (const [name, run] of runs) {
      it(`${family}, ${name}: prompt and last decode-step logits within ${logitBound}, the same greedy tokens`, async () => {
        const { largest, lastStepLargest, greedy } = await runOracleOnReference(gemmaModelPath(family), run);
        console.info(
          `${family}, ${name}: prompt ${largest.toExponential(2)}, last step ${lastStepLargest.toExponential(2)}`,
        );
        expect(largest).toBeLessThan(logitBound);
        expect(lastStepLargest).toBeLessThan(logitBound);
        expect(greedy).toEqual(run.greedy_tokens);
      }, 120_000);
    }
  }
});
