/**
 * Every use of node-llama-cpp internals lives in this file, behind one version check.
 *
 * Self-Extend needs to move cached keys (`llama_memory_seq_add`) and to place each batch at a
 * position of our choosing. node-llama-cpp's public API does neither: its sequences keep their
 * own position bookkeeping that would disagree with ours the moment a key moves. So the adapter
 * drives the native context directly (initBatch / addToBatch / decodeBatch) and never evaluates
 * through the sequence's public methods. Those members are not in the .d.ts and may change in any
 * release, hence the exact version pin.
 */
import { createRequire } from "node:module";
import { join } from "node:path";
import { SelfExtendError } from "@self-extend/core";
import type { LlamaContext, LlamaContextSequence, LlamaModel } from "node-llama-cpp";
// Shared with the build scripts (plain JavaScript, so that they run before anything is compiled).
import {
  findPackageRoot,
  nodeLlamaCppVersionProblem,
  supportedNodeLlamaCppVersion,
} from "../scripts/llama-cpp-sources.mjs";
import {
  type KeyShifter,
  type NativeBridge,
  type NativeBridgeState,
  NativeBridgeUnavailableError,
} from "./native-bridge.js";

/** The one node-llama-cpp release whose internals this adapter was written and tested against. */
export { supportedNodeLlamaCppVersion };

/**
 * node-llama-cpp is missing, or a version other than {@link supportedNodeLlamaCppVersion}: the
 * peer range is that exact version, and a range a user saved (`^3.21.1`) may install a newer one
 * (or a package manager may only warn about the peer), so this is checked before any work.
 */
export class NodeLlamaCppVersionError extends SelfExtendError {
  override readonly name = "NodeLlamaCppVersionError";
  constructor(readonly foundVersion: string | undefined) {
    super(nodeLlamaCppVersionProblem(foundVersion) ?? `node-llama-cpp ${foundVersion} is supported`);
  }
}

/**
 * The node-llama-cpp version that `require` finds from `fromFolder` (default: this package), read
 * from its package.json (its exports map hides the file, so we find it from the resolved entry
 * point). Undefined when it cannot be resolved.
 */
export function installedNodeLlamaCppVersion(fromFolder?: string): string | undefined {
  try {
    const require = createRequire(
      fromFolder === undefined ? import.meta.url : join(fromFolder, "package.json"),
    );
    return findPackageRoot(require, "node-llama-cpp").version;
  } catch {
    return undefined;
  }
}

/** Throws {@link NodeLlamaCppVersionError} unless the supported version is installed. */
export function assertSupportedNodeLlamaCpp(version = installedNodeLlamaCppVersion()): void {
  if (version !== supportedNodeLlamaCppVersion) throw new NodeLlamaCppVersionError(version);
}

/** The subset of the native `AddonContext` (node-llama-cpp's `llama/addon/AddonContext.cpp`) we use. */
interface NativeContext {
  initBatch(size: number): void;
  addToBatch(
    sequenceId: number,
    firstPosition: number,
    tokens: Uint32Array,
    logitIndexes: Uint32Array,
  ): Uint32Array;
  decodeBatch(): Promise<void>;
  sampleToken(
    batchLogitIndex: number,
    sampler: NativeSampler,
    probabilities: boolean,
    confidence?: boolean,
  ): Promise<[token: number, probabilities: number[] | undefined, confidence: number | undefined]>;
  removeTokenCellsFromSequence(sequenceId: number, startPosition: number, endPosition: number): boolean;
  shiftSequenceTokenCells(
    sequenceId: number,
    startPosition: number,
    endPosition: number,
    delta: number,
  ): void;
  getSequenceKvCacheMinPosition(sequenceId: number): number;
  getSequenceKvCacheMaxPosition(sequenceId: number): number;
}

interface NativeSampler {
  applyConfig(config: Record<string, unknown>): void;
  dispose(): void;
}

interface NativeBindings {
  AddonSampler: new (model: unknown) => NativeSampler;
}

