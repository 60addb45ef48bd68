/**
 * One sequence on WebGPU: a float32 KV cache on the device and a forward pass evaluating blocks.
 * Context rules match the reference backend's and are checked before any GPU work: never more
 * than `contextSize` tokens; with G > 1 never past (L - W) * G + W (core's ContextLengthError);
 * plain attention (G = 1) may run past L, bounded by contextSize only.
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

  async evaluate(tokens: ArrayLike<number>, options: EvaluateOptionsV1 = {}): Promise<EvaluationV1> {
    const forwardPass = this.requireForwardPass();
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
    const { signal, onProgress } = options;
    signal?.throwIfAborted();

    const collector = new LogitCollector(options.logits, count, firstPosition, vocabularySize);
    this.busy = true;
    try {
      // Awaiting the GPU between blocks also lets an abort signal fire.
      return await evaluateInBlocks({
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
        assertUsable: () => {
          if (this.forwardPass !== forwardPass)
            throw new Error("the session was disposed during an evaluation");
        },
      });
    } finally {
      this.busy = false;
    }
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
