/**
 * The adapter contract, spec v1. The reference backend, llama.cpp, ONNX Runtime and WebGPU
 * adapters all implement it, and the conformance suite drives them only through it.
 *
 * The shape is what all runtimes can do honestly: load a model file, open a session (one
 * sequence with its own KV cache), evaluate a block of tokens and return logits for the positions
 * asked for, decode one token, reset, dispose. Anything runtime-specific stays in the adapter.
 * Users call the adapters' own friendly APIs; this contract is for tools (conformance, CLI, eval).
 */
import { type SelfExtendConfig, validateSelfExtendConfig } from "./config.js";
import { SelfExtendConfigError } from "./errors.js";
import { largestUsableContext } from "./position-map.js";

export const specificationVersion = "v1" as const;

/**
 * How an adapter places queries and keys.
 * - `exact`: every pair gets r(i, j) of the spec; matches the reference.
 * - `fast-prefill`: batched prefill with a bounded, documented deviation; decoding stays exact.
 * - `llama.cpp-compatible`: reproduces llama.cpp's `--grp-attn-n/--grp-attn-w` approximation.
 */
export type AttentionMode = "exact" | "fast-prefill" | "llama.cpp-compatible";

/** Every mode of spec v1; which of them a backend runs is its capabilities' `modes`. */
export const attentionModes: readonly AttentionMode[] = ["exact", "fast-prefill", "llama.cpp-compatible"];

/** Storage precision of the KV cache (compute is float32 or better everywhere). */
export type CachePrecision = "float64" | "float32" | "float16";

/** What a model file says about itself, normalised across runtimes. */
export interface ModelInfoV1 {
  /** GGUF `general.architecture`: `llama`, `mistral`, `qwen2`, ... */
  readonly architecture: string;
  /** L: the context the model was trained on (GGUF `<arch>.context_length`). */
  readonly trainedContext: number;
  readonly vocabularySize: number;
  readonly layerCount: number;
  readonly headCount: number;
  readonly kvHeadCount: number;
  readonly headSize: number;
  readonly name?: string;
}

export interface BackendCapabilitiesV1 {
  readonly modes: readonly AttentionMode[];
  readonly cachePrecisions: readonly CachePrecision[];
  /** GGUF architectures the backend can run. */
  readonly architectures: readonly string[];
  /** A hard limit of the runtime on tokens per session, if any (memory aside). */
  readonly largestContext?: number;
}

export interface BackendAvailability {
  readonly available: boolean;
  /** Why not, in one line (missing runtime, no GPU adapter, ...). */
  readonly reason?: string;
}

export interface ModelSourceV1 {
  /** Path to a GGUF file (the reference backend also reads llama2.c checkpoints). */
  readonly path: string;
}

export interface SessionOptionsV1 {
  /** G = 1 is plain attention. */
  readonly selfExtend: SelfExtendConfig;
  /** Largest number of tokens the session will hold; adapters size their caches from it. */
  readonly contextSize: number;
  readonly mode?: AttentionMode;
  readonly cachePrecision?: CachePrecision;
}

/** Which logits an evaluation returns: all positions of the block, the last one, none, or
 * explicit indices within the block. */
export type LogitSelection = "all" | "last" | "none" | readonly number[];

export interface EvaluationProgress {
  /** Tokens of the block evaluated so far. */
  readonly evaluated: number;
  readonly total: number;
}

export interface EvaluateOptionsV1 {
  readonly logits?: LogitSelection;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: EvaluationProgress) => void;
}

export interface EvaluationV1 {
  /** Absolute token indices (0-based in the session) whose logits are returned, in order. */
  readonly positions: Int32Array;
  /** Row-major [positions.length, vocabularySize]. */
  readonly logits: Float32Array;
  readonly vocabularySize: number;
  /**
   * What the rows hold: raw `logits` (the default when absent) or `log-probabilities` (log-softmax,
   * for runtimes that expose no raw logits, such as node-llama-cpp). Both give the same greedy
   * token and the same distribution; they differ by a constant per row.
   */
  readonly logitKind?: "logits" | "log-probabilities";
}

