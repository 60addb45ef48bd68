import type { AttentionMode, BackendCapabilitiesV1 } from "@self-extend/core";
import { supportedArchitectures } from "@self-extend/models";

export const attentionModes: readonly AttentionMode[] = ["exact", "fast-prefill", "llama.cpp-compatible"];

/**
 * Architectures with one RoPE position per token (llama.cpp's seq_div and our key moves need
 * that) which this adapter was tested on. "mistral" is not here: llama.cpp has no such
 * architecture name (Mistral GGUFs say "llama"), so a file that says "mistral" cannot load.
 */
export const llamaCppArchitectures: readonly string[] = supportedArchitectures.filter(
  (architecture) => architecture !== "mistral",
);

/** What the llama-cpp backend can do; sessions check their options against it. */
export const llamaCppCapabilities: BackendCapabilitiesV1 = Object.freeze({
  modes: attentionModes,
  cachePrecisions: Object.freeze(["float32", "float16"] as const),
  architectures: llamaCppArchitectures,
});