function requireMember<T>(owner: unknown, member: string, what: string): T {
  const value = (owner as Record<string, unknown> | null)?.[member];
  if (value === undefined || value === null) {
    throw new SelfExtendError(
      `node-llama-cpp internals changed: ${what}.${member} is missing (this adapter needs node-llama-cpp ${supportedNodeLlamaCppVersion})`,
    );
  }
  return value as T;
}

/**
 * One sequence of a node-llama-cpp context, driven at the native level: explicit positions,
 * explicit key moves, and rows read either as raw logits (through the native bridge) or as
 * log-softmax (through node-llama-cpp's sampler, when the bridge is unavailable).
 */
export class NativeSequence {
  private readonly native: NativeContext;
  private readonly nativeModel: unknown;
  private readonly sampler: NativeSampler;
  /** The native bridge when it is built and recognised this context; undefined otherwise. */
  private readonly bridge: NativeBridge | undefined;
  /** Why {@link bridge} is undefined. */
  readonly bridgeUnavailableReason: string | undefined;
  readonly sequenceId: number;
  /** Largest number of tokens one decodeBatch may hold (llama.cpp's n_batch). */
  readonly batchSize: number;
  /**
   * Where moved keys are re-rotated: "moved-cells" (the bridge rotates the range of cells that
   * moved before the next decode) or "whole-cache" (llama.cpp's own K-shift at the next decode,
   * over every cell, and a new worst-case graph reservation after it).
   */
  keyShift: "moved-cells" | "whole-cache";
  /** Why {@link keyShift} is "whole-cache" when moved cells were asked for. */
  keyShiftReason: string | undefined;
  /** Cells re-rotated by the moved-cells K-shift so far (whole-cache shifts are not counted). */
  rotatedCells = 0;
  private shiftPending = false;
  /** The bridge's scheduler for the moved-cells K-shift, made at the first move. */
  private keyShifter: KeyShifter | undefined;

  constructor(
    context: LlamaContext,
    // Held, not just read: node-llama-cpp disposes a garbage-collected sequence, which erases
    // its cells from the KV cache under our feet.
    private readonly publicSequence: LlamaContextSequence,
    model: LlamaModel,
    // Prepared (found, built on first use, loaded) by the caller, which may await it.
    bridgeState: NativeBridgeState,
    // llama.cpp-compatible mode keeps llama.cpp's own whole-cache K-shift, as llama-completion.
    keyShift: "moved-cells" | "whole-cache" = "moved-cells",
  ) {
    const sequence = publicSequence;
    assertSupportedNodeLlamaCpp();
    this.native = requireMember<NativeContext>(context, "_ctx", "LlamaContext");
    this.sequenceId = requireMember<number>(sequence, "_sequenceId", "LlamaContextSequence");
    for (const method of [
      "initBatch",
      "addToBatch",
      "decodeBatch",
      "sampleToken",
      "shiftSequenceTokenCells",
    ]) {
      if (typeof (this.native as unknown as Record<string, unknown>)[method] !== "function") {
        throw new SelfExtendError(`node-llama-cpp internals changed: the native context has no ${method}()`);
      }
    }
    const llama = requireMember<unknown>(model, "_llama", "LlamaModel");
    const bindings = requireMember<NativeBindings>(llama, "_bindings", "Llama");
    this.nativeModel = requireMember<unknown>(model, "_model", "LlamaModel");
    this.sampler = new bindings.AddonSampler(this.nativeModel);
    // Greedy: the chain leaves the logits untouched, so the probabilities it reports are the
    // plain softmax of the model's logits.
    this.sampler.applyConfig({ temperature: 0 });
    this.batchSize = context.batchSize;
    const bridge = bridgeState.bridge;
    if (bridge === undefined) {
      this.bridgeUnavailableReason = bridgeState.reason;
    } else {
      // The bridge checks the unwrapped pointers itself; the context size is one more check that
      // it found node-llama-cpp's llama_context (llama.cpp pads n_ctx up to a multiple of 256).
      try {
        const description = bridge.describe(this.native, this.nativeModel);
        if (
          description.contextSize < context.contextSize ||
          description.contextSize >= context.contextSize + 256
        ) {
          throw new Error(
            `it reports a context of ${description.contextSize} tokens, node-llama-cpp ${context.contextSize}`,
          );
        }
        this.bridge = bridge;
      } catch (error) {
        this.bridgeUnavailableReason = `did not recognise node-llama-cpp's context (${(error as Error).message})`;
      }
    }
    this.keyShift = keyShift;
    if (keyShift === "moved-cells" && process.env.SELF_EXTEND_LLAMA_CPP_WHOLE_CACHE_SHIFT === "1") {
      this.keyShift = "whole-cache";
      this.keyShiftReason = "SELF_EXTEND_LLAMA_CPP_WHOLE_CACHE_SHIFT=1";
    } else if (keyShift === "moved-cells" && this.bridge === undefined) {
      this.keyShift = "whole-cache";
      this.keyShiftReason = `the native bridge ${this.bridgeUnavailableReason}`;
    }
  }

