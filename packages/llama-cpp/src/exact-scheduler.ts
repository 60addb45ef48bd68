/**
 * Exact Self-Extend on llama.cpp's KV cache, where every key has ONE position (spec notes,
 * "Exact Self-Extend on a KV cache with one position per key"):
 *
 * - a key j that has left the window sits at its group position floor(j/G) and never moves again;
 * - the W most recent keys form a contiguous neighbor block ending just below the query;
 * - query i sits at p(i) = floor(i/G) + W - W/G, which is exactly (largest cached position + 1),
 *   the only place llama.cpp lets a new token go;
 * - before query i (i > W) the neighbor block moves by floor(i/G) - floor((i-1)/G) - 1 (-1 or 0);
 *   its oldest key lands exactly on its group position.
 *
 * For i <= W every key is a neighbor and p(i) = i, so that prefix is ordinary batches. Beyond it,
 * each query needs its own key positions, so evaluation is one token per llama_decode. With
 * G = 1 nothing ever moves and everything is batched: plain node-llama-cpp behaviour.
 */
import { groupQueryPosition, type SelfExtendConfig } from "@self-extend/core";
import type { NativeSequence } from "./node-llama-cpp-internals.js";
import { type BlockRequest, evaluateInRuns, type PositionScheduler } from "./position-scheduler.js";

/** The position query i is evaluated at in exact mode. */
export function exactQueryPosition(index: number, config: SelfExtendConfig): number {
  return config.groupSize === 1 || index <= config.neighborWindow ? index : groupQueryPosition(index, config);
}

/** How far the neighbor block moves before query i (0 for i <= W or G = 1). */
export function exactNeighborShift(index: number, config: SelfExtendConfig): number {
  const { groupSize } = config;
  if (groupSize === 1 || index <= config.neighborWindow) return 0;
  return Math.floor(index / groupSize) - Math.floor((index - 1) / groupSize) - 1;
}

export class ExactScheduler implements PositionScheduler {
  tokenCount = 0;

  constructor(
    private readonly sequence: NativeSequence,
    protected readonly config: SelfExtendConfig,
    private readonly vocabularySize: number,
    private readonly mode = "exact",
  ) {}

  get expectedLargestPosition(): number {
    return this.tokenCount === 0 ? -1 : exactQueryPosition(this.tokenCount - 1, this.config);
  }

  reset(): void {
    this.tokenCount = 0;
  }

  /** The longest prefix of the remaining block that can be one plain batch (indices <= W, or G = 1). */
  protected plainRunLength(remaining: number): number {
    const { groupSize, neighborWindow } = this.config;
    const limit = groupSize === 1 ? remaining : neighborWindow + 1 - this.tokenCount;
    return Math.max(0, Math.min(remaining, limit, this.sequence.batchSize));
  }

  /** Moves the neighbor block so that query `tokenCount` can go at largest position + 1. */
  protected shiftNeighborBlock(): void {
    const index = this.tokenCount;
    const delta = exactNeighborShift(index, this.config);
    if (delta === 0) return;
    const last = exactQueryPosition(index - 1, this.config);
    this.sequence.shift(last - this.config.neighborWindow + 1, last + 1, delta);
  }

  evaluate(request: BlockRequest): Promise<Float32Array[]> {
    return evaluateInRuns(
      this,
      this.sequence,
      request,
      this.vocabularySize,
      this.mode,
      (remaining) => {
        const plain = this.plainRunLength(remaining);
        const count = plain > 0 ? plain : this.nextRunLength(remaining);
        if (plain === 0) this.prepareRun(count);
        return { count, firstPosition: exactQueryPosition(this.tokenCount, this.config) };
      },
      (count) => this.finishRun(count),
    );
  }

  /** Tokens evaluated together past the plain prefix: one, for exactness. */
  protected nextRunLength(_remaining: number): number {
    return 1;
  }

  /** Key moves before a run of `count` tokens past the plain prefix. */
  protected prepareRun(_count: number): void {
    this.shiftNeighborBlock();
  }

  /** Bookkeeping (and any key moves) after a run. */
  protected finishRun(count: number): void {
    this.tokenCount += count;
  }
}
