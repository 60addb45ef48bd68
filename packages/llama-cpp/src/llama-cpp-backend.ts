/**
 * The v1 adapter: what the conformance suite and the CLI (`--backend llama-cpp`) drive. It is a
 * thin layer over SelfExtendContext, so tools and users run the same code.
 */
import {
  type BackendAvailability,
  type ModelSourceV1,
  type SelfExtendBackendV1,
  specificationVersion,
} from "@self-extend/core";
import { llamaCppCapabilities } from "./llama-cpp-capabilities.js";
import { LlamaCppModel } from "./llama-cpp-model.js";
import { llamaCppRelativePositions } from "./llama-cpp-positions.js";
import { describeModelFile, getCpuLlama } from "./llama-cpp-session.js";
import {
  installedNodeLlamaCppVersion,
  NodeLlamaCppVersionError,
  supportedNodeLlamaCppVersion,
} from "./node-llama-cpp-internals.js";

export interface LlamaCppBackendOptions {
  /** CPU threads per context (default: all available). */
  readonly threads?: number;
}

export interface LlamaCppBackend extends SelfExtendBackendV1 {
  loadModel(source: ModelSourceV1): Promise<LlamaCppModel>;
}

export function createLlamaCppBackend(options: LlamaCppBackendOptions = {}): LlamaCppBackend {
  return {
    specificationVersion,
    name: "llama-cpp",
    capabilities: llamaCppCapabilities,
    async checkAvailability(): Promise<BackendAvailability> {
      const version = installedNodeLlamaCppVersion();
      if (version !== supportedNodeLlamaCppVersion) {
        return { available: false, reason: new NodeLlamaCppVersionError(version).message };
      }
      try {
        await getCpuLlama();
        return { available: true };
      } catch (error) {
        return {
          available: false,
          reason: `node-llama-cpp ${version} could not start its CPU build: ${(error as Error).message}`,
        };
      }
    },
    async loadModel(source: ModelSourceV1): Promise<LlamaCppModel> {
      // Header first: unsupported architectures fail before weights are read.
      const info = describeModelFile(source.path);
      const llama = await getCpuLlama();
      const llamaModel = await llama.loadModel({ modelPath: source.path, gpuLayers: 0 });
      return new LlamaCppModel(info, llamaModel, options);
    },
    relativePositions: (config, length, sessionOptions) =>
      llamaCppRelativePositions(config, length, { mode: sessionOptions?.mode, threads: options.threads }),
  };
}

export { llamaCppCapabilities };
