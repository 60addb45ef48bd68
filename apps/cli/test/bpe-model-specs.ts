/**
 * The shapes of the tiny generated models that carry a real byte-level BPE vocabulary (Llama 3's,
 * Qwen's) in the CLI's issue 16 proofs. Every matrix row is 256 or 512 values long, so every K-quant
 * (256-value super-blocks) applies to every matrix and llama-quantize never falls back to another
 * type. Untied output: a tiny tied model's logits are dominated by each token's own embedding. The
 * vocabulary size is replaced by the tokenizer's (gguf-py-models.ts).
 */
import type { TinyModelSpec } from "@self-extend/models/node";

export const llama3BpeSpec: TinyModelSpec = {
  name: "llama3-h64-gqa4-e256",
  architecture: "llama",
  layerCount: 1,
  headCount: 4,
  kvHeadCount: 1,
  headSize: 64,
  feedForwardSize: 512,
  vocabularySize: 0,
  trainedContext: 64,
  ropeBase: 500000,
  llama3RopeScaling: { factor: 32, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContext: 64 },
  hasQkvBias: false,
};

export const qwen2BpeSpec: TinyModelSpec = {
  name: "qwen2-h64-gqa2-bias-e256",
  architecture: "qwen2",
  layerCount: 1,
  headCount: 4,
  kvHeadCount: 2,
  headSize: 64,
  feedForwardSize: 256,
  vocabularySize: 0,
  trainedContext: 64,
  ropeBase: 1e6,
  hasQkvBias: true,
};
