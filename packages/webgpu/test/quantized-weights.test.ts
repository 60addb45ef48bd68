/**
 * A K-quant file written by llama.cpp's own llama-quantize (Q4_K_M: Q4_K with Q6_K, the most
 * common download) runs on this adapter and matches the reference backend on the same file.
 * Weights are dequantised on the CPU at load, by @self-extend/models (bit-identical to ggml's
 * to_float, checked in the llama-cpp package), and uploaded as float32 (or IEEE half with
 * weightPrecision "float16"): the kernels never see quantized blocks, so the adapter's default
 * tolerance (float32 against the reference, as log-probabilities) applies unchanged.
 */
import { readGguf } from "@self-extend/models/node";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
// llama-quantize is built from node-llama-cpp's bundled sources by the llama-cpp package's tests.
import { quantizableSpec, quantizedModel } from "../../llama-cpp/test/quantized-models.js";
import { compareFileWithReference, webGpuTolerance } from "./against-reference.js";
import { useWebGpuBackend } from "./use-webgpu-backend.js";

const temporaryFolder = useTemporaryFolder("webgpu-quantized-");

const webGpu = useWebGpuBackend();

describe("quantized weights", () => {
  it("Q4_K_M from llama-quantize: 3L prompt logits and 64 greedy tokens match the reference", async () => {
    const greedyTokens = 64;
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
    const compared = await compareFileWithReference(webGpu.backend, path, {
      selfExtend,
      prompt,
      greedyTokens,
    });
    const difference = Math.max(compared.prompt, compared.decode);
    console.info(`webgpu Q4_K_M: largest log-probability difference ${difference}`);
    expect(difference).toBeLessThanOrEqual(webGpuTolerance());
  });
});
