/**
 * A normalised description of a Llama-family model and its weights, whatever file it came from
 * (GGUF, llama2.c checkpoint, the tiny generator). Every backend reads models through these types.
 *
 * Weight layout: row-major [out, in] float32, which is also GGUF's layout (ggml's ne0 = in is the
 * fastest-moving dimension). `y = W x` is `y[o] = sum_i W[o * in + i] * x[i]`.
 *
 * RoPE and the Q/K permutation: llama.cpp's converters permute the rows of Hugging Face's wq/wk for
 * `llama`/`mistral` so that interleaved-pair RoPE on the stored weights equals half-split RoPE on
 * the original ones. Weights in a GGUF file are therefore used as stored with the RoPE layout of
 * their architecture (interleaved for `llama`/`mistral`, half-split for `qwen2`); llama2.c weights
 * are already in the interleaved convention and are written unpermuted.
 */
import type { RopeLayout } from "@self-extend/core";
import type { Vocabulary } from "./tokenizer.js";

export type LlamaArchitecture = "llama" | "mistral" | "qwen2" | "phi3";

export const supportedArchitectures: readonly LlamaArchitecture[] = ["llama", "mistral", "qwen2", "phi3"];

export interface LlamaModelDescription {
  readonly architecture: LlamaArchitecture;
  readonly name?: string;
  readonly layerCount: number;
  readonly headCount: number;
  readonly kvHeadCount: number;
  readonly headSize: number;
  /** Width of the residual stream (GGUF `embedding_length`). */
  readonly embeddingSize: number;
  /** Width of the SwiGLU hidden layer (GGUF `feed_forward_length`). */
  readonly feedForwardSize: number;
  readonly normEpsilon: number;
  readonly vocabularySize: number;
  /** L (GGUF `context_length`). */
  readonly trainedContext: number;
  readonly ropeBase: number;
  readonly ropeLayout: RopeLayout;
  readonly rotaryDimension: number;
  /** 1 = none; positions are divided by it (GGUF `rope.scaling.factor` with type linear). */
  readonly ropeLinearScalingFactor: number;
  /**
   * Llama 3.1+ per-pair frequency divisors (GGUF tensor `rope_freqs.weight`, rotaryDimension / 2
   * values; llama.cpp's freq_factors). Absent: every factor is 1.
   */
  readonly ropeFrequencyFactors?: readonly number[];
  /** q/k/v projections carry biases (qwen2). */
  readonly hasQkvBias: boolean;
}

export interface LlamaLayerWeights {
  readonly attentionNorm: Float32Array;
  /** [headCount * headSize, embeddingSize] */
  readonly query: Float32Array;
  /** [kvHeadCount * headSize, embeddingSize] */
  readonly key: Float32Array;
  /** [kvHeadCount * headSize, embeddingSize] */
  readonly value: Float32Array;
  /** [embeddingSize, headCount * headSize] */
  readonly output: Float32Array;
  readonly queryBias?: Float32Array;
  readonly keyBias?: Float32Array;
  readonly valueBias?: Float32Array;
  readonly feedForwardNorm: Float32Array;
  /** w1: [feedForwardSize, embeddingSize] */
  readonly gate: Float32Array;
  /** w3: [feedForwardSize, embeddingSize] */
  readonly up: Float32Array;
  /** w2: [embeddingSize, feedForwardSize] */
  readonly down: Float32Array;
}

export interface LlamaWeights {
  readonly description: LlamaModelDescription;
  /** [vocabularySize, embeddingSize] */
  readonly tokenEmbedding: Float32Array;
  readonly outputNorm: Float32Array;
  /** [vocabularySize, embeddingSize]; the same array as tokenEmbedding when tied. */
  readonly output: Float32Array;
  readonly layers: readonly LlamaLayerWeights[];
  /** The file's SentencePiece vocabulary, when it has one (GGUF `tokenizer.ggml.model = "llama"`). */
  readonly vocabulary?: Vocabulary;
  /** The file's Jinja chat template (GGUF `tokenizer.chat_template`), when it has one. */
  readonly chatTemplate?: string;
}
