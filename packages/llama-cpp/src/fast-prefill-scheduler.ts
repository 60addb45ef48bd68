/**
 * fast-prefill: exact mode, except that past the plain prefix the prompt goes in chunks of C
 * tokens per llama_decode instead of one.
 *
 * Before a chunk starting at query s the cache is laid out exactly for s (exact-scheduler.ts).
 * The chunk's tokens go at p(s), p(s)+1, ..., p(s)+C-1, contiguous as llama.cpp demands, where
 * exact Self-Extend would put query s+k at p(s+k) = p(s) + floor((s+k)/G) - floor(s/G). The
 * deviation is therefore bounded and only ever makes distances longer:
 * - query s+k against a group-level key: off by k - (floor((s+k)/G) - floor(s/G)) <= C-1 - floor((C-1)/G);
 * - against a key that became group-level inside the chunk: it still sees the plain distance;
 * - against keys within W: exact.
 * After the chunk every key that left the window is moved to floor(j/G) and the neighbor block
 * to end at p(s+C-1): the layout is exact again, so decoding afterwards is exact (its keys were
 * computed from slightly different hidden states, which the conformance suite measures).
 * Chunks never place a query beyond L - 1, so no untrained position is used.
 */
import type { SelfExtendConfig } from "@self-extend/core";
import { ExactScheduler, exactQueryPosition } from "./exact-scheduler.js";
import type { NativeSequence } from "./node-llama-cpp-internals.js";

/** Largest relative-position error fast-prefill introduces with chunks of C tokens and group size G. */
export function fastPrefillPositionError(chunkSize: number, groupSize: number): number {
  return chunkSize - 1 - Math.floor((chunkSize - 1) / groupSize);
}

export class FastPrefillScheduler extends ExactScheduler {
  constructor(
    private readonly nativeSequence: NativeSequence,
    private readonly fastConfig: SelfExtendConfig,
    vocabularySize: number,
    private readonly chunkSize: number,
    private readonly trainedContext: number,
  ) {
    super(nativeSequence, fastConfig, vocabularySize, "fast-prefill");
  }

  protected override nextRunLength(remaining: number): number {
    // A single token (decoding) is exact; so is the last query of every chunk's layout fix-up.
    const start = exactQueryPosition(this.tokenCount, this.fastConfig);
    const byTrainedRange = this.trainedContext - start;
    return Math.max(1, Math.min(remaining, this.chunkSize, this.nativeSequence.batchSize, byTrainedRange));
  }

  protected override finishRun(count: number): void {
    const start = this.tokenCount;
    super.finishRun(count);
    if (count === 1 || start <= this.fastConfig.neighborWindow) return;
    const { groupSize: G, neighborWindow: W } = this.fastConfig;
    const base = exactQueryPosition(start, this.fastConfig);
    // Where token j sits now: contiguous, token `start` at p(start).
    const current = (token: number) => base + token - start;
    // Tokens that left the window during the chunk: down to their group positions, ascending
    // (each target is below every cell still to be moved, so single-position moves never collide).
    const end = start + count;
    for (let token = start - W; token < end - W; token++) {
      const position = current(token);
      this.nativeSequence.shift(position, position + 1, Math.floor(token / G) - position);
    }
    // The neighbor block: contiguous, ending at p(end - 1).
    const last = current(end - 1);
    this.nativeSequence.shift(
      current(end - W),
      last + 1,
      exactQueryPosition(end - 1, this.fastConfig) - last,
    );
  }
}
