/**
 * The user-facing object: one Self-Extend sequence on a node-llama-cpp model. It is also a v1
 * session, so the conformance suite and the CLI drive the very same code users call.
 *
 * Logits: node-llama-cpp exposes no raw logits. With the package's native bridge (see
 * native-bridge.ts; built on first use) rows are the model's raw float32 logits, read with llama_get_logits_ith on
 * node-llama-cpp's own context. Without it they are LOG-SOFTMAX values from node-llama-cpp's
 * sampler (logits minus a per-row constant; probabilities that underflow float32 come back as
 * -Infinity). `logitKind` says which.
 */
import { availableParallelism } from "node:os";
import {
  type AttentionMode,
  assertSessionLength,
  assertTokensInVocabulary,
  type CachePrecision,
  type EvaluateOptionsV1,
  type EvaluationV1,
  type GenerateOptions,
  generateTokens,
  largestUsableContext,
  type ModelInfoV1,
  planSelfExtend,
  resolveLogitSelection,
  type SelfExtendConfig,
  SelfExtendConfigError,
  type SelfExtendSessionV1,
  SessionLifecycle,
  type SessionOptionsV1,
  smallestWindowForSlidingWindow,
  validateBackendSettings,
  validateSelfExtendConfig,
  validateSessionForModel,
} from "@self-extend/core";
import type { LongRope } from "@self-extend/models";
import { describeLlamaModel, modelInfoFromDescription, readGguf } from "@self-extend/models/node";
import type { Llama, LlamaContext, LlamaModel, Token } from "node-llama-cpp";
import { ExactScheduler } from "./exact-scheduler.js";
import { FastPrefillScheduler } from "./fast-prefill-scheduler.js";
import {
  llamaCppArchitectureRefusals,
  llamaCppArchitectures,
  llamaCppCapabilities,
  requireLongRopeSupported,
  requireSlidingWindowCovered,
} from "./llama-cpp-capabilities.js";
import { LlamaCppCompatibleScheduler } from "./llama-cpp-compatible-scheduler.js";
import { NativeBridgeUnavailableError, prepareNativeBridge, requireNativeBridge } from "./native-bridge.js";
import { assertSupportedNodeLlamaCpp, modelPathOf, NativeSequence } from "./node-llama-cpp-internals.js";
import type { PositionScheduler } from "./position-scheduler.js";

export type LlamaCppCachePrecision = "float32" | "float16";

/**
 * Default CPU threads: all cores but one, at most 4. llama.cpp's worker threads spin while they
 * wait; on a loaded 2-core machine 2 threads made a tiny model ~150x slower than 1.
 */
export function defaultThreadCount(): number {
  return Math.max(1, Math.min(4, availableParallelism() - 1));
}

export interface SelfExtendContextOptions {
  /** A model loaded with node-llama-cpp, or a GGUF path (loaded on CPU; disposed with the context). */
  readonly model: LlamaModel | string;
  /** G. With `neighborWindow`; or give `targetContext` and let core's planner choose both. */
  readonly groupSize?: number;
  /** W, a multiple of G. */
  readonly neighborWindow?: number;
  /** N the context must reach; used by the planner when G and W are not given. */
  readonly targetContext?: number;
  /** Tokens the context holds; defaults to targetContext, else (L - W) * G + W. */
  readonly contextSize?: number;
  /** Default "exact". */
  readonly mode?: AttentionMode;
  /** KV cache storage, default "float32": float16 keys are re-rounded at every move (see README). */
  readonly cachePrecision?: LlamaCppCachePrecision;
  /** CPU threads; default {@link defaultThreadCount}. llama.cpp's own default was ~100x slower here. */
  readonly threads?: number;
  /** Tokens per llama_decode (llama.cpp's n_batch); default min(contextSize, 512). */
  readonly batchSize?: number;
  /**
   * fast-prefill: tokens per batched prefill step (default G). Largest position error
   * C - 1 - floor((C-1)/G); on stories260K C = G kept 99.94% argmax agreement, C = W/4 99.4%.
   */
  readonly prefillChunkSize?: number;
  /** llama.cpp-compatible: llama-completion's `--batch-size` (default 2048, capped by contextSize). */
  readonly llamaCppBatchSize?: number;
  /** Only when `model` is a path: an existing `Llama` from getLlama (default getLlama({gpu: false})). */
  readonly llama?: Llama;
}

