import type { AttentionMode, BackendCapabilitiesV1 } from "@self-extend/core";
import { supportedArchitectures } from "@self-extend/models";

export const attentionModes: readonly AttentionMode[] = ["exact", "fast-prefill", "llama.cpp-compatible"];

/** Why an architecture the model package reads is not run here. */
export const llamaCppArchitectureRefusals: Readonly<Record<string, string>> = {
  // llama.cpp has no such architecture name (Mistral GGUFs say "llama").
  mistral: "llama.cpp has no architecture named mistral (Mistral GGUFs say llama)",
  // Self-Extend moves keys by changing their cell positions; llama.cpp measures Gemma 2's local
  // window on those same positions and prunes its local cache by them, so its local layers would
  // see another window and other distances than the trained ones (the reference keeps them exact).
  gemma2:
    "Gemma 2's local layers measure their sliding window on llama.cpp's cell positions, which Self-Extend moves",
};

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
