/**
 * A K-quant file written by llama.cpp's own llama-quantize (Q4_K_M: Q4_K with Q6_K, the most
 * common download) runs on this adapter and matches the reference backend on the same file.
 * Weights are dequantised on the CPU at load, by @self-extend/models (bit-identical to ggml's
 * to_float, checked in the llama-cpp package), and uploaded as float32 (or IEEE half with
 * weightPrecision "float16"): the kernels never see quantized blocks, so the adapter's default
 * tolerance (float32 against the reference, as log-probabilities) applies unchanged.
 */
import {
  adapterTolerance,
  largestDifference,
  logSoftmaxRows,
  readDeclaration,
} from "@self-extend/conformance";
import { argmax } from "@self-extend/core";
import { readGguf } from "@self-extend/models/node";
import { createReferenceBackend } from "@self-extend/reference";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
// llama-quantize is built from node-llama-cpp's bundled sources by the llama-cpp package's tests.
import { quantizableSpec, quantizedModel } from "../../llama-cpp/test/quantized-models.js";
import { conformanceDeclaration } from "../src/index.js";
import { useWebGpuBackend } from "./use-webgpu-backend.js";

const temporaryFolder = useTemporaryFolder("webgpu-quantized-");

const webGpu = useWebGpuBackend();

describe("quantized weights", () => {
  it("Q4_K_M from llama-quantize: 3L prompt logits and 64 greedy tokens match the reference", async () => {
    const tolerance = adapterTolerance(readDeclaration(conformanceDeclaration).tolerances!, {
      backend: "webgpu",
    });
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
    const contextSize = prompt.length + greedyTokens;
    const gpuModel = await webGpu.backend.loadModel({ path });
    const referenceModel = await createReferenceBackend().loadModel({ path });
    const gpu = await gpuModel.createSession({ selfExtend, contextSize });
    const reference = await referenceModel.createSession({ selfExtend, contextSize });
    try {
      const gpuPrompt = await gpu.evaluate(prompt, { logits: "all" });
      const referencePrompt = await reference.evaluate(prompt, { logits: "all" });
      const vocabularySize = quantizableSpec.vocabularySize;
      const logProbabilityDifference = (a: Float32Array, b: Float32Array) =>
        largestDifference(logSoftmaxRows(a, vocabularySize), logSoftmaxRows(b, vocabularySize));
      let difference = logProbabilityDifference(gpuPrompt.logits, referencePrompt.logits);
      let gpuLogits = gpuPrompt.logits.subarray((prompt.length - 1) * vocabularySize);
      let referenceLogits = referencePrompt.logits.subarray((prompt.length - 1) * vocabularySize);
      for (let step = 0; step < greedyTokens; step++) {
        const token = argmax(referenceLogits);
        expect(argmax(gpuLogits), `greedy token ${step} after the prompt`).toBe(token);
        if (step === greedyTokens - 1) break;
        gpuLogits = await gpu.decode(token);
        referenceLogits = await reference.decode(token);
        difference = Math.max(difference, logProbabilityDifference(gpuLogits, referenceLogits));
      }
      console.info(`webgpu Q4_K_M: largest log-probability difference ${difference}`);
      expect(difference).toBeLessThanOrEqual(tolerance.atol);
    } finally {
      await gpu.dispose();
      await reference.dispose();
      await gpuModel.dispose();
    }
  });
});