/** Generation options; `maxTokens` bounds the new tokens. */
export type GenerateTextOptions = GenerateOptions;

interface ResolvedModel {
  readonly model: LlamaModel;
  readonly ownsModel: boolean;
  readonly info: ModelInfoV1;
}

async function loadModelOnCpu(path: string, llama: Llama | undefined): Promise<LlamaModel> {
  const runtime = llama ?? (await getCpuLlama());
  return runtime.loadModel({ modelPath: path, gpuLayers: 0 });
}

let sharedCpuLlama: Promise<Llama> | undefined;

/** One CPU-only Llama per process: getLlama() may otherwise pick a GPU build with no device. */
export function getCpuLlama(): Promise<Llama> {
  assertSupportedNodeLlamaCpp();
  sharedCpuLlama ??= import("node-llama-cpp")
    .then(({ getLlama, LlamaLogLevel }) =>
      // "error": llama.cpp warns about every context larger than the trained one, which is the point here.
      getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error }),
    )
    .catch((error: unknown) => {
      // Let a later call try again instead of caching the failure.
      sharedCpuLlama = undefined;
      throw error;
    });
  return sharedCpuLlama;
}

/**
 * Reads the model description from the GGUF header (cheap: no tensor data) and rejects
 * architectures we cannot move keys for, before any weights are loaded.
 */
export function describeModelFile(path: string): ModelInfoV1 {
  return readModelHeader(path).info;
}

/**
 * What the session needs from the header: the v1 model info, the local layers' window and the
 * LongRoPE settings, if any.
 */
interface ModelHeader {
  readonly info: ModelInfoV1;
  readonly slidingWindow?: number;
  readonly longRope?: LongRope;
}

function readModelHeader(path: string): ModelHeader {
  const gguf = readGguf(path);
  try {
    const description = describeLlamaModel(gguf, path);
    requireSupportedArchitecture(description.architecture, path);
    return {
      info: modelInfoFromDescription(description),
      slidingWindow: description.slidingWindow?.size,
      longRope: description.longRope,
    };
  } finally {
    gguf.close();
  }
}

function requireSupportedArchitecture(architecture: string, where: string): void {
  if (!llamaCppArchitectures.includes(architecture)) {
    throw new SelfExtendConfigError(
      "architecture",
      architecture,
      `${where}: ${llamaCppArchitectureRefusals[architecture] ?? "one RoPE position per token is needed; M-RoPE and other position schemes cannot be moved exactly"}; Self-Extend on llama.cpp supports ${llamaCppArchitectures.join(", ")}`,
    );
  }
}

/** The model's description from its GGUF header (cheap), before any weights are loaded. */
function describeModelOption(model: LlamaModel | string): ModelHeader {
  if (typeof model === "string") return readModelHeader(model);
  const path = modelPathOf(model);
  if (path === undefined) {
    throw new SelfExtendConfigError(
      "model",
      model.filename ?? "<LlamaModel>",
      "must be a LlamaModel loaded from a GGUF file",
    );
  }
  return readModelHeader(path);
}

async function resolveModel(options: SelfExtendContextOptions, info: ModelInfoV1): Promise<ResolvedModel> {
  if (typeof options.model === "string") {
    const model = await loadModelOnCpu(options.model, options.llama);
    return { model, ownsModel: true, info };
  }
  return { model: options.model, ownsModel: false, info };
}

