/**
 * One sequence on ONNX Runtime. The KV cache lives in fixed-capacity float32 buffers allocated once
 * per session (token-major [contextSize, kvHeads, headSize] per layer: neighbor-rotated keys,
 * group-rotated keys for Self-Extend, values). Each run feeds the filled prefix as zero-copy views
 * and gets back only the new rows, which are written in place at the end of the prefix.
 *
 * Prefill is chunked (`prefillChunkSize` tokens per run): every query of a chunk gets its own exact
 * positions in the graph, so chunked prefill is exact, and the signal and progress are checked and
 * reported between chunks.
 *
 * Context rules match the reference backend: never more than `contextSize` tokens; with G > 1,
 * W < L and contextSize <= (L - W) * G + W, refused at creation (core's validateSessionForModel);
 * plain attention may run past L (baselines).
 */
import {
  assertSessionLength,
  assertTokensInVocabulary,
  createRopeTable,
  type EvaluateOptionsV1,
  type EvaluationV1,
  evaluateInBlocks,
  groupQueryPosition,
  LogitCollector,
  type RopeOptions,
  type RopeTable,
  ropePairIndices,
  type SelfExtendConfig,
  SelfExtendConfigError,
  type SelfExtendSessionV1,
  SessionLifecycle,
  type SessionOptionsV1,
  validateSessionForModel,
  validateSessionOptions,
} from "@self-extend/core";
import { globalRopeOptions, type LlamaModelDescription } from "@self-extend/models";
import type { InferenceSession, Tensor } from "onnxruntime-node";
import { graphNames } from "./decoder-export.js";
import { onnxRuntimeCapabilities } from "./onnxruntime-capabilities.js";
import type { OnnxRuntime } from "./onnxruntime-loader.js";

export type AttentionGraphKind = "self-extend" | "plain";

export interface OnnxRuntimeSessionOptions extends SessionOptionsV1 {
  /** Tokens per ONNX Runtime run during prefill. Default 128. */
  readonly prefillChunkSize?: number;
  /**
   * Which export runs the session. Default: `plain` when G = 1 (plain attention is what G = 1
   * means), `self-extend` otherwise. `self-extend` with G = 1 exists to test that both agree.
   */
  readonly attentionGraph?: AttentionGraphKind;
}

export const defaultPrefillChunkSize = 128;

/** Every check of the options, made once when the model creates a session (the edge). */
export function validateOnnxRuntimeSessionOptions(
  options: OnnxRuntimeSessionOptions,
  trainedContext: number,
): SelfExtendConfig {
  const { prefillChunkSize, attentionGraph } = options;
  const config = validateSessionOptions(options, onnxRuntimeCapabilities, "onnxruntime");
  if (prefillChunkSize !== undefined && (!Number.isSafeInteger(prefillChunkSize) || prefillChunkSize < 1)) {
    throw new SelfExtendConfigError("prefillChunkSize", prefillChunkSize, "must be an integer >= 1");
  }
  if (attentionGraph !== undefined && attentionGraph !== "plain" && attentionGraph !== "self-extend") {
    throw new SelfExtendConfigError("attentionGraph", attentionGraph, 'must be "plain" or "self-extend"');
  }
  if (attentionGraph === "plain" && config.groupSize !== 1) {
    throw new SelfExtendConfigError(
      "attentionGraph",
      attentionGraph,
      `"plain" needs groupSize = 1 (got ${config.groupSize})`,
    );
  }
  validateSessionForModel(options, { trainedContext });
  return config;
}

export function attentionGraphOf(
  options: OnnxRuntimeSessionOptions,
  config: SelfExtendConfig,
): AttentionGraphKind {
  return options.attentionGraph ?? (config.groupSize === 1 ? "plain" : "self-extend");
}

/**
 * Core's RoPE table expanded to full head rows: cos/sin of each pair written at both of the pair's
 * indices, cos = 1 and sin = 0 on dimensions past the rotary dimension (see the attention graph).
 */
export function expandedRopeTable(
  description: LlamaModelDescription,
  positionCount: number,
  contextSize: number = positionCount,
): {
  readonly cos: Float32Array;
  readonly sin: Float32Array;
  readonly localCos?: Float32Array;
  readonly localSin?: Float32Array;
} {
  const { headSize, rotaryDimension, ropeLayout } = description;
  const expand = (options: Partial<RopeOptions>) =>
    expandRopeRows(
      createRopeTable({ layout: ropeLayout, headSize, rotaryDimension, ...options }, positionCount),
      description,
      positionCount,
    );
  const global = expand(globalRopeOptions(description, contextSize));
  const localBase = description.slidingWindow?.ropeBase;
  if (localBase === undefined) return global;
  // Gemma 3's local layers: their own base, neither the global scaling nor frequency factors.
  const local = expand({ base: localBase });
  return { ...global, localCos: local.cos, localSin: local.sin };
}

