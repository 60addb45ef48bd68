/**
 * llama.cpp's own Self-Extend (`llama-completion --grp-attn-n G --grp-attn-w W`), reproduced so
 * users moving from llama.cpp get the same outputs. Before each llama_decode (one per n_batch
 * chunk of the prompt, one per generated token) it runs llama.cpp's loop:
 *
 *     while n_past >= ga_i + W:
 *         ib = (G*ga_i)/W; bd = (W/G)*(G-1); dd = W/G - ib*bd - W
 *         seq_add(ga_i, n_past, ib*bd)
 *         seq_div(ga_i + ib*bd, ga_i + ib*bd + W, G)
 *         seq_add(ga_i + ib*bd + W, n_past + ib*bd, dd)
 *         n_past -= bd; ga_i += W/G
 *
 * It is an approximation of the paper (the exact-distance tail can be empty right after a
 * compression, and distances inside one batch can exceed the paper's maximum); that is the point
 * of this mode.
 *
 * seq_div is llama.cpp's own `llama_memory_seq_div`, called through the native bridge, not an
 * emulation: in the llama.cpp release node-llama-cpp 3.21.1 ships, `llama_kv_cells::pos_div`
 * records the key shift as p_old - p_new while pos_add records p_new - p_old, so a divided key is
 * re-rotated as if it sat at 2*p_old - p_new while its cell says p_new. No sequence of seq_add
 * calls (which move cell and rotation together) reproduces that, and users moving from
 * llama-completion expect its outputs, rotation included (test/llama-cpp-compatible.test.ts
 * shows the difference).
 */
import type { SelfExtendConfig } from "@self-extend/core";
import type { NativeSequence } from "./node-llama-cpp-internals.js";
import { type BlockRequest, evaluateInRuns, type PositionScheduler } from "./position-scheduler.js";

export class LlamaCppCompatibleScheduler implements PositionScheduler {
  tokenCount = 0;
  /** llama.cpp's n_past: the position of the next token. */
  private nextPosition = 0;
  /** llama.cpp's ga_i: where the not-yet-compressed part of the cache begins. */
  private compressedUpTo = 0;

  constructor(
    private readonly sequence: NativeSequence,
    private readonly config: SelfExtendConfig,
    private readonly vocabularySize: number,
    /** llama-completion's n_batch: prompt chunks evaluated between two runs of the loop. */
    private readonly llamaCppBatchSize: number,
  ) {}

  get expectedLargestPosition(): number {
    return this.nextPosition - 1;
  }

  reset(): void {
    this.tokenCount = 0;
    this.nextPosition = 0;
    this.compressedUpTo = 0;
  }

  /** llama.cpp's group-attention loop, run before every decode. */
  private compress(): void {
    const { groupSize: G, neighborWindow: W } = this.config;
    if (G === 1) return;
    while (this.nextPosition >= this.compressedUpTo + W) {
      const gaI = this.compressedUpTo;
      const nPast = this.nextPosition;
      const ib = Math.trunc((G * gaI) / W);
      const bd = (W / G) * (G - 1);
      const dd = W / G - ib * bd - W;
      this.sequence.shift(gaI, nPast, ib * bd);
      this.sequence.divide(gaI + ib * bd, gaI + ib * bd + W, G);
      this.sequence.shift(gaI + ib * bd + W, nPast + ib * bd, dd);
      this.nextPosition -= bd;
      this.compressedUpTo += W / G;
    }
  }

  evaluate(request: BlockRequest): Promise<Float32Array[]> {
    const chunk = Math.min(this.llamaCppBatchSize, this.sequence.batchSize);
    return evaluateInRuns(
      this,
      this.sequence,
      request,
      this.vocabularySize,
      "llama.cpp-compatible",
      (remaining) => {
        this.compress();
        return { count: Math.min(chunk, remaining), firstPosition: this.nextPosition };
      },
      (count) => {
        this.nextPosition += count;
        this.tokenCount += count;
      },
    );
  }
}
