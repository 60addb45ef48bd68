import type { BackendCapabilitiesV1 } from "@self-extend/core";
import {
  type LlamaArchitecture,
  type LlamaModelDescription,
  supportedArchitectures,
  UnsupportedArchitectureError,
} from "@self-extend/models";

/**
 * Gemma 3's per-head query/key RMSNorms and its local layers' own RoPE base are not built here yet
 * (the reference, llama-cpp and webgpu backends run it).
 */
export const gemma3NotImplemented =
  "Gemma 3 (per-head query/key RMSNorms, a second RoPE base on local layers) is not implemented on this backend yet; the reference, llama-cpp and webgpu backends run it";

/** The architectures this backend runs: every one the models package reads but gemma3. */
export const onnxRuntimeArchitectures: readonly LlamaArchitecture[] = supportedArchitectures.filter(
  (architecture) => architecture !== "gemma3",
);

/** What the onnxruntime backend can do; sessions check their options against it. */
export const onnxRuntimeCapabilities: BackendCapabilitiesV1 = Object.freeze({
  modes: Object.freeze(["exact"] as const),
  cachePrecisions: Object.freeze(["float32"] as const),
  architectures: onnxRuntimeArchitectures,
});

/** Refuses, in one line and before any hashing or exporting, an architecture this backend does not build. */
export function requireOnnxRuntimeArchitecture(description: LlamaModelDescription, where?: string): void {
  if (!onnxRuntimeArchitectures.includes(description.architecture)) {
    throw new UnsupportedArchitectureError(
      where ?? description.name ?? "(in-memory weights)",
      description.architecture,
      onnxRuntimeArchitectures,
      description.architecture === "gemma3" ? gemma3NotImplemented : undefined,
    );
  }
}
