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

/** One llama_decode of a block: how many tokens, from which position (key moves already made). */
export interface PlannedRun {
  readonly count: number;
  readonly firstPosition: number;
}

/**
 * What every mode's evaluate does: the block as a sequence of runs, each one llama_decode. `plan`
 * picks the next run's length and position (and makes the key moves it needs) for the tokens left;
 * `finish` does the bookkeeping after it. After every run our positions are checked against
 * llama.cpp's, the wanted rows collected, and progress reported.
 */
export async function evaluateInRuns(
  scheduler: PositionScheduler,
  sequence: NativeSequence,
  request: BlockRequest,
  vocabularySize: number,
  mode: string,
  plan: (remaining: number) => PlannedRun,
  finish: (count: number) => void,
): Promise<Float32Array[]> {
  const wanted = new Set(request.logitIndexes);
  const rows: Float32Array[] = [];
  const total = request.tokens.length;
  let offset = 0;
  while (offset < total) {
    request.signal?.throwIfAborted();
    const { count, firstPosition } = plan(total - offset);
    const slice = new Uint32Array(count);
    const logitIndexes: number[] = [];
    for (let index = 0; index < count; index++) {
      slice[index] = request.tokens[offset + index];
      if (wanted.has(offset + index)) logitIndexes.push(index);
    }
    rows.push(...(await sequence.decode(slice, firstPosition, logitIndexes, vocabularySize)));
    finish(count);
    assertPositionsAgree(sequence, scheduler, mode);
    offset += count;
    request.onProgress?.({ evaluated: offset, total });
  }
  return rows;
}

/** Checked after every decode: our bookkeeping and llama.cpp's cache must agree. */
function assertPositionsAgree(sequence: NativeSequence, scheduler: PositionScheduler, mode: string): void {
  const actual = sequence.largestPosition;
  if (actual !== scheduler.expectedLargestPosition) {
    throw new Error(
      `internal error in ${mode} mode: llama.cpp's largest cached position is ${actual}, expected ${scheduler.expectedLargestPosition} after ${scheduler.tokenCount} tokens`,
    );
  }
}
