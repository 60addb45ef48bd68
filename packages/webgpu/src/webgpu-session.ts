/**
 * One sequence on WebGPU: a float32 KV cache on the device and a forward pass evaluating blocks.
 * Context rules match the reference backend's and are checked before any GPU work: never more
 * than `contextSize` tokens; with G > 1 never past (L - W) * G + W (core's ContextLengthError);
 * plain attention (G = 1) may run past L, bounded by contextSize only.
 */
import {
  assertWithinUsableContext,
  ContextLengthError,
  type EvaluateOptionsV1,
  type EvaluationV1,
  resolveLogitSelection,
  type SelfExtendConfig,
  SelfExtendConfigError,
  type SelfExtendSessionV1,
  type SessionOptionsV1,
  validateSelfExtendConfig,
} from "@self-extend/core";
import type { LlamaModelDescription } from "@self-extend/models";
import type { GpuForwardPass } from "./forward-pass.js";

export interface WebGpuSessionOptions extends SessionOptionsV1 {
  /** Tokens per forward block (one compute pass each). Default 64. */
  readonly blockSize?: number;
}

export const defaultBlockSize = 64;

export function validateWebGpuSessionOptions(options: WebGpuSessionOptions): SelfExtendConfig {
  const { contextSize, mode, cachePrecision, blockSize } = options;
  if (!Number.isSafeInteger(contextSize) || contextSize < 1) {
    throw new SelfExtendConfigError("contextSize", contextSize, "must be an integer >= 1");
  }
  if (mode !== undefined && mode !== "exact") {
    throw new SelfExtendConfigError("mode", mode, 'the webgpu backend runs "exact" attention only');
  }
  if (cachePrecision !== undefined && cachePrecision !== "float32") {
    throw new SelfExtendConfigError(
      "cachePrecision",
      cachePrecision,
      'the webgpu backend keeps a "float32" cache (float16 storage is not implemented yet)',
    );
  }
  if (blockSize !== undefined && (!Number.isSafeInteger(blockSize) || blockSize < 1)) {
    throw new SelfExtendConfigError("blockSize", blockSize, "must be an integer >= 1");
  }
  return validateSelfExtendConfig(options.selfExtend);
}

export class WebGpuSession implements SelfExtendSessionV1 {
  readonly options: WebGpuSessionOptions;
  private readonly config: SelfExtendConfig;
  private forwardPass: GpuForwardPass | undefined;
  private evaluatedCount = 0;
  private busy = false;

  constructor(
    private readonly description: LlamaModelDescription,
    forwardPass: GpuForwardPass,
    options: WebGpuSessionOptions,
  ) {
    this.config = validateWebGpuSessionOptions(options);
    this.options = Object.freeze({ ...options, selfExtend: this.config });
    this.forwardPass = forwardPass;
  }

  get tokenCount(): number {
    return this.evaluatedCount;
  }

  private requireForwardPass(): GpuForwardPass {
    if (this.forwardPass === undefined) throw new Error("the session was disposed");
    if (this.busy) throw new Error("the session is busy: await the previous evaluate or decode first");
    return this.forwardPass;
  }

  private validate(tokens: ArrayLike<number>, total: number): void {
    const { vocabularySize, trainedContext } = this.description;
    for (let index = 0; index < tokens.length; index++) {
      const token = tokens[index];
      if (!Number.isInteger(token) || token < 0 || token >= vocabularySize) {
        throw new RangeError(
          `token id ${token} at index ${index} is outside the vocabulary (ids 0 .. ${vocabularySize - 1})`,
        );
      }
    }
    const { contextSize } = this.options;
    if (total > contextSize) {
      throw new ContextLengthError(
        total,
        contextSize,
        `the session was created with contextSize = ${contextSize} and holds ${this.evaluatedCount} tokens`,
      );
    }
    if (this.config.groupSize > 1) assertWithinUsableContext(total, trainedContext, this.config);
  }

  async evaluate(tokens: ArrayLike<number>, options: EvaluateOptionsV1 = {}): Promise<EvaluationV1> {
    const forwardPass = this.requireForwardPass();
    const count = tokens.length;
    const selection = resolveLogitSelection(options.logits, count);
    const firstPosition = this.evaluatedCount;
    this.validate(tokens, firstPosition + count);
    const { signal, onProgress } = options;
    signal?.throwIfAborted();

    const { vocabularySize } = this.description;
    const positions = Int32Array.from(selection, (index) => firstPosition + index);
    const logits = new Float32Array(selection.length * vocabularySize);
    const slotsByRow = new Map<number, number[]>();
    selection.forEach((row, slot) => {
      const slots = slotsByRow.get(row);
      if (slots === undefined) slotsByRow.set(row, [slot]);
      else slots.push(slot);
    });
    const blockSize = forwardPass.blockSize;
    this.busy = true;
    try {
      for (let blockStart = 0; blockStart < count; blockStart += blockSize) {
        const blockCount = Math.min(blockSize, count - blockStart);
        const rows: number[] = [];
        for (let row = 0; row < blockCount; row++) if (slotsByRow.has(blockStart + row)) rows.push(row);
        // Awaiting the GPU between blocks also lets an abort signal fire.
        const blockLogits = await forwardPass.evaluateBlock(
          tokens,
          blockStart,
          blockCount,
          firstPosition + blockStart,
          rows,
        );
        rows.forEach((row, index) => {
          for (const slot of slotsByRow.get(blockStart + row) ?? []) {
            logits.set(
              blockLogits.subarray(index * vocabularySize, (index + 1) * vocabularySize),
              slot * vocabularySize,
            );
          }
        });
        this.evaluatedCount = firstPosition + blockStart + blockCount;
        onProgress?.({ evaluated: blockStart + blockCount, total: count });
        if (blockStart + blockCount < count) {
          signal?.throwIfAborted();
          if (this.forwardPass !== forwardPass)
            throw new Error("the session was disposed during an evaluation");
        }
      }
    } catch (error) {
      // All or nothing: cache rows written past the old length are overwritten by the next call.
      this.evaluatedCount = firstPosition;
      throw error;
    } finally {
      this.busy = false;
    }
    return { positions, logits, vocabularySize };
  }

  async decode(token: number, options: { readonly signal?: AbortSignal } = {}): Promise<Float32Array> {
    const evaluation = await this.evaluate([token], { logits: "last", signal: options.signal });
    return evaluation.logits;
  }

  async reset(): Promise<void> {
    this.requireForwardPass();
    this.evaluatedCount = 0;
  }

  async dispose(): Promise<void> {
    if (this.busy) throw new Error("the session is busy: await the previous evaluate or decode first");
    this.forwardPass?.destroy();
    this.forwardPass = undefined;
    this.evaluatedCount = 0;
  }
}