  /** True when rows are raw logits; false when they are log-softmax (no native bridge). */
  get rawLogits(): boolean {
    return this.bridge !== undefined;
  }

  /**
   * llama_memory_seq_div: cells with start <= position < end get position floor(position / divisor),
   * with llama.cpp's own K-shift bookkeeping. Only through the native bridge.
   */
  divide(start: number, end: number, divisor: number): void {
    if (this.bridge === undefined) {
      throw new NativeBridgeUnavailableError("llama_memory_seq_div", this.bridgeUnavailableReason ?? "");
    }
    this.bridge.divideSequencePositions(this.native, this.nativeModel, this.sequenceId, start, end, divisor);
    this.shiftPending = true;
  }

  /**
   * The position of every cell of the sequence, in cell order, as llama.cpp holds them (read
   * from its sequence state). Only through the native bridge.
   */
  cellPositions(): Int32Array {
    if (this.bridge === undefined) {
      throw new NativeBridgeUnavailableError(
        "reading llama.cpp's cell positions",
        this.bridgeUnavailableReason ?? "",
      );
    }
    return this.bridge.readSequencePositions(this.native, this.nativeModel, this.sequenceId);
  }

  /** Largest cached position of the sequence, -1 when empty. */
  get largestPosition(): number {
    return this.native.getSequenceKvCacheMaxPosition(this.sequenceId);
  }

  get smallestPosition(): number {
    return this.native.getSequenceKvCacheMinPosition(this.sequenceId);
  }

  /** llama_memory_seq_add: cells with start <= position < end move by delta (keys are re-rotated before the next decode). */
  shift(start: number, end: number, delta: number): void {
    if (delta === 0 || end <= start) return;
    this.native.shiftSequenceTokenCells(this.sequenceId, start, end, delta);
    this.shiftPending = true;
  }

  /** Re-rotates moved keys now, over the moved cells only, unless llama.cpp is left to do it. */
  private rotateMovedKeys(): void {
    if (!this.shiftPending) return;
    this.shiftPending = false;
    if (this.keyShift === "whole-cache") return;
    const bridge = this.bridge as NativeBridge;
    if (this.keyShifter === undefined) {
      const shifter = bridge.createKeyShifter(this.native, this.nativeModel);
      if (typeof shifter === "string") {
        this.keyShift = "whole-cache";
        this.keyShiftReason = shifter;
        return;
      }
      this.keyShifter = shifter;
    }
    const outcome = bridge.applyPendingKeyShifts(
      this.native,
      this.nativeModel,
      this.sequenceId,
      this.keyShifter,
    );
    if (typeof outcome === "string") {
      // Not for this cache (the bridge's reason, e.g. a quantized key cache, RoPE that scales the
      // keys it rotates, several streams, an unexpected layout; kept in keyShiftReason):
      // llama.cpp's own K-shift at the next decode gives the same keys.
      this.keyShift = "whole-cache";
      this.keyShiftReason = outcome;
    } else {
      this.rotatedCells += outcome;
    }
  }

