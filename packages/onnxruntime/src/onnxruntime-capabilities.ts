import type { BackendCapabilitiesV1 } from "@self-extend/core";
import { supportedArchitectures } from "@self-extend/models";

/** What the onnxruntime backend can do; sessions check their options against it. */
export const onnxRuntimeCapabilities: BackendCapabilitiesV1 = Object.freeze({
  modes: Object.freeze(["exact"] as const),
  cachePrecisions: Object.freeze(["float32"] as const),
  architectures: supportedArchitectures,
});
