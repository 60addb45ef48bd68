/**
 * One sequence on the reference backend: a float64 KV cache and a forward pass that evaluates
 * blocks of tokens. Everything is synchronous arithmetic; the session yields to the event loop
 * between blocks so that an AbortSignal fired by a timer or a user can interrupt a long prefill.
 *
 * Context rules (core's validateSessionForModel at creation, assertSessionLength before any work
 * of an evaluation):
 * - the session never holds more than `contextSize` tokens;
 * - with G > 1, W < L and contextSize <= (L - W) * G + W, unless the reference-only option
 *   `allowBeyondUsableContext` is set (used to reproduce experiments that go past the limit on
 *   purpose, such as the spec's W=256 G=4 row at 2048 tokens);
 * - plain attention (G = 1) may run past the trained context L: baselines compare plain attention
 *   there, so only contextSize bounds it.
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
import type { LlamaWeights } from "@self-extend/models";
import { createModelRopeTable, ForwardPass } from "./forward-pass.js";
import { KeyValueCache } from "./kv-cache.js";
import { referenceCapabilities } from "./reference-capabilities.js";

/** Session options of the reference backend: the v1 options plus two of its own. */
export interface ReferenceSessionOptions extends SessionOptionsV1 {
  /** Tokens per forward block; progress is reported and the signal checked between blocks. Default 64. */
  readonly blockSize?: number;
  /** Let a Self-Extend session (G > 1) pass (L - W) * G + W. Off by default. */
  readonly allowBeyondUsableContext?: boolean;
}

export const defaultBlockSize = 64;

function validateReferenceSessionOptions(
  options: ReferenceSessionOptions,
  trainedContext: number,
): SelfExtendConfig {
  const config = validateSessionOptions(options, referenceCapabilities, "reference");
  const { blockSize } = options;
  if (blockSize !== undefined && (!Number.isSafeInteger(blockSize) || blockSize < 1)) {
    throw new SelfExtendConfigError("blockSize", blockSize, "must be an integer >= 1");
  }
  validateSessionForModel(options, { trainedContext });
  return config;
}

/** Lets timers and abort events run between blocks; setImmediate where it exists (Node), else a timeout. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    if (typeof setImmediate === "function") setImmediate(resolve);
    else setTimeout(resolve, 0);
  });
}

export class ReferenceSession implements SelfExtendSessionV1 {
  readonly options: ReferenceSessionOptions;
  private readonly config: SelfExtendConfig;
  private readonly blockSize: number;
  private readonly forwardPass: ForwardPass;
  private cache: KeyValueCache | undefined;
  private evaluatedCount = 0;
  private readonly lifecycle = new SessionLifecycle();

  constructor(
    private readonly weights: LlamaWeights,
    options: ReferenceSessionOptions,
  ) {
    this.config = validateReferenceSessionOptions(options, weights.description.trainedContext);
    this.options = Object.freeze({ ...options, selfExtend: this.config });
    const { description } = weights;
    this.blockSize = Math.min(options.blockSize ?? defaultBlockSize, options.contextSize);
    const rope = createModelRopeTable(description, this.config, options.contextSize);
    this.forwardPass = new ForwardPass(weights, this.config, rope, this.blockSize);
    this.cache = new KeyValueCache(
      description.layerCount,
      description.kvHeadCount * description.headSize,
      options.contextSize,
    );
  }

  get tokenCount(): number {
    return this.evaluatedCount;
  }

  get cacheBytes(): number {
    return this.cache?.byteLength ?? 0;
  }

  evaluate(tokens: ArrayLike<number>, options: EvaluateOptionsV1 = {}): Promise<EvaluationV1> {
    return this.lifecycle.run(options.signal, (signal) => this.evaluateBlocks(tokens, options, signal));
  }

  private async evaluateBlocks(
    tokens: ArrayLike<number>,
    options: EvaluateOptionsV1,
    signal: AbortSignal,
  ): Promise<EvaluationV1> {
    const cache = this.cache as KeyValueCache;
    const count = tokens.length;
    const vocabularySize = this.weights.description.vocabularySize;
    assertTokensInVocabulary(tokens, vocabularySize);
    const firstPosition = this.evaluatedCount;
    assertSessionLength({
      total: firstPosition + count,
      held: firstPosition,
      contextSize: this.options.contextSize,
      trainedContext: this.weights.description.trainedContext,
      config: this.config,
      allowBeyondUsableContext: this.options.allowBeyondUsableContext,
    });
    const { onProgress } = options;
    signal.throwIfAborted();

    const collector = new LogitCollector(options.logits, count, firstPosition, vocabularySize);
    const blockLogits = new Float32Array(Math.min(this.blockSize, count) * vocabularySize);

    cache.reserve(firstPosition + count);
    return evaluateInBlocks({
      count,
      blockSize: this.blockSize,
      firstPosition,
      collector,
      signal,
      onProgress,
      runBlock: (blockStart, blockCount, rows) => {
        this.forwardPass.evaluateBlock(
          tokens,
          blockStart,
          blockCount,
          firstPosition + blockStart,
          cache,
          rows,
          blockLogits,
          0,
        );
        return blockLogits;
      },
      setTokenCount: (tokenCount) => {
        this.evaluatedCount = tokenCount;
      },
      // Blocks run synchronously: yield so that an abort (or a dispose) can fire between them.
      pause: yieldToEventLoop,
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

  dispose(): Promise<void> {
    return this.lifecycle.dispose(() => {
      this.cache = undefined;
      this.evaluatedCount = 0;
    });
  }
}
