/**
 * A Llama-family forward pass (llama, mistral, qwen2, phi3, gemma, gemma2, gemma3) over a block of
 * consecutive tokens: embedding, then per layer RMSNorm -> q/k/v (+ biases) -> exact Self-Extend
 * attention -> output projection -> residual -> RMSNorm -> SwiGLU FFN -> residual, then the final
 * norm and the classifier for the rows whose logits are wanted. Gemma's departures, as llama.cpp
 * builds them: embeddings scaled, GeGLU, and for Gemma 2 a scale and soft-cap on the scores, an
 * RMSNorm after attention and after the FFN (before each residual add), local layers with a sliding
 * window and exact positions, and a soft-cap on the logits; Gemma 3 also RMS-normalises each query
 * and key head before RoPE, and rotates its local layers with their own base (no scaling).
 *
 * Attention is core's: new keys are rotated to both levels once (rotateKeysBothLevels) and appended
 * to the cache, the block's queries are rotated to both levels, and attendRotated runs the one
 * merged softmax over every cached key. (A restated kernel with branch-free key ranges and
 * caller-owned buffers measured no faster, within noise, so the oracle keeps core's code.) A block of 1 token (decode) and a block of many (prefill)
 * run the same code, so chunked prefill and token-by-token decoding agree to rounding.
 */
import {
  type AttentionShape,
  attendRotated,
  createRopeTable,
  groupQueryPosition,
  type RopeTable,
  rotateKeysBothLevels,
  rotateQueriesBothLevels,
  type SelfExtendConfig,
} from "@self-extend/core";
import { globalRopeOptions, type LlamaModelDescription, type LlamaWeights } from "@self-extend/models";
import type { KeyValueCache } from "./kv-cache.js";
import { addInPlace, geluTanhGluInPlace, projectRows, rmsNormRows, swiGluInPlace } from "./matrix.js";

/** Creates the RoPE table a session of `contextSize` tokens needs (neighbor and group positions). */
export function createModelRopeTable(
  description: LlamaModelDescription,
  config: SelfExtendConfig,
  contextSize: number,
): RopeTable {
  const largestPosition = Math.max(contextSize - 1, groupQueryPosition(contextSize - 1, config));
  return createRopeTable(globalRopeOptions(description, contextSize), largestPosition + 1);
}

/** The buffers one block needs, allocated once per session and reused for every block. */
class BlockWorkspace {
  readonly residual: Float64Array;
  readonly normalized: Float64Array;
  readonly queries: Float64Array;
  readonly keys: Float64Array;
  readonly values: Float64Array;
  readonly projected: Float64Array;
  readonly gate: Float64Array;
  readonly up: Float64Array;
  readonly logitRows: Float64Array;
  readonly logits: Float64Array;

  constructor(
    description: LlamaModelDescription,
    readonly blockSize: number,
  ) {
    const { embeddingSize, headCount, kvHeadCount, headSize, feedForwardSize, vocabularySize } = description;
    this.residual = new Float64Array(blockSize * embeddingSize);
    this.normalized = new Float64Array(blockSize * embeddingSize);
    this.queries = new Float64Array(blockSize * headCount * headSize);
    this.keys = new Float64Array(blockSize * kvHeadCount * headSize);
    this.values = new Float64Array(blockSize * kvHeadCount * headSize);
    this.projected = new Float64Array(blockSize * embeddingSize);
    this.gate = new Float64Array(blockSize * feedForwardSize);
    this.up = new Float64Array(blockSize * feedForwardSize);
    this.logitRows = new Float64Array(blockSize * embeddingSize);
    this.logits = new Float64Array(blockSize * vocabularySize);
  }
}

export class ForwardPass {
  private readonly description: LlamaModelDescription;
  private readonly shape: AttentionShape;
  private readonly workspace: BlockWorkspace;
  /** Local layers' own RoPE table (Gemma 3: base 10000, no scaling); absent: they use `rope`. */
  private readonly localRope: RopeTable | undefined;

  constructor(
    private readonly weights: LlamaWeights,
    private readonly config: SelfExtendConfig,
    private readonly rope: RopeTable,
    /** The most tokens one call of {@link evaluateBlock} takes. */
    readonly blockSize: number,
  ) {
    this.description = weights.description;
    const { headCount, kvHeadCount, headSize } = this.description;
    this.shape = { headCount, kvHeadCount, headSize };
    this.workspace = new BlockWorkspace(this.description, blockSize);
    const localBase = this.description.slidingWindow?.ropeBase;
    this.localRope =
      localBase === undefined
        ? undefined
        : createRopeTable(
            {
              layout: this.description.ropeLayout,
              headSize,
              rotaryDimension: this.description.rotaryDimension,
              base: localBase,
            },
            rope.positionCount,
          );
  }

