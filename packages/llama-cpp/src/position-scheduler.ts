/**
 * What every mode has in common: it owns the positions of one native sequence and turns "append
 * these tokens, give me log-softmax rows at these indices" into key moves and llama_decode calls.
 */
import type { EvaluationProgress } from "@self-extend/core";
import type { NativeSequence } from "./node-llama-cpp-internals.js";

export interface BlockRequest {
  readonly tokens: ArrayLike<number>;
  /** Ascending indices within the block whose rows are wanted. */
  readonly logitIndexes: readonly number[];
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: EvaluationProgress) => void;
}

export interface PositionScheduler {
  /** Tokens evaluated so far in the sequence. */
  readonly tokenCount: number;
  /** The position the scheduler expects llama.cpp to report as the largest cached one (-1 when empty). */
  readonly expectedLargestPosition: number;
  evaluate(request: BlockRequest): Promise<Float32Array[]>;
  /** Forgets the scheduler's state (the caller clears the native cache). */
  reset(): void;
}

/** Shared helper: decode `tokens[offset .. offset + count)` at `firstPosition`, collecting wanted rows. */
export async function decodeSlice(
  sequence: NativeSequence,
  request: BlockRequest,
  offset: number,
  count: number,
  firstPosition: number,
  vocabularySize: number,
  wanted: ReadonlySet<number>,
): Promise<Float32Array[]> {
  const slice = new Uint32Array(count);
  const logitIndexes: number[] = [];
  for (let index = 0; index < count; index++) {
    slice[index] = request.tokens[offset + index];
    if (wanted.has(offset + index)) logitIndexes.push(index);
  }
  return sequence.decode(slice, firstPosition, logitIndexes, vocabularySize);
}

/** Checked after every decode: our bookkeeping and llama.cpp's cache must agree. */
export function assertPositionsAgree(
  sequence: NativeSequence,
  scheduler: PositionScheduler,
  mode: string,
): void {
  const actual = sequence.largestPosition;
  if (actual !== scheduler.expectedLargestPosition) {
    throw new Error(
      `internal error in ${mode} mode: llama.cpp's largest cached position is ${actual}, expected ${scheduler.expectedLargestPosition} after ${scheduler.tokenCount} tokens`,
    );
  }
}
