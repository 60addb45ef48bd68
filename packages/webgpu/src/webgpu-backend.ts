/**
 * The WebGPU backend (spec v1, name "webgpu"): GGUF files (a path in Node, bytes or a URL
 * anywhere) load through @self-extend/models (quantised tensors are dequantised to float32 there),
 * weights are uploaded once per model, and every session owns its KV cache and work buffers on
 * the same device.
 */
import { type BackendAvailability, type SelfExtendBackendV1, specificationVersion } from "@self-extend/core";
import type { LlamaWeights } from "@self-extend/models";
import { type RequestWebGpuDeviceOptions, requestWebGpuDevice, type WebGpuContext } from "./device.js";
import type { MatmulKernel, WeightPrecision } from "./forward-pass.wgsl.js";
import { readModelWeights, type WebGpuModelSource } from "./model-source.js";
import { webGpuRelativePositions } from "./self-extend-positions.js";
import { webGpuCapabilities } from "./webgpu-capabilities.js";
import { type GroupKeySource, WebGpuModel, type WebGpuModelOptions } from "./webgpu-model.js";

export interface WebGpuBackendOptions {
  /** How to get the device; or pass `context` to share one you already have. */
  readonly device?: RequestWebGpuDeviceOptions;
  readonly context?: WebGpuContext;
  /** The default of every model's {@link WebGpuModelOptions.weightPrecision}. */
  readonly weightPrecision?: WeightPrecision;
  /** The default of every model's {@link WebGpuModelOptions.matmulKernel}. */
  readonly matmulKernel?: MatmulKernel;
  /** The default of every model's {@link WebGpuModelOptions.groupKeys}. */
  readonly groupKeys?: GroupKeySource;
}

export interface WebGpuBackend extends SelfExtendBackendV1 {
  /**
   * `{ path }` (Node: GGUF or llama2.c checkpoint), or a GGUF as `{ bytes }` or `{ url }` (fetched),
   * which is how a browser loads one.
   */
  loadModel(source: WebGpuModelSource, options?: WebGpuModelOptions): Promise<WebGpuModel>;
  /** Opens weights already in memory (generated test models, weights read by other code). */
  createModel(weights: LlamaWeights, options?: WebGpuModelOptions): Promise<WebGpuModel>;
  /** The device all models of this backend share (requested on first use). */
  getContext(): Promise<WebGpuContext>;
}

export function createWebGpuBackend(options: WebGpuBackendOptions = {}): WebGpuBackend {
  let context: Promise<WebGpuContext> | undefined = options.context
    ? Promise.resolve(options.context)
    : undefined;
  const getContext = (): Promise<WebGpuContext> => {
    context ??= requestWebGpuDevice(options.device).catch((error) => {
      context = undefined; // let a later call retry
      throw error;
    });
    return context;
  };
  const withDefaults = (modelOptions: WebGpuModelOptions): WebGpuModelOptions => ({
    weightPrecision: modelOptions.weightPrecision ?? options.weightPrecision,
    matmulKernel: modelOptions.matmulKernel ?? options.matmulKernel,
    groupKeys: modelOptions.groupKeys ?? options.groupKeys,
  });
  return {
    specificationVersion,
    name: "webgpu",
    capabilities: webGpuCapabilities,
    async checkAvailability(): Promise<BackendAvailability> {
      try {
        await getContext();
        return { available: true };
      } catch (error) {
        return { available: false, reason: (error as Error).message };
      }
    },
    async loadModel(source: WebGpuModelSource, modelOptions: WebGpuModelOptions = {}): Promise<WebGpuModel> {
      const context = await getContext();
      return WebGpuModel.create(context, await readModelWeights(source), withDefaults(modelOptions));
    },
    async createModel(weights: LlamaWeights, modelOptions: WebGpuModelOptions = {}): Promise<WebGpuModel> {
      return WebGpuModel.create(await getContext(), weights, withDefaults(modelOptions));
    },
    getContext,
    relativePositions: async (config, length) => webGpuRelativePositions(await getContext(), config, length),
  };
}
