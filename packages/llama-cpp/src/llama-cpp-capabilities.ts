import {
  type AttentionMode,
  type BackendCapabilitiesV1,
  type SelfExtendConfig,
  SelfExtendConfigError,
} from "@self-extend/core";
import { supportedArchitectures } from "@self-extend/models";

export const attentionModes: readonly AttentionMode[] = ["exact", "fast-prefill", "llama.cpp-compatible"];

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