  /**
   * Runs tokens[tokenOffset .. tokenOffset + count) at positions firstPosition .. (the cache must
   * already hold positions 0 .. firstPosition - 1 and have room for the block), appends their keys
   * and values to the cache, and writes the logits of the block rows `logitRows` (ascending indices
   * within the block) to `logits` starting at `logitsOffset`, as float32.
   */
  evaluateBlock(
    tokens: ArrayLike<number>,
    tokenOffset: number,
    count: number,
    firstPosition: number,
    cache: KeyValueCache,
    logitRows: readonly number[],
    logits: Float32Array,
    logitsOffset: number,
  ): void {
    if (count < 1 || count > this.blockSize) {
      throw new RangeError(`a block holds 1 to ${this.blockSize} tokens; got ${count}`);
    }
    const { description, weights, workspace, shape, config, rope } = this;
    const { embeddingSize, headCount, kvHeadCount, headSize, feedForwardSize, vocabularySize, normEpsilon } =
      description;
    const queryWidth = headCount * headSize;
    const keyWidth = kvHeadCount * headSize;
    const { residual, normalized, queries, keys, values, projected, gate, up } = workspace;

    for (let row = 0; row < count; row++) {
      const token = tokens[tokenOffset + row];
      residual.set(
        weights.tokenEmbedding.subarray(token * embeddingSize, (token + 1) * embeddingSize),
        row * embeddingSize,
      );
    }
    const { embeddingScale, attentionScale, attentionLogitSoftCap, slidingWindow } = description;
    if (embeddingScale !== undefined) {
      for (let index = 0; index < count * embeddingSize; index++) residual[index] *= embeddingScale;
    }
    const gatedActivation =
      description.feedForwardActivation === "gelu-tanh" ? geluTanhGluInPlace : swiGluInPlace;

    const keyCount = firstPosition + count;
    for (let layerIndex = 0; layerIndex < weights.layers.length; layerIndex++) {
      const layer = weights.layers[layerIndex];
      rmsNormRows(residual, count, embeddingSize, layer.attentionNorm, normEpsilon, normalized);
      projectRows(layer.query, queryWidth, embeddingSize, normalized, count, queries, layer.queryBias);
      projectRows(layer.key, keyWidth, embeddingSize, normalized, count, keys, layer.keyBias);
      projectRows(layer.value, keyWidth, embeddingSize, normalized, count, values, layer.valueBias);
      if (layer.queryNorm !== undefined && layer.keyNorm !== undefined) {
        // Gemma 3: every head normalised on its own, with the layer's per-head weights, before RoPE.
        rmsNormRows(queries, count * headCount, headSize, layer.queryNorm, normEpsilon, queries);
        rmsNormRows(keys, count * kvHeadCount, headSize, layer.keyNorm, normEpsilon, keys);
      }
      const isLocal = slidingWindow?.localLayers[layerIndex] === true;
      const layerRope = isLocal && this.localRope !== undefined ? this.localRope : rope;

      const rotatedKeys = rotateKeysBothLevels(keys, firstPosition, count, kvHeadCount, layerRope, config);
      cache.write(layerIndex, firstPosition, rotatedKeys, values, count);
      const layerCache = cache.layer(layerIndex);
      const attended = attendRotated({
        shape,
        config,
        queryStart: firstPosition,
        queryCount: count,
        keyCount,
        queries: rotateQueriesBothLevels(queries, firstPosition, count, headCount, layerRope, config),
        keys: layerCache.keys,
        values: layerCache.values,
        scale: attentionScale,
        logitSoftCap: attentionLogitSoftCap,
        slidingWindow: isLocal ? slidingWindow?.size : undefined,
      });
      projectRows(layer.output, embeddingSize, queryWidth, attended, count, projected);
      this.postNorm(projected, count, layer.postAttentionNorm);
      addInPlace(residual, projected, count * embeddingSize);

      rmsNormRows(residual, count, embeddingSize, layer.feedForwardNorm, normEpsilon, normalized);
      projectRows(layer.gate, feedForwardSize, embeddingSize, normalized, count, gate);
      projectRows(layer.up, feedForwardSize, embeddingSize, normalized, count, up);
      gatedActivation(gate, up, count * feedForwardSize);
      projectRows(layer.down, embeddingSize, feedForwardSize, gate, count, projected);
      this.postNorm(projected, count, layer.postFeedForwardNorm);
      addInPlace(residual, projected, count * embeddingSize);
    }

    if (logitRows.length === 0) return;
    // Only the rows asked for pay for the final norm and the classifier (the largest matrix).
    const selected = workspace.normalized;
    for (let index = 0; index < logitRows.length; index++) {
      const row = logitRows[index];
      selected.set(residual.subarray(row * embeddingSize, (row + 1) * embeddingSize), index * embeddingSize);
    }
    rmsNormRows(
      selected,
      logitRows.length,
      embeddingSize,
      weights.outputNorm,
      normEpsilon,
      workspace.logitRows,
    );
    projectRows(
      weights.output,
      vocabularySize,
      embeddingSize,
      workspace.logitRows,
      logitRows.length,
      workspace.logits,
    );
    const length = logitRows.length * vocabularySize;
    const cap = description.finalLogitSoftCap;
    for (let index = 0; index < length; index++) {
      const logit = workspace.logits[index];
      logits[logitsOffset + index] = cap === undefined ? logit : cap * Math.tanh(logit / cap);
    }
  }

  /** Gemma 2's RMSNorm of a block's attention or FFN output, in place; nothing without the weight. */
  private postNorm(rows: Float64Array, count: number, weight: Float32Array | undefined): void {
    if (weight === undefined) return;
    const { embeddingSize, normEpsilon } = this.description;
    const normalized = this.workspace.normalized;
    rmsNormRows(rows, count, embeddingSize, weight, normEpsilon, normalized);
    rows.set(normalized.subarray(0, count * embeddingSize));
  }
}
