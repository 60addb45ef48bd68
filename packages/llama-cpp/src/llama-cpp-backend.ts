/**
 * The v1 adapter: what the conformance suite and the CLI (`--backend llama-cpp`) drive. It is a
 * thin layer over SelfExtendContext, so tools and users run the same code.
 */
import {
  type BackendAvailability,
  type ModelSourceV1,
  type SelfExtendBackendV1,
  SelfExtendConfigError,
  specificationVersion,
} from "@self-extend/core";
import type { Llama } from "node-llama-cpp";
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
  /**
   * The node-llama-cpp runtime models are loaded with, e.g. `await getLlama({ gpu: "cuda" })`.
   * Default: one shared CPU-only runtime (`getLlama({ gpu: false })`), which is what the
   * conformance suite proves.
   */
  readonly llama?: Llama;
  /** Layers offloaded to `llama`'s GPU (node-llama-cpp's `gpuLayers`); default 0, every layer on the CPU. */
  readonly gpuLayers?: number | "max";
}

/** One check at the edge: offloading needs a runtime with a GPU. */
function validateBackendOptions(options: LlamaCppBackendOptions): void {
  const { gpuLayers, llama } = options;
  if (gpuLayers === undefined || gpuLayers === 0) return;
  if (gpuLayers !== "max" && !(Number.isInteger(gpuLayers) && gpuLayers > 0)) {
    throw new SelfExtendConfigError("gpuLayers", gpuLayers, 'must be a whole number >= 0 or "max"');
  }
  if (llama === undefined || llama.gpu === false) {
    throw new SelfExtendConfigError(
      "gpuLayers",
      gpuLayers,
      'needs a `llama` runtime with a GPU (e.g. getLlama({ gpu: "cuda" })); the default runtime is CPU-only',
    );
  }
}

export interface LlamaCppBackend extends SelfExtendBackendV1 {
  loadModel(source: ModelSourceV1): Promise<LlamaCppModel>;
}

export function createLlamaCppBackend(options: LlamaCppBackendOptions = {}): LlamaCppBackend {
  validateBackendOptions(options);
  const runtime = async (): Promise<Llama> => options.llama ?? (await getCpuLlama());
  return {
    specificationVersion,
    name: "llama-cpp",
    capabilities: llamaCppCapabilities,
    async checkAvailability(): Promise<BackendAvailability> {
      const version = installedNodeLlamaCppVersion();
      if (version !== supportedNodeLlamaCppVersion) {
        return { available: false, reason: new NodeLlamaCppVersionError(version).message };
      }
      if (options.llama !== undefined) return { available: true };
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
      const llama = await runtime();
      const llamaModel = await llama.loadModel({ modelPath: source.path, gpuLayers: options.gpuLayers ?? 0 });
      return new LlamaCppModel(info, llamaModel, options);
    },
    relativePositions: (config, length, sessionOptions) =>
      llamaCppRelativePositions(config, length, { mode: sessionOptions?.mode, threads: options.threads }),
  };
}

export { llamaCppCapabilities };