function expandRopeRows(
  table: RopeTable,
  description: Pick<LlamaModelDescription, "headSize" | "rotaryDimension" | "ropeLayout">,
  positionCount: number,
): { readonly cos: Float32Array; readonly sin: Float32Array } {
  const { headSize, rotaryDimension, ropeLayout } = description;
  const pairs = rotaryDimension / 2;
  const cos = new Float32Array(positionCount * headSize).fill(1);
  const sin = new Float32Array(positionCount * headSize);
  for (let position = 0; position < positionCount; position++) {
    for (let pair = 0; pair < pairs; pair++) {
      const [first, second] = ropePairIndices(ropeLayout, pair, rotaryDimension);
      const c = table.cos[position * pairs + pair];
      const s = table.sin[position * pairs + pair];
      cos[position * headSize + first] = c;
      cos[position * headSize + second] = c;
      sin[position * headSize + first] = s;
      sin[position * headSize + second] = s;
    }
  }
  return { cos, sin };
}

/** What a session needs to know of its model. */
export type SessionModelShape = Pick<
  LlamaModelDescription,
  "layerCount" | "kvHeadCount" | "headSize" | "vocabularySize" | "trainedContext"
>;

/** Full-head cos/sin rows for positions 0 .. positionCount - 1 (see expandedRopeTable). */
export type RopeTableSource = (positionCount: number) => {
  readonly cos: Float32Array;
  readonly sin: Float32Array;
  /** The local layers' own table (Gemma 3), fed as `local_rope_cos` / `local_rope_sin`. */
  readonly localCos?: Float32Array;
  readonly localSin?: Float32Array;
};

/** How many RoPE rows a session needs: every neighbor position and every group query position. */
export function ropePositionCount(
  contextSize: number,
  config: SelfExtendConfig,
  attentionGraph: AttentionGraphKind,
): number {
  return (
    Math.max(
      contextSize - 1,
      attentionGraph === "self-extend" ? groupQueryPosition(contextSize - 1, config) : 0,
    ) + 1
  );
}

interface LayerCache {
  readonly key: Float32Array;
  readonly keyGroup?: Float32Array;
  readonly value: Float32Array;
}

export class OnnxRuntimeSession implements SelfExtendSessionV1 {
  readonly options: OnnxRuntimeSessionOptions;
  readonly attentionGraph: AttentionGraphKind;
  private readonly config: SelfExtendConfig;
  private readonly chunkSize: number;
  private readonly rowSize: number;
  private readonly ropeCos: Tensor;
  private readonly ropeSin: Tensor;
  private readonly localRope: { readonly cos: Tensor; readonly sin: Tensor } | undefined;
  private caches: LayerCache[] | undefined;
  /** The cache inputs the graph declares (graphNames: whole past, or far and recent rows). */
  private readonly cacheInputNames: ReadonlySet<string>;
  private evaluatedCount = 0;
  private readonly lifecycle = new SessionLifecycle();

  /** Made by OnnxRuntimeModel.createSession, which has validated the options into `config`. */
  constructor(
    private readonly runtime: OnnxRuntime,
    private readonly inference: InferenceSession,
    private readonly description: SessionModelShape,
    options: OnnxRuntimeSessionOptions,
    config: SelfExtendConfig,
    /** Our exports use core's table (expandedRopeTable); imported exports bring their own RoPE. */
    ropeTableOf: RopeTableSource,
  ) {
    this.config = config;
    this.options = Object.freeze({ ...options, selfExtend: this.config });
    this.attentionGraph = attentionGraphOf(options, this.config);
    const { contextSize } = options;
    this.chunkSize = Math.min(options.prefillChunkSize ?? defaultPrefillChunkSize, contextSize);
    const { layerCount, kvHeadCount, headSize } = description;
    this.rowSize = kvHeadCount * headSize;
    const positionCount = ropePositionCount(contextSize, this.config, this.attentionGraph);
    const rope = ropeTableOf(positionCount);
    this.ropeCos = new runtime.Tensor("float32", rope.cos, [positionCount, headSize]);
    this.ropeSin = new runtime.Tensor("float32", rope.sin, [positionCount, headSize]);
    this.localRope =
      rope.localCos === undefined || rope.localSin === undefined
        ? undefined
        : {
            cos: new runtime.Tensor("float32", rope.localCos, [positionCount, headSize]),
            sin: new runtime.Tensor("float32", rope.localSin, [positionCount, headSize]),
          };
    this.cacheInputNames = new Set(inference.inputNames);
    const capacity = contextSize * this.rowSize;
    this.caches = Array.from({ length: layerCount }, () => ({
      key: new Float32Array(capacity),
      ...(this.attentionGraph === "self-extend" ? { keyGroup: new Float32Array(capacity) } : {}),
      value: new Float32Array(capacity),
    }));
  }

  get tokenCount(): number {
    return this.evaluatedCount;
  }