/** An explicit (G, W), checked without the model; undefined when the planner is to choose. */
function explicitConfig(options: SelfExtendContextOptions): SelfExtendConfig | undefined {
  if (options.groupSize !== undefined || options.neighborWindow !== undefined) {
    if (options.groupSize === undefined || options.neighborWindow === undefined) {
      throw new SelfExtendConfigError(
        options.groupSize === undefined ? "groupSize" : "neighborWindow",
        undefined,
        "groupSize and neighborWindow go together (or give targetContext alone)",
      );
    }
    return validateSelfExtendConfig({ groupSize: options.groupSize, neighborWindow: options.neighborWindow });
  }
  if (options.targetContext !== undefined) return undefined;
  throw new SelfExtendConfigError(
    "groupSize",
    undefined,
    "give groupSize and neighborWindow, or targetContext for the planner",
  );
}

function requirePositiveInteger(field: string, value: number | undefined): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) {
    throw new SelfExtendConfigError(field, value, "must be an integer >= 1");
  }
}

/** Validates everything that does not need the model; shared by the friendly API and the backend. */
export function validateContextOptions(options: {
  readonly mode?: AttentionMode;
  readonly cachePrecision?: CachePrecision;
  readonly contextSize?: number;
  readonly threads?: number;
  readonly batchSize?: number;
  readonly prefillChunkSize?: number;
  readonly llamaCppBatchSize?: number;
}): void {
  validateBackendSettings(options, llamaCppCapabilities, "llama-cpp");
  requirePositiveInteger("contextSize", options.contextSize);
  requirePositiveInteger("threads", options.threads);
  requirePositiveInteger("batchSize", options.batchSize);
  requirePositiveInteger("prefillChunkSize", options.prefillChunkSize);
  requirePositiveInteger("llamaCppBatchSize", options.llamaCppBatchSize);
}

export class SelfExtendContext implements SelfExtendSessionV1 {
  readonly options: SessionOptionsV1;
  readonly config: SelfExtendConfig;
  readonly mode: AttentionMode;
  /** L, from the model file. */
  readonly trainedContext: number;
  /** (L - W) * G + W, or unbounded by Self-Extend when G = 1 (contextSize still applies). */
  readonly largestUsableContext: number;
  /**
   * What evaluate/decode return: raw `logits` (native bridge built) or `log-softmax` values
   * (node-llama-cpp's sampler; see the file comment).
   */
  get logitKind(): "logits" | "log-softmax" {
    return this.sequence.rawLogits ? "logits" : "log-softmax";
  }
  private readonly scheduler: PositionScheduler;
  /** Every token evaluated since the last reset, in order (for prefix reuse by the chat session). */
  private readonly evaluated: number[] = [];
  /** The length of every evaluate call's block since the last reset (to replay them on rollback). */
  private readonly blockLengths: number[] = [];
  /** Set when a rollback could not restore the cache; cleared by reset(). */
  private lostState: string | undefined;
  private readonly lifecycle = new SessionLifecycle();
  private readonly cacheBytesPerCell: number;

  /**
   * Bytes of llama.cpp's KV cache as it allocates it: one key and one value row per layer for each
   * of the context's cells (n_ctx, which llama.cpp may round up). Self-Extend keeps no second copy:
   * it moves cells' positions instead.
   */
  get cacheBytes(): number {
    return this.context.contextSize * this.cacheBytesPerCell;
  }

