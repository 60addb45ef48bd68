/**
 * The ONNX Runtime backend: exports a Llama-family model to an ONNX graph with exact Self-Extend
 * attention (cached on disk), then runs it with onnxruntime-node on the CPU.
 */
import {
  type BackendAvailability,
  type ModelSourceV1,
  type SelfExtendBackendV1,
  specificationVersion,
} from "@self-extend/core";
import { loadLlamaWeights } from "@self-extend/models/node";
import { hashModelFile } from "./export-cache.js";
import {
  type ImportedOnnxModel,
  isOnnxExportPath,
  loadImportedOnnxModel,
} from "./imported/imported-model.js";
import { onnxRuntimeCapabilities } from "./onnxruntime-capabilities.js";
import { loadOnnxRuntime } from "./onnxruntime-loader.js";
import { OnnxRuntimeModel, type OnnxRuntimeModelOptions } from "./onnxruntime-model.js";
import { onnxRuntimeRelativePositions } from "./onnxruntime-positions.js";

export type OnnxRuntimeBackendOptions = Omit<OnnxRuntimeModelOptions, "modelHash">;

export interface OnnxRuntimeBackend extends SelfExtendBackendV1 {
  loadModel(source: ModelSourceV1): Promise<OnnxRuntimeModel | ImportedOnnxModel>;
}

export function createOnnxRuntimeBackend(options: OnnxRuntimeBackendOptions = {}): OnnxRuntimeBackend {
  return {
    specificationVersion,
    name: "onnxruntime",
    capabilities: onnxRuntimeCapabilities,
    async checkAvailability(): Promise<BackendAvailability> {
      try {
        await loadOnnxRuntime();
        return { available: true };
      } catch (error) {
        return { available: false, reason: error instanceof Error ? error.message : String(error) };
      }
    },
    /**
     * A GGUF file (dequantised to float32), a llama2.c checkpoint, or a user's own ONNX decoder
     * export (a folder with model.onnx or onnx/model.onnx, or a .onnx file), whose attention is
     * rewritten to Self-Extend.
     */
    async loadModel(source: ModelSourceV1): Promise<OnnxRuntimeModel | ImportedOnnxModel> {
      if (isOnnxExportPath(source.path)) {
        return loadImportedOnnxModel(source.path, {
          ...(options.cacheFolder === undefined ? {} : { cacheFolder: options.cacheFolder }),
          ...(options.threads === undefined ? {} : { threads: options.threads }),
        });
      }
      // Reading the weights first turns an unreadable file or an unsupported architecture into
      // the model package's clear errors before any hashing or exporting.
      const weights = loadLlamaWeights(source.path);
      return new OnnxRuntimeModel(weights, { ...options, modelHash: hashModelFile(source.path) });
    },
    relativePositions: (config, length) => onnxRuntimeRelativePositions(config, length),
  };
}

export { onnxRuntimeCapabilities };