  /** Keys (twice for Self-Extend: neighbor and group rotations) and values, allocated once. */
  get cacheBytes(): number {
    return (this.caches ?? []).reduce(
      (total, cache) =>
        total + cache.key.byteLength + (cache.keyGroup?.byteLength ?? 0) + cache.value.byteLength,
      0,
    );
  }

  evaluate(tokens: ArrayLike<number>, options: EvaluateOptionsV1 = {}): Promise<EvaluationV1> {
    return this.lifecycle.run(options.signal, (signal) => this.evaluateChunks(tokens, options, signal));
  }

  private async evaluateChunks(
    tokens: ArrayLike<number>,
    options: EvaluateOptionsV1,
    signal: AbortSignal,
  ): Promise<EvaluationV1> {
    const caches = this.caches as LayerCache[];
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
    return evaluateInBlocks({
      count,
      blockSize: this.chunkSize,
      firstPosition,
      collector,
      signal,
      onProgress,
      runBlock: (chunkStart, chunkCount, rows) =>
        this.runChunk(tokens, chunkStart, chunkCount, firstPosition + chunkStart, caches, rows),
      setTokenCount: (tokenCount) => {
        this.evaluatedCount = tokenCount;
      },
    });
  }

  private async runChunk(
    tokens: ArrayLike<number>,
    start: number,
    count: number,
    firstPosition: number,
    caches: LayerCache[],
    rows: readonly number[],
  ): Promise<Float32Array> {
    const { Tensor } = this.runtime;
    const { kvHeadCount, headSize } = this.description;
    const inputIds = new BigInt64Array(count);
    const positions = new BigInt64Array(count);
    for (let index = 0; index < count; index++) {
      inputIds[index] = BigInt(tokens[start + index]);
      positions[index] = BigInt(firstPosition + index);
    }
    // The classifier needs at least one row; when no logits are wanted the last row is computed
    // and dropped.
    const logitRows = rows.length > 0 ? rows : [count - 1];
    const feeds: Record<string, Tensor> = {
      [graphNames.inputIds]: new Tensor("int64", inputIds, [count]),
      [graphNames.positions]: new Tensor("int64", positions, [count]),
      [graphNames.logitIndices]: new Tensor("int64", BigInt64Array.from(logitRows, BigInt), [
        logitRows.length,
      ]),
      [graphNames.ropeCos]: this.ropeCos,
      [graphNames.ropeSin]: this.ropeSin,
      ...(this.localRope === undefined
        ? {}
        : { [graphNames.localRopeCos]: this.localRope.cos, [graphNames.localRopeSin]: this.localRope.sin }),
    };
    // Every cache input the graph declares is a view of rows of a cache buffer, never a copy
    // (LayerPastInputs): the whole past [0, p), or Self-Extend's far rows [0, S) and recent rows
    // [S, p), S = max(0, p - W + 1), as the graph computes S.
    const filled = firstPosition * this.rowSize;
    const farCount =
      this.attentionGraph === "self-extend" ? Math.max(0, firstPosition - this.config.neighborWindow + 1) : 0;
    const rowsOf = (buffer: Float32Array | undefined, first: number, end: number) => {
      if (buffer === undefined)
        throw new Error("the graph reads grouped keys a plain session does not cache");
      return new Tensor("float32", buffer.subarray(first * this.rowSize, end * this.rowSize), [
        end - first,
        kvHeadCount,
        headSize,
      ]);
    };
    caches.forEach((cache, layer) => {
      const views = [
        [graphNames.pastKey(layer), cache.key, 0, firstPosition],
        [graphNames.pastValue(layer), cache.value, 0, firstPosition],
        [graphNames.farKeyGroup(layer), cache.keyGroup, 0, farCount],
        [graphNames.farValue(layer), cache.value, 0, farCount],
        [graphNames.recentKey(layer), cache.key, farCount, firstPosition],
        [graphNames.recentKeyGroup(layer), cache.keyGroup, farCount, firstPosition],
        [graphNames.recentValue(layer), cache.value, farCount, firstPosition],
      ] as const;
      for (const [name, buffer, first, end] of views) {
        if (this.cacheInputNames.has(name)) feeds[name] = rowsOf(buffer, first, end);
      }
    });
    const results = await this.inference.run(feeds);
    caches.forEach((cache, layer) => {
      cache.key.set(results[graphNames.presentKey(layer)].data as Float32Array, filled);
      if (cache.keyGroup !== undefined) {
        cache.keyGroup.set(results[graphNames.presentKeyGroup(layer)].data as Float32Array, filled);
      }
      cache.value.set(results[graphNames.presentValue(layer)].data as Float32Array, filled);
    });
    const output = results[graphNames.logits].data as Float32Array;
    return rows.length > 0 ? output : new Float32Array(0);
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
      this.caches = undefined;
      this.evaluatedCount = 0;
    });
  }
}
