/**
 * A vocabulary larger than one storage binding: real vocabularies times the embedding width pass
 * the binding limit (Qwen's 151669 x 256 float32 is 155 MB; lavapipe binds 128 MiB), so the token
 * embedding and the classifier are uploaded as slabs of whole rows. Here a device whose binding limit
 * is lowered forces many slabs on a small model: the logits must be bit-identical to the same model
 * in one buffer per matrix, since every output value is the same loop over the same numbers.
 */
import type { SelfExtendConfig } from "@self-extend/core";
import { generateTinyModel, type TinyModelSpec } from "@self-extend/models/node";
import { beforeAll, describe, expect, it } from "vitest";
import type { WebGpuContext } from "../src/index.js";
import { ForwardPassKernels, GpuForwardPass, uploadLlamaWeights } from "../src/kernels.js";
import { useWebGpuBackend } from "./use-webgpu-backend.js";

/** The embedding table (1000 rows of 128 bytes) is far larger than any layer matrix (48 x 32). */
const spec: TinyModelSpec = {
  name: "llama-h8-wide-vocabulary",
  architecture: "llama",
  layerCount: 1,
  headCount: 4,
  kvHeadCount: 2,
  headSize: 8,
  feedForwardSize: 48,
  vocabularySize: 1000,
  trainedContext: 32,
  ropeBase: 10000,
  hasQkvBias: false,
};
// 78 rows of 128 bytes per slab: 12 full slabs and a last one of 64 rows.
const bindingLimit = 10_000;
const config: SelfExtendConfig = { groupSize: 4, neighborWindow: 8 };
const prompt = Array.from({ length: 96 }, (_, index) => (index * 397 + 11) % spec.vocabularySize);

let context: WebGpuContext;

const webGpu = useWebGpuBackend();
beforeAll(async () => {
  context = await webGpu.backend.getContext();
});

async function promptLogits(
  tied: boolean,
  limit: number | undefined,
): Promise<{ logits: Float32Array; slabs: number[] }> {
  const weights = generateTinyModel({ ...spec, tiedEmbeddings: tied }, 3);
  const uploadContext =
    limit === undefined
      ? context
      : { ...context, limits: { ...context.limits, maxStorageBufferBindingSize: limit } };
  const gpuWeights = await uploadLlamaWeights(uploadContext, weights);
  const kernels = await ForwardPassKernels.create(context, weights.description);
  const forwardPass = await GpuForwardPass.create(context, kernels, gpuWeights, config, prompt.length, 32);
  try {
    const logits = new Float32Array(prompt.length * spec.vocabularySize);
    for (let offset = 0; offset < prompt.length; offset += 32) {
      const count = Math.min(32, prompt.length - offset);
      const rows = Array.from({ length: count }, (_, row) => row);
      const block = await forwardPass.evaluateBlock(prompt, offset, count, offset, rows);
      logits.set(block, offset * spec.vocabularySize);
    }
    return {
      logits,
      slabs: [gpuWeights.tokenEmbedding.length, gpuWeights.output.length],
    };
  } finally {
    forwardPass.destroy();
    gpuWeights.destroy();
  }
}

describe("token embedding and classifier in row slabs", () => {
  it.each([false, true])("give the one-buffer logits bit for bit (tied embeddings: %s)", async (tied) => {
    const whole = await promptLogits(tied, undefined);
    const split = await promptLogits(tied, bindingLimit);
    expect(whole.slabs).toEqual([1, 1]);
    expect(split.slabs).toEqual([13, 13]);
    // Every token of the vocabulary range is read, from the first slab to the last.
    expect(Math.max(...prompt)).toBeGreaterThan(12 * 78);
    expect(Math.min(...prompt)).toBeLessThan(78);
    expect(split.logits).toEqual(whole.logits);
    expect(whole.logits.some((value) => value !== 0)).toBe(true);
  });

  it("refuses a model whose single embedding row is larger than a binding, naming the tensor", async () => {
    const weights = generateTinyModel(spec, 3);
    const tiny = { ...context, limits: { ...context.limits, maxStorageBufferBindingSize: 64 } };
    await expect(uploadLlamaWeights(tiny, weights)).rejects.toThrow(/tensor token_embd row has 128 bytes/);
  });
});