/** One sequence with its own KV cache. */
export interface SelfExtendSessionV1 {
  readonly options: SessionOptionsV1;
  /** Tokens evaluated so far. */
  readonly tokenCount: number;
  /**
   * Bytes the session's KV cache takes now: keys, values, and the second key copy of adapters that
   * keep one for Self-Extend's group level. Optional: benchmarks report it where an adapter knows.
   */
  readonly cacheBytes?: number;
  /**
   * Appends a block of tokens (a prompt chunk or a single token). All or nothing: an evaluation
   * that is aborted (the signal's reason is thrown) or fails leaves the session as it was before
   * the call, so it can be retried or continued. Every backend here implements it that way.
   */
  evaluate(tokens: ArrayLike<number>, options?: EvaluateOptionsV1): Promise<EvaluationV1>;
  /** Appends one token and returns its logits. */
  decode(token: number, options?: { readonly signal?: AbortSignal }): Promise<Float32Array>;
  /** Forgets every token; the session can be reused. SessionBusyError while an evaluation runs. */
  reset(): Promise<void>;
  /**
   * Frees the session. Every backend behaves the same (core's SessionLifecycle): the session is
   * disposed at once; an evaluation in flight stops at its next block boundary and rejects with
   * SessionDisposedError; dispose() resolves once that evaluation has settled and the resources
   * are freed; every later call rejects with SessionDisposedError; a second dispose() is a no-op.
   */
  dispose(): Promise<void>;
}

export interface TokenizerEncodeOptionsV1 {
  /** Put the beginning-of-sequence token in front. Default: what the model file asks for. */
  readonly addBos?: boolean;
  /** Put the end-of-sequence token at the end. Default: what the model file asks for. */
  readonly addEos?: boolean;
}

/** A model's own tokenizer: text to the token ids its sessions take, and back. */
export interface TokenizerV1 {
  /** The beginning-of-sequence token, or undefined when the vocabulary has none. */
  readonly bosToken: number | undefined;
  /** The end-of-sequence token (generation stops there), or undefined when the vocabulary has none. */
  readonly eosToken: number | undefined;
  encode(text: string, options?: TokenizerEncodeOptionsV1): number[];
  /** Control tokens such as BOS and EOS give no text. */
  decode(tokens: readonly number[]): string;
}

export interface SelfExtendModelV1 {
  readonly info: ModelInfoV1;
  /**
   * The tokenizer of the model file's own vocabulary. Absent only where the file holds no
   * vocabulary the adapter can read (a llama2.c checkpoint, weights generated in memory).
   */
  readonly tokenizer?: TokenizerV1;
  /**
   * Refuses, before any work, options the backend cannot honour or the model cannot take
   * (validateSessionOptions, then validateSessionForModel): a bad option is a SelfExtendConfigError
   * at creation, never an error at the first evaluation.
   */
  createSession(options: SessionOptionsV1): Promise<SelfExtendSessionV1>;
  dispose(): Promise<void>;
}

/**
 * The model's tokenizer, or a one-line error saying why it has none, for code that needs text in
 * and out (examples, the CLI) rather than token ids.
 */
export function requireTokenizer(model: SelfExtendModelV1): TokenizerV1 {
  if (model.tokenizer !== undefined) return model.tokenizer;
  const name = model.info.name ?? model.info.architecture;
  throw new Error(
    `the model ${JSON.stringify(name)} has no tokenizer: its file holds no vocabulary this adapter reads (a llama2.c checkpoint without its tok*.bin, or a tokenizer other than SentencePiece "llama"); pass token ids instead`,
  );
}

export interface SelfExtendBackendV1 {
  readonly specificationVersion: typeof specificationVersion;
  /** Short stable name used by `--backend`: `reference`, `llama-cpp`, `onnxruntime`, `webgpu`. */
  readonly name: string;
  readonly capabilities: BackendCapabilitiesV1;
  /** Whether the runtime can run on this machine; never throws. */
  checkAvailability(): Promise<BackendAvailability>;
  loadModel(source: ModelSourceV1): Promise<SelfExtendModelV1>;
  /**
   * Optional: the relative positions this backend's attention actually uses for N tokens (the
   * same layout as core's `relativePositionMap`, -1 above the diagonal), read back from the
   * runtime (its KV cache's positions, its graph's or its kernel's position arithmetic) rather
   * than recomputed. The conformance suite checks them bit for bit against the golden maps.
   * `options` names the session mode whose positions are wanted (default: the backend's default).
   */
  relativePositions?(
    config: SelfExtendConfig,
    length: number,
    options?: Pick<SessionOptionsV1, "mode">,
  ): Int32Array | Promise<Int32Array>;
}

