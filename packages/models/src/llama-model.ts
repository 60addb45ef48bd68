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
import type { RopeLayout, RopeOptions } from "@self-extend/core";
import type { Vocabulary } from "./tokenizer.js";

export type LlamaArchitecture = "llama" | "mistral" | "qwen2" | "phi3" | "gemma" | "gemma2" | "gemma3";

export const supportedArchitectures: readonly LlamaArchitecture[] = [
  "llama",
  "mistral",
  "qwen2",
  "phi3",
  "gemma",
  "gemma2",
  "gemma3",
];

/**
 * Gemma 2's local layers: query i sees only keys j with i - j < size. Every distance such a layer
 * sees is below its window, which is at most the trained context, so Self-Extend leaves these
 * layers as trained (exact positions, window mask) and extends only the global layers.
 */
export interface SlidingWindow {
  readonly size: number;
  /** localLayers[l] is true for the sliding-window layers (llama.cpp's swa pattern). */
  readonly localLayers: readonly boolean[];
  /**
   * The local layers' own RoPE base (Gemma 3: `rope.freq_base_swa`, 10000), used without the
   * model's linear scaling or frequency factors, which belong to its global layers (llama.cpp's
   * rope_freq_base_train_swa / rope_freq_scale_train_swa = 1). Absent: local layers rotate as global ones.
   */
  readonly ropeBase?: number;
}

export interface LlamaModelDescription {
  readonly architecture: LlamaArchitecture;
  readonly name?: string;
  readonly layerCount: number;
  readonly headCount: number;
  readonly kvHeadCount: number;
  readonly headSize: number;
  /** Width of the residual stream (GGUF `embedding_length`). */
  readonly embeddingSize: number;
  /** Width of the gated feed-forward hidden layer (GGUF `feed_forward_length`). */
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
  /**
   * LongRoPE (Phi-3-mini-128k, Phi-3.5-mini): two sets of per-pair frequency divisors, chosen by the
   * session's context size as llama.cpp does (`globalRopeOptions`); absent for every other file.
   * Its attention factor is folded into `attentionScale`.
   */
  readonly longRope?: LongRope;
  /** q/k/v projections carry biases (qwen2). */
  readonly hasQkvBias: boolean;
  /**
   * Gemma's departures from Llama; each is absent (the Llama behaviour) for other architectures.
   * Token embeddings are multiplied by this (Gemma: sqrt(embeddingSize) in float32, as llama.cpp).
   */
  readonly embeddingScale?: number;
  /** The gate's activation: SiLU (SwiGLU, the default) or tanh-approximated GELU (Gemma's GeGLU). */
  readonly feedForwardActivation?: "silu" | "gelu-tanh";
  /** Attention score scale; 1/sqrt(headSize) when absent (Gemma 2 27B: 1/sqrt(embeddingSize/headCount)). */
  readonly attentionScale?: number;
  /** Scores become cap * tanh(score / cap) after scaling, before the mask (Gemma 2). */
  readonly attentionLogitSoftCap?: number;
  /** Logits become cap * tanh(logit / cap) (Gemma 2). */
  readonly finalLogitSoftCap?: number;
  /** RMSNorms after the attention and the feed-forward block, before each residual add (Gemma 2). */
  readonly hasPostNorms?: boolean;
  /**
   * An RMSNorm over each query and key head (weights of headSize values, shared by the heads),
   * after the projections and before RoPE (Gemma 3: `attn_q_norm`, `attn_k_norm`).
   */
  readonly hasQueryKeyNorms?: boolean;
  readonly slidingWindow?: SlidingWindow;
}

/**
 * LongRoPE's factors (GGUF tensors `rope_factors_short.weight` / `rope_factors_long.weight`, keys
 * `rope.scaling.original_context_length` and `rope.scaling.attn_factor`). A session whose context
 * is longer than `originalContext` rotates with the long factors, any other with the short ones
 * (llama.cpp: n_ctx_seq > n_ctx_orig_yarn; transformers picks by the sequence's length instead).
 * Self-Extend picks positions, never frequencies: both of its levels rotate with the same factors.
 */
export interface LongRope {
  readonly originalContext: number;
  /** rotaryDimension / 2 divisors each. */
  readonly shortFactors: readonly number[];
  readonly longFactors: readonly number[];
  /**
   * cos and sin are multiplied by it (sqrt(1 + ln(L / original) / ln(original)) from the converter),
   * so every score by its square: with every dimension rotated, the same as `attentionScale` times
   * its square, which is how the backends apply it.
   */
  readonly attentionFactor: number;
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
  /** Gemma 2 (description.hasPostNorms): RMSNorm of the attention output before the residual add. */
  readonly postAttentionNorm?: Float32Array;
  /** Gemma 2: RMSNorm of the feed-forward output before the residual add. */
  readonly postFeedForwardNorm?: Float32Array;
  /** Gemma 3 (description.hasQueryKeyNorms): [headSize] RMSNorm weights of every query head. */
  readonly queryNorm?: Float32Array;
  /** Gemma 3: [headSize] RMSNorm weights of every key head. */
  readonly keyNorm?: Float32Array;
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

/**
 * The RoPE of the model's global (Self-Extend) layers for a session of `contextSize` tokens: base,
 * linear scaling, and the per-pair factors, which LongRoPE files choose by the context size.
 * Every backend builds its global RoPE table from this.
 */
export function globalRopeOptions(description: LlamaModelDescription, contextSize: number): RopeOptions {
  const { longRope } = description;
  const frequencyFactors =
    longRope === undefined
      ? description.ropeFrequencyFactors
      : contextSize > longRope.originalContext
        ? longRope.longFactors
        : longRope.shortFactors;
  return {
    layout: description.ropeLayout,
    headSize: description.headSize,
    rotaryDimension: description.rotaryDimension,
    base: description.ropeBase,
    linearScalingFactor: description.ropeLinearScalingFactor,
    ...(frequencyFactors === undefined ? {} : { frequencyFactors }),
  };
}