  /** Forgets every cached token of the sequence. */
  clear(): void {
    this.native.removeTokenCellsFromSequence(this.sequenceId, -1, -1);
  }

  /**
   * Decodes `tokens` at positions firstPosition, firstPosition + 1, ... in one llama_decode.
   * llama.cpp requires firstPosition = largest cached position + 1. Returns, for each index of
   * `logitIndexes` (ascending indices within the block), the raw logits over the vocabulary (or
   * their log-softmax when the native bridge is not built: see {@link rawLogits}).
   */
  async decode(
    tokens: ArrayLike<number>,
    firstPosition: number,
    logitIndexes: readonly number[],
    vocabularySize: number,
  ): Promise<Float32Array[]> {
    if (tokens.length > this.batchSize) {
      throw new RangeError(
        `a batch of ${tokens.length} tokens exceeds the context's batch size ${this.batchSize}`,
      );
    }
    this.rotateMovedKeys();
    this.native.initBatch(tokens.length);
    const batchIndexes = this.native.addToBatch(
      this.sequenceId,
      firstPosition,
      Uint32Array.from(tokens),
      Uint32Array.from(logitIndexes),
    );
    await this.native.decodeBatch();
    const rows: Float32Array[] = [];
    for (const batchIndex of batchIndexes) {
      rows.push(
        this.bridge === undefined
          ? await this.logSoftmaxAt(batchIndex, vocabularySize)
          : this.logitsAt(batchIndex, vocabularySize),
      );
    }
    return rows;
  }

  /** llama_get_logits_ith through the bridge: the model's float32 logits, untouched. */
  private logitsAt(batchIndex: number, vocabularySize: number): Float32Array {
    const row = new Float32Array(vocabularySize);
    const written = (this.bridge as NativeBridge).readLogits(this.native, this.nativeModel, batchIndex, row);
    if (written !== vocabularySize) {
      // A row longer than llama.cpp's would end in zeros that look like real logits.
      throw new SelfExtendError(
        `llama.cpp's vocabulary has ${written} tokens but the model file describes ${vocabularySize}; refusing rows that would not match token ids`,
      );
    }
    return row;
  }

  /**
   * node-llama-cpp returns no raw logits; the sampler reports softmax probabilities computed in
   * float32 from the logits. Their logarithm is the log-softmax (logits minus a per-row constant).
   * Probabilities below float32's range come back as 0 and give -Infinity.
   */
  private async logSoftmaxAt(batchIndex: number, vocabularySize: number): Promise<Float32Array> {
    const [, probabilities] = await this.native.sampleToken(batchIndex, this.sampler, true);
    const row = new Float32Array(vocabularySize).fill(Number.NEGATIVE_INFINITY);
    if (probabilities === undefined) return row;
    for (let index = 0; index + 1 < probabilities.length; index += 2) {
      const token = probabilities[index];
      if (token < vocabularySize) row[token] = Math.log(probabilities[index + 1]);
    }
    return row;
  }

  /** The greedy token at a batch index of the last decode, without building a row. */
  async greedyTokenAt(batchIndex: number): Promise<number> {
    // With a third argument the native call answers [token, ...]; without it, the bare token.
    const result: unknown = await this.native.sampleToken(batchIndex, this.sampler, false);
    return Array.isArray(result) ? (result[0] as number) : (result as number);
  }

  dispose(): void {
    // Before the context whose backends its scheduler uses.
    if (this.keyShifter !== undefined) (this.bridge as NativeBridge).releaseKeyShifter(this.keyShifter);
    this.keyShifter = undefined;
    this.sampler.dispose();
    this.publicSequence.dispose();
  }
}

/**
 * The absolute path a LlamaModel was loaded from. The public `filename` is only the base name;
 * we need the file itself to read its header (architecture, trained context, vocabulary).
 */
export function modelPathOf(model: LlamaModel): string | undefined {
  const path = (model as unknown as { _modelPath?: unknown })._modelPath;
  return typeof path === "string" ? path : undefined;
}
