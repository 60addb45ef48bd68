/**
 * LongRoPE (Phi-3-mini-128k's RoPE) on the reference backend: a tiny random Phi3ForCausalLM with
 * LongRoPE factors, converted by llama.cpp's own convert_hf_to_gguf.py (fixtures/phi3), against an
 * independent PyTorch Self-Extend over transformers' model (tools/phi3-models/oracle.py), whose
 * G = 1 runs reproduce transformers' unmodified forward with its long factors (sequences longer
 * than the original context) and its short ones (within it). Dropping the attention factor moves
 * those logits by 3.6 (long) and 2.0 (short), using the other factor set by 7.2 (the oracle's own
 * checks). Measured here: 2.9e-6 (short factors), 1.4e-5 (G = 1, long), 8.6e-6 (Self-Extend).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { globalRopeOptions } from "@self-extend/models";
import { loadLlamaWeights } from "@self-extend/models/node";
import { describe, expect, it } from "vitest";
import type { GemmaOracleRun } from "./gemma-oracle.js";
import { runOracleOnReference } from "./reference-oracle-run.js";
import { fixturesFolder } from "./shared-data.js";

export const phi3LongRopePath = join(fixturesFolder, "phi3", "phi3-longrope.gguf");

interface Phi3LongRopeOracle {
  readonly trained_context: number;
  readonly original_context: number;
  /** Self-Extend (G = 8, W = 32) over 4 x L tokens: long factors. */
  readonly self_extend: GemmaOracleRun;
  /** G = 1, 96 + 32 tokens = L: long factors. */
  readonly plain: GemmaOracleRun;
  /** G = 1, 24 + 8 tokens = the original context: short factors. */
  readonly plain_within_original_context: GemmaOracleRun;
}

const oracle = JSON.parse(
  readFileSync(join(fixturesFolder, "phi3", "phi3-longrope-oracle.json"), "utf8"),
) as Phi3LongRopeOracle;

/**
 * As the Gemma oracle test's bound: both sides float64 with float32 weights and RoPE tables; the
 * oracle's own float32-vs-float64 spread on these runs is 4.5e-6 to 6.2e-6.
 */
const logitBound = 1e-4;

describe.sequential("Phi-3 LongRoPE (llama.cpp's converter) against the PyTorch oracle", () => {
  it("the converted file reads as the transformers config says (tools/phi3-models/make_models.py)", () => {
    const { description } = loadLlamaWeights(phi3LongRopePath);
    const config = JSON.parse(
      readFileSync(join(fixturesFolder, "phi3", "phi3-longrope-config.json"), "utf8"),
    );
    expect(description).toMatchObject({
      architecture: "phi3",
      headSize: 16,
      rotaryDimension: 16,
      trainedContext: oracle.trained_context,
    });
    const original = config.original_max_position_embeddings;
    const attentionFactor = Math.sqrt(
      1 + Math.log(config.max_position_embeddings / original) / Math.log(original),
    );
    expect(description.longRope?.originalContext).toBe(original);
    expect(description.longRope?.attentionFactor).toBeCloseTo(attentionFactor, 6);
    expect(description.longRope?.shortFactors).toEqual(config.rope_scaling.short_factor.map(Math.fround));
    expect(description.longRope?.longFactors).toEqual(config.rope_scaling.long_factor.map(Math.fround));
    // The attention factor on both query and key: the score scale times its square.
    expect(description.attentionScale).toBeCloseTo(attentionFactor ** 2 / 4, 6);
    // The factors follow the context size as llama.cpp picks them (n_ctx > original: long).
    expect(globalRopeOptions(description, original).frequencyFactors).toBe(
      description.longRope?.shortFactors,
    );
    expect(globalRopeOptions(description, original + 1).frequencyFactors).toBe(
      description.longRope?.longFactors,
    );
  });

  const runs: [string, GemmaOracleRun][] = [
    ["G = 1 within the original context (short factors)", oracle.plain_within_original_context],
    ["G = 1 up to L (long factors)", oracle.plain],
    ["Self-Extend G = 8, W = 32 at 4 x L (long factors)", oracle.self_extend],
  ];
  for (const [name, run] of runs) {
    it(`${name}: prompt and last decode-step logits within ${logitBound}, the same greedy tokens`, async () => {
      const { largest, lastStepLargest, greedy } = await runOracleOnReference(phi3LongRopePath, run);
      console.info(
        `phi3 LongRoPE, ${name}: prompt ${largest.toExponential(2)}, last step ${lastStepLargest.toExponential(2)}`,
      );
      expect(largest).toBeLessThan(logitBound);
      expect(lastStepLargest).toBeLessThan(logitBound);
      expect(greedy).toEqual(run.greedy_tokens);
    }, 120_000);
  }
});
