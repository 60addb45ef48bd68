/**
 * One sequence on the reference backend: a float64 KV cache and a forward pass that evaluates
 * blocks of tokens. Everything is synchronous arithmetic; the session yields to the event loop
 * between blocks so that an AbortSignal fired by a timer or a user can interrupt a long prefill.
 *
 * Context rules (checked before any work of an evaluation is done):
 * - the session never holds more than `contextSize` tokens;
 * - with G > 1 the total may not pass (L - W) * G + W, core's ContextLengthError, unless the
 *   reference-only option `allowBeyondUsableContext` is set (used to reproduce experiments that go
 *   past the limit on purpose, such as the spec's W=256 G=4 row at 2048 tokens);
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
  type SessionOptionsV1,
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

function validateReferenceSessionOptions(options: ReferenceSessionOptions): SelfExtendConfig {
  const config = validateSessionOptions(options, referenceCapabilities, "reference");
  const { blockSize } = options;
  if (blockSize !== undefined && (!Number.isSafeInteger(blockSize) || blockSize < 1)) {
    throw new SelfExtendConfigError("blockSize", blockSize, "must be an integer >= 1");
  }
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
  private busy = false;

  constructor(
    private readonly weights: LlamaWeights,
    options: ReferenceSessionOptions,
  ) {
    this.config = validateReferenceSessionOptions(options);
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

  private requireCache(): KeyValueCache {
    if (this.cache === undefined) throw new Error("the session was disposed");
    if (this.busy) throw new Error("the session is busy: await the previous evaluate or decode first");
    return this.cache;
  }

  async evaluate(tokens: ArrayLike<number>, options: EvaluateOptionsV1 = {}): Promise<EvaluationV1> {
    const cache = this.requireCache();
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
    const { signal, onProgress } = options;
    signal?.throwIfAborted();

    const collector = new LogitCollector(options.logits, count, firstPosition, vocabularySize);
    const blockLogits = new Float32Array(Math.min(this.blockSize, count) * vocabularySize);

    this.busy = true;
    try {
      cache.reserve(firstPosition + count);
      return await evaluateInBlocks({
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
        // Blocks run synchronously: yield so that an abort can fire between them.
        pause: yieldToEventLoop,
        assertUsable: () => {
          if (this.cache !== cache) throw new Error("the session was disposed during an evaluation");
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
    this.requireCache();
    this.evaluatedCount = 0;
  }

  async dispose(): Promise<void> {
    this.cache = undefined;
    this.evaluatedCount = 0;
  }
}
