import {
  type AttentionMode,
  attentionModes,
  type BackendCapabilitiesV1,
  type SelfExtendConfig,
  SelfExtendConfigError,
} from "@self-extend/core";
import { supportedArchitectures } from "@self-extend/models";

// This adapter runs every mode of spec v1 (kept exported from here, as before).
export { attentionModes };

/** Why an architecture the model package reads is not run here. */
export const llamaCppArchitectureRefusals: Readonly<Record<string, string>> = {
  // llama.cpp has no such architecture name (Mistral GGUFs say "llama").
  mistral: "llama.cpp has no architecture named mistral (Mistral GGUFs say llama)",
};

/**
 * Sliding-window models (Gemma 2 and 3) run here only when the neighbor window covers the sliding
 * window: W >= S (or G = 1), in exact and fast-prefill modes.
 *
 * llama.cpp measures a local layer's window on cell positions, the same positions our key moves
 * change: it masks a key when (query position - key position) >= S, and reuses the local cache's
 * cells by that same test. In exact mode every key within W of the query sits at its exact
 * distance, and every older key at floor(i/G) - floor(j/G) + W - W/G >= W (W is a multiple of G).
 * So with W >= S the local layers see exactly the keys i - j < S at exact distances, and every
 * key they drop stays dropped for all later queries (distances only grow). fast-prefill's chunks
 * keep the neighbor block and the chunk contiguous, so the same holds there. With W < S the keys
 * at distances W..S-1 would reach the local layers at group distances, or not at all; and
 * llama.cpp-compatible mode divides the positions inside the window, so both are refused.
 */
export function requireSlidingWindowCovered(
  slidingWindow: number | undefined,
  config: SelfExtendConfig,
  mode: AttentionMode,
): void {
  if (slidingWindow === undefined || config.groupSize === 1) return;
  if (mode === "llama.cpp-compatible") {
    throw new SelfExtendConfigError(
      "mode",
      mode,
      `the model has sliding-window layers (window ${slidingWindow}), whose window llama.cpp measures on the positions llama.cpp's group attention divides; use mode "exact" or "fast-prefill" with neighborWindow >= ${slidingWindow}`,
    );
  }
  if (config.neighborWindow < slidingWindow) {
    throw new SelfExtendConfigError(
      "neighborWindow",
      config.neighborWindow,
      `must be >= the model's sliding window (${slidingWindow}) on llama.cpp when groupSize > 1: llama.cpp measures the local layers' window on cell positions, which Self-Extend keeps exact only within W`,
    );
  }
}

/**
 * LongRoPE files (Phi-3-mini-128k, Phi-3.5-mini) run here where llama.cpp computes what the other
 * backends do; two cases are refused.
 *
 * - Its attention factor (`rope.scaling.attn_factor`, 1.18 for Phi-3-mini-128k) with G > 1.
 *   llama.cpp multiplies cos and sin by it in every RoPE, its K-shift included
 *   (llama_kv_cache::build_rope_shift passes yarn_attn_factor), so each move of a key multiplies
 *   the key by the factor again. Self-Extend moves keys (every token in exact mode); the keys grow
 *   geometrically (measured: log-probabilities 7.4 off the oracle, then NaN). With factor 1, or at
 *   G = 1 (no key ever moves), llama.cpp matches.
 * - A context at most the original context that llama.cpp pads past it. llama.cpp picks the long
 *   factors when its context (padded up to a multiple of 256) exceeds the original context; the
 *   other backends and transformers pick them by the context (the sequence) itself. Released
 *   LongRoPE models have original contexts that are multiples of 256 (4096), where the two agree.
 */
export function requireLongRopeSupported(
  longRope: { readonly originalContext: number; readonly attentionFactor: number } | undefined,
  config: SelfExtendConfig,
  contextSize: number,
): void {
  if (longRope === undefined) return;
  if (config.groupSize > 1 && longRope.attentionFactor !== 1) {
    throw new SelfExtendConfigError(
      "groupSize",
      config.groupSize,
      `must be 1 for this LongRoPE model on llama.cpp: its attention factor ${longRope.attentionFactor} (rope.scaling.attn_factor) is applied again by every K-shift, and Self-Extend shifts keys`,
    );
  }
  const llamaCppContext = Math.ceil(contextSize / 256) * 256;
  if (contextSize <= longRope.originalContext && llamaCppContext > longRope.originalContext) {
    const largestAgreeing = Math.floor(longRope.originalContext / 256) * 256;
    throw new SelfExtendConfigError(
      "contextSize",
      contextSize,
      `must be above this LongRoPE model's original context (${longRope.originalContext})${largestAgreeing > 0 ? ` or at most ${largestAgreeing}` : ""} on llama.cpp: llama.cpp pads its context to ${llamaCppContext} and would rotate with the long factors where the other backends use the short ones`,
    );
  }
}

/**
 * Architectures with one RoPE position per token (llama.cpp's seq_div and our key moves need
 * that) which this adapter was tested on.
 */
export const llamaCppArchitectures: readonly string[] = supportedArchitectures.filter(
  (architecture) => llamaCppArchitectureRefusals[architecture] === undefined,
);

/** What the llama-cpp backend can do; sessions check their options against it. */
export const llamaCppCapabilities: BackendCapabilitiesV1 = Object.freeze({
  modes: attentionModes,
  cachePrecisions: Object.freeze(["float32", "float16"] as const),
  architectures: llamaCppArchitectures,
});
