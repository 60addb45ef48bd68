/**
 * Small random Llama-family models from a seed, so the forward pass can be checked on shapes the
 * stories260K file does not have (half-split RoPE, partial rotary, linear scaling, q/k/v biases).
 */
import { createRandom } from "@self-extend/core";
import type { LlamaLayerWeights, LlamaModelDescription, LlamaWeights } from "@self-extend/models";

export function createRandomWeights(description: LlamaModelDescription, seed: number): LlamaWeights {
  const random = createRandom(seed);
  // Uniform in [-scale, scale]; the scales keep activations O(1) so softmaxes are not one-hot.
  const tensor = (size: number, scale: number) =>
    Float32Array.from({ length: size }, () => (random() * 2 - 1) * scale);
  const gain = (size: number) => Float32Array.from({ length: size }, () => 0.8 + 0.4 * random());
  const { embeddingSize, headCount, kvHeadCount, headSize, feedForwardSize, vocabularySize } = description;
  const queryWidth = headCount * headSize;
  const keyWidth = kvHeadCount * headSize;
  const projection = 1.5 / Math.sqrt(embeddingSize);
  const layers: LlamaLayerWeights[] = Array.from({ length: description.layerCount }, () => ({
    attentionNorm: gain(embeddingSize),
    query: tensor(queryWidth * embeddingSize, projection),
    key: tensor(keyWidth * embeddingSize, projection),
    value: tensor(keyWidth * embeddingSize, projection),
    output: tensor(embeddingSize * queryWidth, 1 / Math.sqrt(queryWidth)),
    ...(description.hasQkvBias
      ? {
          queryBias: tensor(queryWidth, 0.2),
          keyBias: tensor(keyWidth, 0.2),
          valueBias: tensor(keyWidth, 0.2),
        }
      : {}),
    feedForwardNorm: gain(embeddingSize),
    gate: tensor(feedForwardSize * embeddingSize, projection),
    up: tensor(feedForwardSize * embeddingSize, projection),
    down: tensor(embeddingSize * feedForwardSize, 1 / Math.sqrt(feedForwardSize)),
  }));
  const tokenEmbedding = tensor(vocabularySize * embeddingSize, 1);
  return {
    description,
    tokenEmbedding,
    outputNorm: gain(embeddingSize),
    output: tensor(vocabularySize * embeddingSize, 1 / Math.sqrt(embeddingSize)),
    layers,
  };
}

/** Interleaved RoPE, grouped-query attention, no biases: the llama / mistral shape. */
export const llamaShapedDescription: LlamaModelDescription = {
  architecture: "llama",
  layerCount: 2,
  headCount: 4,
  kvHeadCount: 2,
  headSize: 8,
  embeddingSize: 24,
  feedForwardSize: 40,
  normEpsilon: 1e-5,
  vocabularySize: 37,
  trainedContext: 32,
  ropeBase: 10000,
  ropeLayout: "interleaved",
  rotaryDimension: 8,
  ropeLinearScalingFactor: 1,
  hasQkvBias: false,
};

/** Half-split RoPE over part of each head, linear scaling, q/k/v biases: the qwen2 shape and more. */
export const qwenShapedDescription: LlamaModelDescription = {
  architecture: "qwen2",
  layerCount: 2,
  headCount: 6,
  kvHeadCount: 2,
  headSize: 6,
  embeddingSize: 20,
  feedForwardSize: 28,
  normEpsilon: 1e-6,
  vocabularySize: 29,
  trainedContext: 24,
  ropeBase: 1e6,
  ropeLayout: "half-split",
  rotaryDimension: 4,
  ropeLinearScalingFactor: 2,
  hasQkvBias: true,
};
