/**
 * Llama 3 (rope_freqs) and Phi-3 (fused attn_qkv and gate/up) files written by llama.cpp's own
 * gguf-py with its tensor and key names (test/gguf-py/write-family-gguf.py), not by our writer: our
 * reader must recover the generated weights exactly, and llama.cpp on that file must match the
 * reference with Self-Extend at twice the trained context.
 */
import { join } from "node:path";
import type { SelfExtendConfig } from "@self-extend/core";
import { generateTinyModel, loadLlamaWeights, tinyModelSpec, writeLlamaGguf } from "@self-extend/models/node";
import { createReferenceModel } from "@self-extend/reference";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { createSelfExtendContext } from "../src/index.js";
import { writeWithGgufPython } from "./gguf-py-models.js";
import { compareLogSoftmax, logSoftmaxRows, seededTokens, tolerance } from "./helpers.js";

const temporaryFolder = useTemporaryFolder("families-gguf-py-");
const config: SelfExtendConfig = { groupSize: 4, neighborWindow: 32 };

function writeFamilyFile(name: string, folder: string) {
  const weights = generateTinyModel(tinyModelSpec(name), 4);
  const ours = join(folder, "ours.gguf");
  writeLlamaGguf(ours, weights);
  // The synthetic SentencePiece vocabulary our writer adds, read back to hand to gguf-py.
  const vocabulary = loadLlamaWeights(ours).vocabulary;
  if (vocabulary === undefined) throw new Error("our file has no vocabulary");
  const path = join(folder, `${name}.gguf-py.gguf`);
  writeWithGgufPython(weights, vocabulary, folder, path);
  return { weights, path };
}

describe.sequential("Llama 3 and Phi-3 files written by llama.cpp's gguf-py", () => {
  for (const name of ["llama3-h64-gqa4-rope-freqs", "phi-h32-mha-fused"]) {
    it(`${name}: read back exactly, and llama.cpp matches the reference with Self-Extend`, async () => {
      const { weights, path } = writeFamilyFile(name, temporaryFolder());
      const loaded = loadLlamaWeights(path);
      expect(loaded.description).toEqual(weights.description);
      expect(loaded.tokenEmbedding).toEqual(weights.tokenEmbedding);
      weights.layers.forEach((layer, block) => {
        for (const key of ["query", "key", "value", "gate", "up", "down", "output"] as const) {
          expect(loaded.layers[block][key], `layer ${block} ${key}`).toEqual(layer[key]);
        }
      });

      const { vocabularySize, trainedContext } = weights.description;
      const prompt = seededTokens(2 * trainedContext, vocabularySize, 5);
      const contextSize = prompt.length;
      const reference = await (await createReferenceModel(loaded)).createSession({
        selfExtend: config,
        contextSize,
      });
      const referenceRows = (await reference.evaluate(prompt, { logits: "all" })).logits;
      const context = await createSelfExtendContext({ model: path, ...config, contextSize, threads: 1 });
      try {
        const llamaCppRows = (await context.evaluate(prompt, { logits: "all" })).logits;
        const { maxDifference, agreement } = compareLogSoftmax(
          logSoftmaxRows(referenceRows as Float32Array, vocabularySize),
          llamaCppRows as Float32Array,
          vocabularySize,
        );
        expect(maxDifference).toBeLessThanOrEqual(tolerance().atol);
        expect(agreement).toBe(1);
      } finally {
        await context.dispose();
      }
    }, 120_000);
  }
});
