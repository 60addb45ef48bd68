/**
 * One sequence on WebGPU: a float32 KV cache on the device and a forward pass evaluating blocks.
 * Context rules match the reference backend's and are checked before any GPU work: never more
 * than `contextSize` tokens; with G > 1, W < L and contextSize <= (L - W) * G + W, refused at
 * creation (core's validateSessionForModel); plain attention (G = 1) may run past L, bounded by
 * contextSize only.
 */
import {
  assertSessionLength,
  assertTokensInVocabulary,
  type EvaluateOptionsV1,
  type EvaluationV1,
  evaluateInBlocks,
  LogitCollector,
  type SelfExtendConfig,
  SelfExtendConfigError,
  type SelfExtendSessionV1,
  SessionLifecycle,
  type SessionOptionsV1,
  validateSessionForModel,
  validateSessionOptions,
} from "@self-extend/core";
import type { LlamaModelDescription } from "@self-extend/models";
import type { GpuForwardPass } from "./forward-pass.js";
import { webGpuCapabilities } from "./webgpu-capabilities.js";

export interface WebGpuSessionOptions extends SessionOptionsV1 {
  /** Tokens per forward block (one compute pass each). Default 64. */
  readonly blockSize?: number;
}

export const defaultBlockSize = 64;

/** Every check of the options, made once when the model creates a session (the edge). */
export function validateWebGpuSessionOptions(
  options: WebGpuSessionOptions,
  trainedContext: number,
): SelfExtendConfig {
  const config = validateSessionOptions(options, webGpuCapabilities, "webgpu");
  const { blockSize } = options;
  if (blockSize !== undefined && (!Number.isSafeInteger(blockSize) || blockSize < 1)) {
    throw new SelfExtendConfigError("blockSize", blockSize, "must be an integer >= 1");
  }
  validateSessionForModel(options, { trainedContext });
  return config;
}

export class WebGpuSession implements SelfExtendSessionV1 {
  readonly options: WebGpuSessionOptions;
  private readonly config: SelfExtendConfig;
  private forwardPass: GpuForwardPass | undefined;
  private evaluatedCount = 0;
  private readonly lifecycle = new SessionLifecycle();

  /** Made by WebGpuModel.createSession, which has validated the options into `config`. */
  constructor(
    private readonly description: LlamaModelDescription,
    forwardPass: GpuForwardPass,
    options: WebGpuSessionOptions,
    config: SelfExtendConfig,
  ) {
    this.config = config;
    this.options = Object.freeze({ ...options, selfExtend: this.config });
    this.forwardPass = forwardPass;
  }

  get tokenCount(): number {
    return this.evaluatedCount;
  }

  get cacheBytes(): number {
    return this.forwardPass?.cacheBytes ?? 0;
  }

  evaluate(tokens: ArrayLike<number>, options: EvaluateOptionsV1 = {}): Promise<EvaluationV1> {
    return this.lifecycle.run(options.signal, (signal) => this.evaluateBlocks(tokens, options, signal));
  }

  private async evaluateBlocks(
    tokens: ArrayLike<number>,
    options: EvaluateOptionsV1,
    signal: AbortSignal,
  ): Promise<EvaluationV1> {
    const forwardPass = this.forwardPass as GpuForwardPass;
    const count = tokens.length;
    const { vocabularySize } = this.description;
    assertTokensInVocabulary(tokens, vocabularySize);
    const firstPosition = this.evaluatedCount;
    assertSessionLength({
      total: firstPosition + count,
      held: firstPosition,
      contextSize: this.options.contextSize,
      trainedContext: this.description.trainedContext,
      config: this.config,
    });
    const { onProgress } = options;
    signal.throwIfAborted();

    const collector = new LogitCollector(options.logits, count, firstPosition, vocabularySize);
    // Awaiting the GPU between blocks also lets an abort signal (or a dispose) fire.
    return evaluateInBlocks({
      count,
      blockSize: forwardPass.blockSize,
      firstPosition,
      collector,
      signal,
      onProgress,
      runBlock: (blockStart, blockCount, rows) =>
        forwardPass.evaluateBlock(tokens, blockStart, blockCount, firstPosition + blockStart, rows),
      setTokenCount: (tokenCount) => {
        this.evaluatedCount = tokenCount;
      },
    });
  }

  async decode(token: number, options: { readonly signal?: AbortSignal } = {}): Promise<Float32Array> {
    const evaluation = await this.evaluate([token], { logits: "last", signal: options.signal });
    return evaluation.logits;
  }

  async reset(): Promise<void> {
    this.lifecycle.assertIdle();
    this.evaluatedCount = 0;
  }

  /** Waits for the block in flight: its GPU work must not outlive the buffers it writes. */
  dispose(): Promise<void> {
    return this.lifecycle.dispose(() => {
      this.forwardPass?.destroy();
      this.forwardPass = undefined;
      this.evaluatedCount = 0;
    });
  }
}