/** Resolves a logit selection against a block of `count` tokens to indices within the block. */
export function resolveLogitSelection(selection: LogitSelection | undefined, count: number): number[] {
  if (selection === undefined || selection === "last") return count > 0 ? [count - 1] : [];
  if (selection === "none") return [];
  if (selection === "all") return Array.from({ length: count }, (_, index) => index);
  for (const index of selection) {
    if (!Number.isInteger(index) || index < 0 || index >= count) {
      throw new RangeError(`logit index ${index} is outside the block of ${count} tokens`);
    }
  }
  return [...selection];
}

/**
 * The checks every backend makes on v1 session options before any work: a positive integer
 * context size, a valid Self-Extend config, and a mode and cache precision it supports.
 * Returns the validated config; backends add checks of their own options after it.
 */
export function validateSessionOptions(
  options: SessionOptionsV1,
  capabilities: BackendCapabilitiesV1,
  backendName: string,
): SelfExtendConfig {
  const config = validateSelfExtendConfig(options.selfExtend);
  const { contextSize } = options;
  if (!Number.isSafeInteger(contextSize) || contextSize < 1) {
    throw new SelfExtendConfigError("contextSize", contextSize, "must be an integer >= 1");
  }
  validateBackendSettings(options, capabilities, backendName);
  return config;
}

/**
 * A mode and cache precision the backend supports (absent means its default). Part of
 * validateSessionOptions; adapters with a friendlier API of their own (llama-cpp's
 * createSelfExtendContext) call it for those two settings.
 */
export function validateBackendSettings(
  settings: Pick<SessionOptionsV1, "mode" | "cachePrecision">,
  capabilities: BackendCapabilitiesV1,
  backendName: string,
): void {
  const { mode, cachePrecision } = settings;
  if (mode !== undefined && !capabilities.modes.includes(mode)) {
    throw new SelfExtendConfigError(
      "mode",
      mode,
      `the ${backendName} backend runs ${capabilities.modes.map((m) => `"${m}"`).join(", ")}`,
    );
  }
  if (cachePrecision !== undefined && !capabilities.cachePrecisions.includes(cachePrecision)) {
    throw new SelfExtendConfigError(
      "cachePrecision",
      cachePrecision,
      `the ${backendName} backend keeps ${capabilities.cachePrecisions.map((p) => `"${p}"`).join(", ")} caches`,
    );
  }
}

/**
 * The checks of session options against the model, made when a session is created (not at its
 * first evaluation), in one place for every adapter:
 * - with Self-Extend (G > 1), W < L: a neighbor window as long as the trained context leaves
 *   nothing to group, and W >= L cannot keep relative positions within L - 1 anyway;
 * - with G > 1, contextSize <= (L - W) * G + W, the longest sequence whose largest relative
 *   position stays within L - 1 (the reference's `allowBeyondUsableContext` experiments skip it).
 * Plain attention (G = 1, whatever W) may have contextSize > L: baselines compare plain attention
 * past L with Self-Extend there (the CLI's --no-extend, the evaluation's plain rows), and the
 * planner itself describes plain attention as G = 1, W = L.
 */
export function validateSessionForModel(
  options: Pick<SessionOptionsV1, "selfExtend" | "contextSize"> & {
    readonly allowBeyondUsableContext?: boolean;
  },
  model: Pick<ModelInfoV1, "trainedContext">,
): void {
  const { groupSize, neighborWindow } = validateSelfExtendConfig(options.selfExtend);
  const { trainedContext } = model;
  if (groupSize === 1 || options.allowBeyondUsableContext === true) return;
  if (neighborWindow >= trainedContext) {
    throw new SelfExtendConfigError(
      "neighborWindow",
      neighborWindow,
      `must be smaller than the trained context L = ${trainedContext} when groupSize > 1 (G = ${groupSize})`,
    );
  }
  const limit = largestUsableContext(trainedContext, options.selfExtend);
  if (options.contextSize > limit) {
    throw new SelfExtendConfigError(
      "contextSize",
      options.contextSize,
      `with trained context L = ${trainedContext}, G = ${groupSize}, W = ${neighborWindow} the largest usable context is (L - W) * G + W = ${limit}; use a larger groupSize, a smaller neighborWindow or a smaller contextSize`,
    );
  }
}
