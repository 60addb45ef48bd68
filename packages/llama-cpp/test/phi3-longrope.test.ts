/**
 * llama.cpp on a Phi-3 LongRoPE file written by llama.cpp's own converter (tools/phi3-models: a
 * tiny random Phi3ForCausalLM, original context 32, L = 128, attention factor 1.18), against the
 * PyTorch oracle of the same model (float64; its G = 1 runs reproduce transformers' forward). What
 * llama.cpp cannot compute as the other backends do is refused in one line
 * (llama-cpp-capabilities.ts, requireLongRopeSupported, says why): Self-Extend with an attention
 * factor other than 1, and a context within the original context that llama.cpp pads past it.
 * With the factor rewritten to 1, Self-Extend on llama.cpp (whose K-shift rotates with the long
 * factors) matches the reference backend on the same file.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SelfExtendConfigError } from "@self-extend/core";
import { loadLlamaWeights, writeLlamaGguf } from "@self-extend/models/node";
import { createReferenceBackend } from "@self-extend/reference";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { type GemmaOracleRun, replayOracleRun } from "../../reference/test/gemma-oracle.js";
import { createSelfExtendContext } from "../src/index.js";
import { compareLogSoftmax, logSoftmaxRows, tolerance } from "./helpers.js";
import { runOracleOnLlamaCpp } from "./oracle-runs.js";

const folder = join(import.meta.dirname, "..", "..", "reference", "test", "fixtures", "phi3");
const path = join(folder, "phi3-longrope.gguf");
const oracle = JSON.parse(readFileSync(join(folder, "phi3-longrope-oracle.json"), "utf8")) as {
  readonly self_extend: GemmaOracleRun;
  readonly plain: GemmaOracleRun;
  readonly plain_within_original_context: GemmaOracleRun;
};
const temporaryFolder = useTemporaryFolder("llama-cpp-phi3-longrope-");

/**
 * F32 weights and SwiGLU (no fp16 GELU table as in Gemma): measured 2.2e-5 on the prompt rows and
 * 2.8e-5 at the last decode step; bound 1e-3, the adapter's F32 tolerance.
 */
const logProbabilityBound = 1e-3;

describe.sequential("Phi-3 LongRoPE (llama.cpp's converter) on llama.cpp", () => {
  it("G = 1 past the original context (long factors): within 1e-3 of the oracle, the same greedy tokens", async () => {
    const { largest, lastStepLargest, greedy } = await runOracleOnLlamaCpp(path, oracle.plain);
    console.info(
      `phi3 LongRoPE G = 1: prompt ${largest.toExponential(2)}, last step ${lastStepLargest.toExponential(2)}`,
    );
    expect(largest).toBeLessThan(logProbabilityBound);
    expect(lastStepLargest).toBeLessThan(logProbabilityBound);
    expect(greedy).toEqual(oracle.plain.greedy_tokens);
  }, 120_000);

  it("Self-Extend with the attention factor (1.18) is refused in one line naming it", async () => {
    const run = oracle.self_extend;
    const create = createSelfExtendContext({
      model: path,
      groupSize: run.group_size,
      neighborWindow: run.neighbor_window,
      contextSize: run.prompt_tokens.length + run.greedy_tokens.length,
      threads: 1,
    });
    await expect(create).rejects.toThrow(SelfExtendConfigError);
    await expect(create).rejects.toThrow(
      /attention factor 1\.18\d* \(rope\.scaling\.attn_factor\) is applied again by every K-shift/,
    );
  });

  it("a context within the original context (32), which llama.cpp pads to 256, is refused naming both", async () => {
    await expect(
      createSelfExtendContext({ model: path, groupSize: 1, neighborWindow: 1, contextSize: 32, threads: 1 }),
    ).rejects.toThrow(
      /contextSize = 32 .*above this LongRoPE model's original context \(32\) on llama\.cpp: llama\.cpp pads its context to 256/,
    );
  });

  it("with the attention factor rewritten to 1: Self-Extend G = 8, W = 32 at 4 x L matches the reference on the same file", async () => {
    const weights = loadLlamaWeights(path);
    const { description } = weights;
    const unitFactorPath = join(temporaryFolder(), "phi3-longrope-attention-factor-1.gguf");
    writeLlamaGguf(unitFactorPath, {
      ...weights,
      description: {
        ...description,
        longRope: { ...description.longRope!, attentionFactor: 1 },
        attentionScale: Math.fround(1 / Math.sqrt(description.headSize)),
      },
    });
    const run = oracle.self_extend;
    const selfExtend = { groupSize: run.group_size, neighborWindow: run.neighbor_window };
    const contextSize = run.prompt_tokens.length + run.greedy_tokens.length;
    const reference = await (
      await createReferenceBackend().loadModel({ path: unitFactorPath })
    ).createSession({
      selfExtend,
      contextSize,
    });
    const expected = await replayOracleRun(reference, run);
    const context = await createSelfExtendContext({
      model: unitFactorPath,
      ...selfExtend,
      contextSize,
      threads: 1,
    });
    try {
      const actual = await replayOracleRun(context, run);
      const bound = tolerance().atol;
      const prompt = compareLogSoftmax(
        logSoftmaxRows(expected.rows, expected.vocabularySize),
        actual.rows,
        actual.vocabularySize,
      );
      const lastStep = compareLogSoftmax(
        logSoftmaxRows(expected.lastStep, expected.vocabularySize),
        actual.lastStep,
        actual.vocabularySize,
      );
      console.info(
        `phi3 LongRoPE, attention factor 1, G8/W32: prompt ${prompt.maxDifference.toExponential(2)}, last step ${lastStep.maxDifference.toExponential(2)}`,
      );
      expect(prompt.maxDifference).toBeLessThanOrEqual(bound);
      expect(lastStep.maxDifference).toBeLessThanOrEqual(bound);
      expect(actual.greedy).toEqual(expected.greedy);
    } finally {
      await context.dispose();
      await reference.dispose();
    }
  }, 300_000);
});