  private constructor(
    readonly model: LlamaModel,
    private readonly ownsModel: boolean,
    readonly context: LlamaContext,
    private readonly sequence: NativeSequence,
    resolved: {
      config: SelfExtendConfig;
      mode: AttentionMode;
      contextSize: number;
      cachePrecision: LlamaCppCachePrecision;
      trainedContext: number;
      vocabularySize: number;
      prefillChunkSize: number;
      llamaCppBatchSize: number;
      cacheBytesPerCell: number;
    },
  ) {
    this.cacheBytesPerCell = resolved.cacheBytesPerCell;
    this.config = resolved.config;
    this.mode = resolved.mode;
    this.trainedContext = resolved.trainedContext;
    this.vocabularySize = resolved.vocabularySize;
    this.largestUsableContext =
      this.config.groupSize === 1
        ? Number.POSITIVE_INFINITY
        : largestUsableContext(resolved.trainedContext, this.config);
    this.options = Object.freeze({
      selfExtend: this.config,
      contextSize: resolved.contextSize,
      mode: resolved.mode,
      cachePrecision: resolved.cachePrecision,
    });
    const vocabulary = resolved.vocabularySize;
    this.scheduler =
      resolved.mode === "llama.cpp-compatible"
        ? new LlamaCppCompatibleScheduler(sequence, this.config, vocabulary, resolved.llamaCppBatchSize)
        : resolved.mode === "fast-prefill"
          ? new FastPrefillScheduler(
              sequence,
              this.config,
              vocabulary,
              resolved.prefillChunkSize,
              resolved.trainedContext,
            )
          : new ExactScheduler(sequence, this.config, vocabulary);
  }

  readonly vocabularySize: number;

  /** Creates a Self-Extend context. Every option is checked before any token is evaluated. */
  static async create(options: SelfExtendContextOptions): Promise<SelfExtendContext> {
    assertSupportedNodeLlamaCpp();
    validateContextOptions(options);
    // An explicit (G, W) is checked before the model file is even read.
    const explicit = explicitConfig(options);
    // llama.cpp's seq_div is only reachable through the native bridge: say so before loading
    // anything. The first use on a machine builds the bridge (once, a few seconds).
    if (options.mode === "llama.cpp-compatible")
      await requireNativeBridge('mode "llama.cpp-compatible" (llama_memory_seq_div)');
    // Every setting is checked against the model's header (core's validateSessionForModel) before
    // the bridge is prepared and the weights are loaded.
    const { info, slidingWindow, longRope } = describeModelOption(options.model);
    const config =
      explicit ??
      planSelfExtend({
        trainedContext: info.trainedContext,
        targetContext: options.targetContext as number,
        // Sliding-window models run here only with W >= S (requireSlidingWindowCovered).
        smallestWindow: smallestWindowForSlidingWindow(info.trainedContext, slidingWindow),
      }).config;
    const usable =
      config.groupSize === 1 ? Number.POSITIVE_INFINITY : largestUsableContext(info.trainedContext, config);
    const contextSize =
      options.contextSize ??
      options.targetContext ??
      (Number.isFinite(usable) ? usable : info.trainedContext);
    validateSessionForModel({ selfExtend: config, contextSize }, info);
    requireSlidingWindowCovered(slidingWindow, config, options.mode ?? "exact");
    requireLongRopeSupported(longRope, config, contextSize);
    const bridgeState = await prepareNativeBridge();
    const resolved = await resolveModel(options, info);
    try {
      const mode = options.mode ?? "exact";
      const llamaCppBatchSize = Math.min(options.llamaCppBatchSize ?? 2048, contextSize);
      const batchSize = Math.max(
        options.batchSize ?? Math.min(contextSize, 512),
        mode === "llama.cpp-compatible" ? llamaCppBatchSize : 1,
      );
      const cachePrecision = options.cachePrecision ?? "float32";
      const cacheType = cachePrecision === "float32" ? "F32" : "F16";
      const context = await resolved.model.createContext({
        contextSize,
        sequences: 1,
        batchSize,
        threads: options.threads ?? defaultThreadCount(),
        // llama.cpp's CPU flash-attention path converts K/V to F16 internally (drift) and was 4-5x
        // slower on small models.
        flashAttention: false,
        experimentalKvCacheKeyType: cacheType,
        experimentalKvCacheValueType: cacheType,
      });
      try {
        const sequence = new NativeSequence(
          context,
          context.getSequence(),
          resolved.model,
          bridgeState,
          mode === "llama.cpp-compatible" ? "whole-cache" : "moved-cells",
        );
        if (mode === "llama.cpp-compatible" && !sequence.rawLogits) {
          sequence.dispose();
          throw new NativeBridgeUnavailableError(
            'mode "llama.cpp-compatible" (llama_memory_seq_div)',
            sequence.bridgeUnavailableReason ?? "",
          );
        }
        return new SelfExtendContext(resolved.model, resolved.ownsModel, context, sequence, {
          config,
          mode,
          contextSize,
          cachePrecision,
          trainedContext: resolved.info.trainedContext,
          vocabularySize: resolved.info.vocabularySize,
          prefillChunkSize: options.prefillChunkSize ?? config.groupSize,
          llamaCppBatchSize,
          cacheBytesPerCell:
            resolved.info.layerCount *
            resolved.info.kvHeadCount *
            resolved.info.headSize *
            2 *
            (cachePrecision === "float32" ? 4 : 2),
        });
      } catch (error) {
        await context.dispose();
        throw error;
      }
    } catch (error) {
      if (resolved.ownsModel) await resolved.model.dispose();
      throw error;
    }
  }

