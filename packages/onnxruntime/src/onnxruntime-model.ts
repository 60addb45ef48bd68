/**
 * A model opened on ONNX Runtime: its weights, its content hash (the export cache key) and one
 * InferenceSession per export, shared by every session that uses the same attention settings
 * (ONNX Runtime sessions are safe to run concurrently; each of our sessions owns its KV cache).
 */
import { type ModelInfoV1, type SelfExtendModelV1, SessionDisposedError } from "@self-extend/core";
import {
  createTokenizer,
  type LlamaWeights,
  modelInfoFromDescription,
  type Tokenizer,
} from "@self-extend/models";
import type { DecoderAttention } from "./decoder-export.js";
import {
  defaultExportCacheFolder,
  type ExportLocation,
  ensureDecoderExport,
  exportKey,
  hashModelWeights,
} from "./export-cache.js";
import { InferenceSessionCache } from "./inference-session-cache.js";
import { loadOnnxRuntime } from "./onnxruntime-loader.js";
import {
  attentionGraphOf,
  expandedRopeTable,
  OnnxRuntimeSession,
  type OnnxRuntimeSessionOptions,
  validateOnnxRuntimeSessionOptions,
} from "./onnxruntime-session.js";

export interface OnnxRuntimeModelOptions {
  /** Where exports are cached; see defaultExportCacheFolder(). */
  readonly cacheFolder?: string;
  /** ONNX Runtime intra-op threads per run. Default: ONNX Runtime's own choice. */
  readonly threads?: number;
  /** SHA-256 of the model file; computed from the weights when absent. */
  readonly modelHash?: string;
}

export class OnnxRuntimeModel implements SelfExtendModelV1 {
  readonly info: ModelInfoV1;
  /** The GGUF file's vocabulary; undefined for llama2.c checkpoints and generated weights. */
  readonly tokenizer: Tokenizer | undefined;
  /** The GGUF file's `tokenizer.chat_template`, when it has one. */
  readonly chatTemplate: string | undefined;
  readonly cacheFolder: string;
  readonly modelHash: string;
  private readonly inferenceSessions: InferenceSessionCache;
  /** Exports verified by this model, so each setting is hashed once per model, not per session. */
  private readonly locations = new Map<string, ExportLocation>();
  private disposed = false;

  constructor(
    readonly weights: LlamaWeights,
    modelOptions: OnnxRuntimeModelOptions = {},
  ) {
    this.info = modelInfoFromDescription(weights.description);
    this.tokenizer = weights.vocabulary === undefined ? undefined : createTokenizer(weights.vocabulary);
    this.chatTemplate = weights.chatTemplate;
    this.cacheFolder = modelOptions.cacheFolder ?? defaultExportCacheFolder();
    this.modelHash = modelOptions.modelHash ?? hashModelWeights(weights);
    this.inferenceSessions = new InferenceSessionCache(modelOptions.threads);
  }

  /** Writes (or finds) the export for these attention settings in the cache. */
  ensureExport(attention: DecoderAttention): ExportLocation {
    const key = exportKey(this.modelHash, attention);
    const known = this.locations.get(key);
    if (known !== undefined) return known;
    const location = ensureDecoderExport({
      cacheFolder: this.cacheFolder,
      modelHash: this.modelHash,
      attention,
      weights: () => this.weights,
    });
    this.locations.set(key, location);
    return location;
  }

  async createSession(options: OnnxRuntimeSessionOptions): Promise<OnnxRuntimeSession> {
    if (this.disposed) throw new SessionDisposedError("model");
    const config = validateOnnxRuntimeSessionOptions(options, this.info.trainedContext);
    const attention: DecoderAttention =
      attentionGraphOf(options, config) === "plain"
        ? { kind: "plain" }
        : { kind: "self-extend", selfExtend: config };
    const runtime = await loadOnnxRuntime();
    const location = this.ensureExport(attention);
    // A graph that fails to open is verified again next time (it may have been damaged on disk).
    const inference = this.inferenceSessions.open(runtime, location.modelPath, () =>
      this.locations.delete(exportKey(this.modelHash, attention)),
    );
    const { description } = this.weights;
    return new OnnxRuntimeSession(runtime, await inference, description, options, config, (count) =>
      expandedRopeTable(description, count, options.contextSize),
    );
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await this.inferenceSessions.releaseAll();
  }
}

/** Opens weights already in memory (a generated test model, weights read by other code). */
export function createOnnxRuntimeModel(
  weights: LlamaWeights,
  options: OnnxRuntimeModelOptions = {},
): OnnxRuntimeModel {
  return new OnnxRuntimeModel(weights, options);
}
