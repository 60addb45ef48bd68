/**
 * Pieces every session implementation needs, kept here so the reference, ONNX Runtime, WebGPU and
 * llama.cpp sessions check lengths, refuse bad tokens, gather logits and dispose the same way.
 */
import type { EvaluationProgress, EvaluationV1, LogitSelection } from "./backend-contract.js";
import { resolveLogitSelection } from "./backend-contract.js";
import type { SelfExtendConfig } from "./config.js";
import {
  ContextLengthError,
  SessionBusyError,
  SessionDisposedError,
  TokenOutsideVocabularyError,
} from "./errors.js";
import { assertWithinUsableContext } from "./position-map.js";

export interface SessionLengthCheck {
  /** Tokens the session would hold after the evaluation. */
  readonly total: number;
  /** Tokens it holds now (for the message). */
  readonly held: number;
  readonly contextSize: number;
  readonly trainedContext: number;
  readonly config: SelfExtendConfig;
  /** Let Self-Extend pass (L - W) * G + W (reference-only experiments). */
  readonly allowBeyondUsableContext?: boolean;
}

/**
 * Refuses, before any work, a sequence longer than the session's capacity or (with G > 1) than
 * (L - W) * G + W. Plain attention (G = 1) may run past L: baselines compare it there.
 */
export function assertSessionLength(check: SessionLengthCheck): void {
  const { total, held, contextSize, trainedContext, config } = check;
  if (total > contextSize) {
    throw new ContextLengthError(
      total,
      contextSize,
      `the session was created with contextSize = ${contextSize} and holds ${held} tokens`,
    );
  }
  if (config.groupSize > 1 && check.allowBeyondUsableContext !== true) {
    assertWithinUsableContext(total, trainedContext, config);
  }
}

/**
 * Gathers the logits an evaluation was asked for while it runs block by block. An explicit
 * selection may repeat or reorder rows, so each block row maps to every result slot that wants it.
 */
export class LogitCollector {
  readonly positions: Int32Array;
  readonly logits: Float32Array;
  private readonly slotsByRow = new Map<number, number[]>();

  constructor(
    selection: LogitSelection | undefined,
    count: number,
    firstPosition: number,
    readonly vocabularySize: number,
  ) {
    const rows = resolveLogitSelection(selection, count);
    this.positions = Int32Array.from(rows, (row) => firstPosition + row);
    this.logits = new Float32Array(rows.length * vocabularySize);
    rows.forEach((row, slot) => {
      const slots = this.slotsByRow.get(row);
      if (slots === undefined) this.slotsByRow.set(row, [slot]);
      else slots.push(slot);
    });
  }

  /** Rows of the block (relative to blockStart) whose logits are wanted, ascending. */
  rowsOfBlock(blockStart: number, blockCount: number): number[] {
    const rows: number[] = [];
    for (let row = 0; row < blockCount; row++) if (this.slotsByRow.has(blockStart + row)) rows.push(row);
    return rows;
  }

  /** Stores a block's logits: `blockLogits` holds one row per entry of `rows`, in that order. */
  store(blockStart: number, rows: readonly number[], blockLogits: Float32Array): void {
    const size = this.vocabularySize;
    rows.forEach((row, index) => {
      for (const slot of this.slotsByRow.get(blockStart + row) ?? []) {
        this.logits.set(blockLogits.subarray(index * size, (index + 1) * size), slot * size);
      }
    });
  }

  result(): EvaluationV1 {
    return { positions: this.positions, logits: this.logits, vocabularySize: this.vocabularySize };
  }
}

/** Refuses a token id outside 0 .. vocabularySize - 1, naming it and its index, before any work. */
export function assertTokensInVocabulary(tokens: ArrayLike<number>, vocabularySize: number): void {
  for (let index = 0; index < tokens.length; index++) {
    const token = tokens[index];
    if (!Number.isInteger(token) || token < 0 || token >= vocabularySize) {
      throw new TokenOutsideVocabularyError(token, index, vocabularySize);
    }
  }
}