  get tokenCount(): number {
    return this.scheduler.tokenCount;
  }

  /** The tokens evaluated since the last reset, in order. */
  get evaluatedTokens(): readonly number[] {
    return this.evaluated;
  }

  /** llama.cpp's largest cached position of the sequence (-1 when empty): for checks and tests. */
  get largestCachedPosition(): number {
    return this.sequence.largestPosition;
  }

  /** Text to tokens with the model's tokenizer (special tokens such as BOS parsed from the text). */
  tokenize(text: string, specialTokens = false): number[] {
    return this.model.tokenize(text, specialTokens);
  }

  /**
   * Text given to evaluate/generate: special tokens in the text are parsed, and BOS is prepended
   * when the sequence is empty and the model asks for it (as node-llama-cpp's own APIs do).
   */
  private tokenizePrompt(text: string): number[] {
    const tokens = this.tokenize(text, true);
    const bos = this.model.tokens.bos;
    if (
      this.tokenCount === 0 &&
      bos !== null &&
      this.model.tokens.shouldPrependBosToken &&
      tokens[0] !== bos
    ) {
      tokens.unshift(bos);
    }
    return tokens;
  }

  detokenize(tokens: readonly number[]): string {
    return this.model.detokenize(tokens as readonly Token[]);
  }

  /**
   * Appends tokens (or text, tokenized without adding BOS) and returns rows (raw logits, or
   * log-softmax without the native bridge) for the selected positions (default: the last one).
   * Every limit (vocabulary, contextSize, (L - W) * G + W) is checked before anything reaches
   * llama.cpp, with core's checks, so every adapter refuses the same input the same way.
   */
  evaluate(input: ArrayLike<number> | string, options: EvaluateOptionsV1 = {}): Promise<EvaluationV1> {
    return this.lifecycle.run(options.signal, (signal) => this.evaluateBlock(input, options, signal));
  }

  private async evaluateBlock(
    input: ArrayLike<number> | string,
    options: EvaluateOptionsV1,
    signal: AbortSignal,
  ): Promise<EvaluationV1> {
    if (this.lostState !== undefined) throw new Error(this.lostState);
    const tokens = typeof input === "string" ? this.tokenizePrompt(input) : input;
    assertTokensInVocabulary(tokens, this.vocabularySize);
    const start = this.tokenCount;
    assertSessionLength({
      total: start + tokens.length,
      held: start,
      contextSize: this.options.contextSize,
      trainedContext: this.trainedContext,
      config: this.config,
    });
    const selected = resolveLogitSelection(options.logits, tokens.length);
    signal.throwIfAborted();
    let rows: Float32Array[];
    try {
      const ascending = [...new Set(selected)].sort((a, b) => a - b);
      const computed = await this.scheduler.evaluate({
        tokens,
        logitIndexes: ascending,
        signal,
        onProgress: options.onProgress,
      });
      const byIndex = new Map(ascending.map((index, order) => [index, computed[order]]));
      rows = selected.map((index) => byIndex.get(index) as Float32Array);
      for (let index = 0; index < tokens.length; index++) this.evaluated.push(tokens[index]);
      this.blockLengths.push(tokens.length);
    } catch (error) {
      // All or nothing (the v1 contract): the block may be half in the cache, with keys moved.
      // A context being disposed is freed next, so restoring its cache would be wasted work.
      if (!this.lifecycle.disposed) await this.rollBack();
      throw error;
    }
    const vocabularySize = rows[0]?.length ?? this.vocabularySize;
    const logits = new Float32Array(rows.length * vocabularySize);
    for (const [order, row] of rows.entries()) logits.set(row, order * vocabularySize);
    return {
      positions: Int32Array.from(selected, (index) => start + index),
      logits,
      vocabularySize,
      logitKind: this.sequence.rawLogits ? "logits" : "log-probabilities",
    };
  }

