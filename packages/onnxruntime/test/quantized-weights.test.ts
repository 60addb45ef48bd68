/**
 * A K-quant file written by llama.cpp's own llama-quantize (Q4_K_M: Q4_K with Q6_K, the most
 * common download) runs on this adapter and matches the reference backend on the same file: both
 * read weights through @self-extend/models, which dequantises them to float32 at load (checked
 * bit for bit against ggml in the llama-cpp package), so the adapter's default tolerance (float32
 * against the reference, as log-probabilities) applies unchanged.
 */
import { logSoftmaxRows } from "@self-extend/conformance";
import { generateTokens, type SelfExtendSessionV1 } from "@self-extend/core";
import { readGguf } from "@self-extend/models/node";
import { createReferenceBackend } from "@self-extend/reference";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
// llama-quantize is built from node-llama-cpp's bundled sources by the llama-cpp package's tests.
import { quantizableSpec, quantizedModel } from "../../llama-cpp/test/quantized-models.js";
import { createOnnxRuntimeBackend } from "../src/index.js";
import { compareLogits, tolerance } from "./tolerances.js";

const temporaryFolder = useTemporaryFolder("onnxruntime-quantized-");
const generatedTokens = 64;

async function greedy(session: SelfExtendSessionV1, prompt: number[]): Promise<number[]> {
  const tokens: number[] = [];
  for await (const token of generateTokens(session, prompt, { maxTokens: generatedTokens }))
    tokens.push(token);
  return tokens;
}

describe("quantized weights", () => {
  it("Q4_K_M from llama-quantize: 3L prompt logits and 64 greedy tokens match the reference", async () => {
    const path = quantizedModel(temporaryFolder(), "Q4_K_M", false);
    const gguf = readGguf(path);
    const types = new Set(gguf.tensors.map((tensor) => tensor.typeName));
    gguf.close();
    expect([...types].sort()).toEqual(["F32", "Q4_K", "Q6_K"]);

    const selfExtend = { groupSize: 8, neighborWindow: 16 };
    const prompt = Array.from(
      { length: 3 * quantizableSpec.trainedContext },
      (_, index) => (index * 31 + 7) % quantizableSpec.vocabularySize,
    );
    const contextSize = prompt.length + generatedTokens + 1;
    const referenceModel = await createReferenceBackend().loadModel({ path });
    const model = await createOnnxRuntimeBackend({ cacheFolder: temporaryFolder(), threads: 1 }).loadModel({
      path,
    });
    try {
      const reference = await referenceModel.createSession({ selfExtend, contextSize });
      const candidate = await model.createSession({ selfExtend, contextSize });
      const expected = await reference.evaluate(prompt, { logits: "all" });
      const actual = await candidate.evaluate(prompt, { logits: "all" });
      const vocabularySize = quantizableSpec.vocabularySize;
      const prefill = compareLogits(
        Float32Array.from(logSoftmaxRows(actual.logits, vocabularySize)),
        Float32Array.from(logSoftmaxRows(expected.logits, vocabularySize)),
        tolerance(),
      );
      console.info(
        `onnxruntime Q4_K_M: largest prompt log-probability difference ${prefill.largestDifference}`,
      );
      expect(prefill.worstExcess, `largest difference ${prefill.largestDifference}`).toBeLessThanOrEqual(0);
      await reference.reset();
      await candidate.reset();
      expect(await greedy(candidate, prompt)).toEqual(await greedy(reference, prompt));
    } finally {
      await model.dispose();
    }
  });
});
