/**
 * The reference backend: plain TypeScript, float64, exact Self-Extend. Every other adapter is
 * checked against it, so it favours being obviously right over being fast (it is still blocked and
 * allocation-free in its inner loops, because every conformance run pays for it).
 */
import {
  type BackendAvailability,
  type ModelSourceV1,
  relativePositionMap,
  type SelfExtendBackendV1,
  type SelfExtendConfig,
  specificationVersion,
  validateSelfExtendConfig,
} from "@self-extend/core";
import { loadLlamaWeights } from "@self-extend/models/node";
import { referenceCapabilities } from "./reference-capabilities.js";
import { createReferenceModel, type ReferenceModel } from "./reference-model.js";

export interface ReferenceBackend extends SelfExtendBackendV1 {
  loadModel(source: ModelSourceV1): Promise<ReferenceModel>;
}

export function createReferenceBackend(): ReferenceBackend {
  return {
    specificationVersion,
    name: "reference",
    capabilities: referenceCapabilities,
    async checkAvailability(): Promise<BackendAvailability> {
      // Pure TypeScript: wherever this module loads, it runs.
      return { available: true };
    },
    /** A GGUF file (F32, F16, BF16 and the Q4_0..Q8_0 and K-quant types are dequantised to float32) or a llama2.c checkpoint. */
    async loadModel(source: ModelSourceV1): Promise<ReferenceModel> {
      return createReferenceModel(loadLlamaWeights(source.path));
    },
    /** The forward pass rotates with core's position functions, so core's map is what it uses. */
    relativePositions(config: SelfExtendConfig, length: number): Int32Array {
      return relativePositionMap(validateSelfExtendConfig(config), length);
    },
  };
}

export { referenceCapabilities };