  async decode(token: number, options: { readonly signal?: AbortSignal } = {}): Promise<Float32Array> {
    const evaluation = await this.evaluate([token], { logits: "last", signal: options.signal });
    return evaluation.logits;
  }

  /** Streams generated token ids: evaluates the prompt, then decodes one token at a time. */
  generateTokens(prompt: ArrayLike<number> | string, options: GenerateTextOptions): AsyncGenerator<number> {
    const tokens = typeof prompt === "string" ? this.tokenizePrompt(prompt) : prompt;
    return generateTokens(this, tokens, options);
  }

  /** Streams generated text, one decoded piece per token (multi-byte characters are kept whole). */
  async *generateText(
    prompt: ArrayLike<number> | string,
    options: GenerateTextOptions,
  ): AsyncGenerator<string> {
    const generated: number[] = [];
    let emitted = "";
    for await (const token of this.generateTokens(prompt, options)) {
      generated.push(token);
      const text = this.detokenize(generated);
      // A partial UTF-8 sequence decodes to U+FFFD; wait for the rest of the character.
      if (text.endsWith("\uFFFD")) continue;
      yield text.slice(emitted.length);
      emitted = text;
    }
    const text = this.detokenize(generated);
    if (text.length > emitted.length) yield text.slice(emitted.length);
  }

  /**
   * Puts the cache back to the blocks evaluated before a failed or aborted call. llama.cpp cannot
   * take tokens out of a Self-Extend cache (grouped keys share positions, and earlier keys were
   * moved), so the earlier blocks are evaluated again, with the same block boundaries, which every
   * mode turns into the same positions and batches as before. It costs what evaluating them cost.
   * If even that fails, the context is left empty and says so until reset().
   */
  private async rollBack(): Promise<void> {
    this.sequence.clear();
    this.scheduler.reset();
    let offset = 0;
    try {
      for (const length of this.blockLengths) {
        await this.scheduler.evaluate({
          tokens: this.evaluated.slice(offset, offset + length),
          logitIndexes: [],
        });
        offset += length;
      }
    } catch (error) {
      this.sequence.clear();
      this.scheduler.reset();
      this.evaluated.length = 0;
      this.blockLengths.length = 0;
      this.lostState = `restoring the cache after a failed evaluation failed too (${(error as Error).message}); the context is empty: call reset()`;
    }
  }

  async reset(): Promise<void> {
    this.lifecycle.assertIdle();
    this.sequence.clear();
    this.scheduler.reset();
    this.evaluated.length = 0;
    this.blockLengths.length = 0;
    this.lostState = undefined;
  }

  /**
   * Core's SessionLifecycle: stops an evaluation in flight at its next llama_decode and waits for
   * it (its native work must not outlive the context), then frees everything.
   */
  dispose(): Promise<void> {
    return this.lifecycle.dispose(async () => {
      this.sequence.dispose();
      await this.context.dispose();
      if (this.ownsModel) await this.model.dispose();
    });
  }
}

/** Friendly entry point: `await createSelfExtendContext({model, groupSize: 4, neighborWindow: 64})`. */
export function createSelfExtendContext(options: SelfExtendContextOptions): Promise<SelfExtendContext> {
  return SelfExtendContext.create(options);
}