export interface BlockLoop {
  /** Tokens of the call. */
  readonly count: number;
  readonly blockSize: number;
  /** Tokens the session held before the call (what a failure restores). */
  readonly firstPosition: number;
  readonly collector: LogitCollector;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: EvaluationProgress) => void;
  /** Evaluates tokens [blockStart, blockStart + blockCount) of the call; returns the `rows` asked for. */
  readonly runBlock: (
    blockStart: number,
    blockCount: number,
    rows: readonly number[],
  ) => Promise<Float32Array> | Float32Array;
  /** Records how many tokens the session holds: after every block, and firstPosition again on failure. */
  readonly setTokenCount: (tokens: number) => void;
  /** Between two blocks, before the abort check: yield to the event loop when blocks run synchronously. */
  readonly pause?: () => Promise<void>;
}

/**
 * The block loop of an evaluation, all or nothing as the contract says: blocks run in order, each
 * storing its wanted logits and reporting progress; an abort between blocks, or any failure, puts
 * the session's token count back where it was (cache rows written past it are stale and get
 * overwritten by the next evaluation) and rethrows.
 */
export async function evaluateInBlocks(loop: BlockLoop): Promise<EvaluationV1> {
  const { count, blockSize, firstPosition, collector } = loop;
  try {
    for (let blockStart = 0; blockStart < count; blockStart += blockSize) {
      const blockCount = Math.min(blockSize, count - blockStart);
      const rows = collector.rowsOfBlock(blockStart, blockCount);
      collector.store(blockStart, rows, await loop.runBlock(blockStart, blockCount, rows));
      loop.setTokenCount(firstPosition + blockStart + blockCount);
      loop.onProgress?.({ evaluated: blockStart + blockCount, total: count });
      if (blockStart + blockCount < count) {
        await loop.pause?.();
        // SessionLifecycle aborts this signal on dispose, so a disposed session stops here too.
        loop.signal?.throwIfAborted();
      }
    }
  } catch (error) {
    loop.setTokenCount(firstPosition);
    throw error;
  }
  return collector.result();
}

/**
 * The life of one session, shared by every adapter so that busy, disposed and
 * dispose-while-evaluating behave the same everywhere (see SelfExtendSessionV1.dispose):
 *
 * - one evaluation at a time: a second call while one runs rejects with SessionBusyError;
 * - dispose() marks the session disposed at once, stops the evaluation in flight at its next
 *   block boundary (its signal aborts with SessionDisposedError), waits for it to settle (native or
 *   GPU work must not outlive the buffers it writes), then frees the resources, once;
 * - the evaluation in flight when dispose() was called rejects with SessionDisposedError, whether
 *   or not it reached its last block, so the outcome never depends on timing;
 * - every call after dispose() rejects with SessionDisposedError; dispose() again is a no-op.
 */
export class SessionLifecycle {
  private readonly disposal = new AbortController();
  /** Resolves (never rejects) when the evaluation in flight has settled. */
  private inFlight: Promise<void> | undefined;
  private disposing: Promise<void> | undefined;

  get disposed(): boolean {
    return this.disposing !== undefined;
  }

  get busy(): boolean {
    return this.inFlight !== undefined;
  }

  /** For calls that do no evaluation work (reset): refuses a disposed or busy session. */
  assertIdle(): void {
    if (this.disposed) throw new SessionDisposedError();
    if (this.busy) throw new SessionBusyError();
  }

  /**
   * Runs one evaluation. `work` gets a signal that aborts on the caller's signal (with its reason)
   * or on dispose (with SessionDisposedError); it should check it between blocks. Checks that
   * `work` makes before its first await run before anything else can happen to the session.
   */
  async run<T>(signal: AbortSignal | undefined, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    this.assertIdle();
    const combined =
      signal === undefined ? this.disposal.signal : AbortSignal.any([signal, this.disposal.signal]);
    // Marked in flight before `work` starts: its first block may run synchronously, and a dispose
    // called from its progress callback must still wait for it.
    let settle = (): void => undefined;
    this.inFlight = new Promise<void>((resolve) => {
      settle = resolve;
    });
    try {
      const result = await work(combined);
      if (this.disposed) throw new SessionDisposedError();
      return result;
    } catch (error) {
      if (this.disposed) throw new SessionDisposedError();
      throw error;
    } finally {
      this.inFlight = undefined;
      settle();
    }
  }

  /** Disposes once: later calls reject, the evaluation in flight stops and settles, then `free` runs. */
  dispose(free: () => void | Promise<void>): Promise<void> {
    this.disposing ??= (async () => {
      this.disposal.abort(new SessionDisposedError());
      await this.inFlight;
      await free();
    })();
    return this.disposing;
  }
}
