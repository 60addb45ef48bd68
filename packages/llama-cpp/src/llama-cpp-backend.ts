/**
 * The v1 adapter: what the conformance suite and the CLI (`--backend llama-cpp`) drive. It is a
 * thin layer over SelfExtendContext, so tools and users run the same code.
 */
import {
  type BackendAvailability,
  type BackendCapabilitiesV1,
  type ModelInfoV1,
  type ModelSourceV1,
  type SelfExtendBackendV1,
  type SelfExtendModelV1,
  type SessionOptionsV1,
  specificationVersion,
  type TokenizerV1,
} from "@self-extend/core";
import type { LlamaModel } from "node-llama-cpp";
import { llamaCppTokenizer } from "./llama-cpp-tokenizer.js";
import {
  installedNodeLlamaCppVersion,
  NodeLlamaCppVersionError,
  supportedNodeLlamaCppVersion,
} from "./node-llama-cpp-internals.js";
import {
  attentionModes,
  describeModelFile,
  getCpuLlama,
  type LlamaCppCachePrecision,
  llamaCppArchitectures,
  SelfExtendContext,
  validateContextOptions,
} from "./self-extend-context.js";

export const llamaCppCapabilities: BackendCapabilitiesV1 = Object.freeze({
  modes: attentionModes,
  cachePrecisions: Object.freeze(["float32", "float16"] as const),
  architectures: llamaCppArchitectures,
});

export interface LlamaCppBackendOptions {
  /** CPU threads per context (default: all available). */
  readonly threads?: number;
}

/** Session options of this backend: the v1 options plus tuning knobs of its own. */
export interface LlamaCppSessionOptions extends SessionOptionsV1 {
  readonly threads?: number;
  readonly batchSize?: number;
  readonly prefillChunkSize?: number;
  readonly llamaCppBatchSize?: number;
}

export class LlamaCppModel implements SelfExtendModelV1 {
  /** llama.cpp's tokenizer for this model (node-llama-cpp's tokenize and detokenize). */
  readonly tokenizer: TokenizerV1;
  private disposed = false;

  constructor(
    readonly info: ModelInfoV1,
    /** The node-llama-cpp model, for users who want its other APIs too. */
    readonly llamaModel: LlamaModel,
    private readonly backendOptions: LlamaCppBackendOptions,
  ) {
    this.tokenizer = llamaCppTokenizer(llamaModel);
  }

  async createSession(options: LlamaCppSessionOptions): Promise<SelfExtendContext> {
    if (this.disposed) throw new Error("the model was disposed");
    validateContextOptions(options);
    return SelfExtendContext.create({
      model: this.llamaModel,
      groupSize: options.selfExtend?.groupSize,
      neighborWindow: options.selfExtend?.neighborWindow,
      contextSize: options.contextSize,
      mode: options.mode,
      cachePrecision: options.cachePrecision as LlamaCppCachePrecision | undefined,
      threads: options.threads ?? this.backendOptions.threads,
      batchSize: options.batchSize,
      prefillChunkSize: options.prefillChunkSize,
      llamaCppBatchSize: options.llamaCppBatchSize,
    });
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.llamaModel.dispose();
  }
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
  };
}
