/**
 * A model opened by the v1 backend: a node-llama-cpp model whose sessions are SelfExtendContexts,
 * so tools and users run the same code.
 */
import type { ModelInfoV1, SelfExtendModelV1, SessionOptionsV1, TokenizerV1 } from "@self-extend/core";
import { SessionDisposedError } from "@self-extend/core";
import type { LlamaModel } from "node-llama-cpp";
import type { LlamaCppBackendOptions } from "./llama-cpp-backend.js";
import { type LlamaCppCachePrecision, SelfExtendContext } from "./llama-cpp-session.js";
import { llamaCppTokenizer } from "./llama-cpp-tokenizer.js";

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
    if (this.disposed) throw new SessionDisposedError("model");
    // SelfExtendContext.create validates every option, once.
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
