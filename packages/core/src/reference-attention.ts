/**
 * The oracle: exact Self-Extend attention, written for clarity and accumulated in float64.
 *
 * Queries, keys and values arrive un-rotated. Each key is rotated twice, to its neighbor position j
 * and its group position floor(j/G); each query twice, to i and floor(i/G) + W - W/G. For every
 * pair the neighbor dot product is used when i - j < W and the group one otherwise, then ONE
 * softmax runs over the merged scores (the spec's rule). Prefill and decode are the same call:
 * a block of queries against every key up to the last query.
 *
 * Layouts are row-major typed arrays: queries [queryCount, headCount, headSize], keys and values
 * [keyCount, kvHeadCount, headSize], output [queryCount, headCount, headSize]. Query head h reads
 * kv head floor(h / (headCount / kvHeadCount)) (grouped-query attention).
 */
import type { SelfExtendConfig } from "./config.js";
import { validateSelfExtendConfig } from "./config.js";
import { SelfExtendConfigError } from "./errors.js";
import { groupKeyPosition, groupQueryPosition } from "./position-map.js";
import { applyRope, type RopeTable } from "./rope.js";

type NumericArray = Float32Array | Float64Array;

export interface AttentionShape {
  readonly headCount: number;
  readonly kvHeadCount: number;
  readonly headSize: number;
}

export function validateAttentionShape(shape: AttentionShape): AttentionShape {
  for (const field of ["headCount", "kvHeadCount", "headSize"] as const) {
    const value = shape[field];
    if (!Number.isInteger(value) || value < 1)
      throw new SelfExtendConfigError(field, value, "must be an integer >= 1");
  }
  if (shape.headCount % shape.kvHeadCount !== 0) {
    throw new SelfExtendConfigError(
      "kvHeadCount",
      shape.kvHeadCount,
      `must divide headCount (${shape.headCount}) for grouped-query attention`,
    );
  }
  return shape;
}

/** Head vectors rotated to both levels. `neighbor[t]` sits at its exact position, `group[t]` at its grouped one. */
export interface TwoLevelRotation {
  readonly neighbor: Float64Array;
  readonly group: Float64Array;
}

function rotateBothLevels(
  source: NumericArray,
  firstIndex: number,
  count: number,
  headsPerToken: number,
  table: RopeTable,
  groupPosition: (index: number) => number,
): TwoLevelRotation {
  const { headSize } = table.options;
  const width = headsPerToken * headSize;
  if (source.length < count * width) {
    throw new SelfExtendConfigError(
      "length",
      source.length,
      `must hold ${count} x ${headsPerToken} x ${headSize} values`,
    );
  }
  const neighbor = Float64Array.from(source.subarray(0, count * width));
  const group = Float64Array.from(neighbor);
  for (let t = 0; t < count; t++) {
    const index = firstIndex + t;
    const groupPositionOfIndex = groupPosition(index);
    for (let head = 0; head < headsPerToken; head++) {
      const offset = t * width + head * headSize;
      applyRope(neighbor, offset, index, table);
      applyRope(group, offset, groupPositionOfIndex, table);
    }
  }
  return { neighbor, group };
}

/** Keys j = firstKey .. firstKey + count - 1 rotated to j and to floor(j/G). Depends on the key only. */
export function rotateKeysBothLevels(
  keys: NumericArray,
  firstKey: number,
  count: number,
  kvHeadCount: number,
  table: RopeTable,
  config: SelfExtendConfig,
): TwoLevelRotation {
  return rotateBothLevels(keys, firstKey, count, kvHeadCount, table, (j) => groupKeyPosition(j, config));
}

/** Queries i = firstQuery .. rotated to i and to floor(i/G) + W - W/G. */
export function rotateQueriesBothLevels(
  queries: NumericArray,
  firstQuery: number,
  count: number,
  headCount: number,
  table: RopeTable,
  config: SelfExtendConfig,
): TwoLevelRotation {
  return rotateBothLevels(queries, firstQuery, count, headCount, table, (i) => groupQueryPosition(i, config));
}

export interface RotatedAttentionInput {
  readonly shape: AttentionShape;
  readonly config: SelfExtendConfig;
  /** Absolute index of the first query; query q is token queryStart + q. */
  readonly queryStart: number;
  readonly queryCount: number;
  /** Keys 0 .. keyCount - 1 are visible (each query sees only j <= its own index). */
  readonly keyCount: number;
  readonly queries: TwoLevelRotation;
  readonly keys: TwoLevelRotation;
  readonly values: NumericArray;
  /** Score scale, 1/sqrt(headSize) unless the model says otherwise. */
  readonly scale?: number;
  /** Scaled scores become cap * tanh(score / cap) before the softmax (Gemma 2). */
  readonly logitSoftCap?: number;
  /**
   * A sliding-window layer (Gemma 2's local layers): query i sees only keys with i - j < window,
   * all at their exact positions (the neighbor level). Such a layer never sees a distance its
   * window did not train, so Self-Extend leaves it as it is.
   */
  readonly slidingWindow?: number;
}

/** Attention over queries and keys already rotated to both levels. Returns float64 outputs. */
export function attendRotated(input: RotatedAttentionInput): Float64Array {
  const { headCount, kvHeadCount, headSize } = validateAttentionShape(input.shape);
  const { neighborWindow } = validateSelfExtendConfig(input.config);
  const { queryStart, queryCount, keyCount, queries, keys, values } = input;
  if (queryStart + queryCount > keyCount) {
    throw new SelfExtendConfigError(
      "keyCount",
      keyCount,
      `must be >= queryStart + queryCount (${queryStart + queryCount}): every query attends to itself`,
    );
  }
  const scale = input.scale ?? 1 / Math.sqrt(headSize);
  const { logitSoftCap, slidingWindow } = input;
  const headsPerKv = headCount / kvHeadCount;
  const queryWidth = headCount * headSize;
  const keyWidth = kvHeadCount * headSize;
  const output = new Float64Array(queryCount * queryWidth);
  const scores = new Float64Array(keyCount);

  for (let q = 0; q < queryCount; q++) {
    const queryIndex = queryStart + q;
    const visible = queryIndex + 1;
    // Keys firstVisible .. firstNeighbor - 1 are at the group level, the rest are neighbors
    // (i - j < W). Two plain loops instead of a test per pair: same arithmetic, far fewer branches.
    const firstVisible = slidingWindow === undefined ? 0 : Math.max(0, queryIndex - slidingWindow + 1);
    const firstNeighbor =
      slidingWindow === undefined ? Math.max(0, queryIndex - neighborWindow + 1) : firstVisible;
    for (let head = 0; head < headCount; head++) {
      const queryOffset = q * queryWidth + head * headSize;
      const kvOffset = Math.floor(head / headsPerKv) * headSize;
      let largest = Number.NEGATIVE_INFINITY;
      for (const [query, key, from, to] of [
        [queries.group, keys.group, firstVisible, firstNeighbor],
        [queries.neighbor, keys.neighbor, firstNeighbor, visible],
      ] as const) {
        for (let j = from; j < to; j++) {
          const keyOffset = j * keyWidth + kvOffset;
          let dot = 0;
          for (let d = 0; d < headSize; d++) dot += query[queryOffset + d] * key[keyOffset + d];
          const scaled = dot * scale;
          const score = logitSoftCap === undefined ? scaled : logitSoftCap * Math.tanh(scaled / logitSoftCap);
          scores[j] = score;
          if (score > largest) largest = score;
        }
      }
      let total = 0;
      for (let j = firstVisible; j < visible; j++) {
        const weight = Math.exp(scores[j] - largest);
        scores[j] = weight;
        total += weight;
      }
      for (let j = firstVisible; j < visible; j++) {
        const weight = scores[j] / total;
        const valueOffset = j * keyWidth + kvOffset;
        for (let d = 0; d < headSize; d++) output[queryOffset + d] += weight * values[valueOffset + d];
      }
    }
  }
  return output;
}

export interface ReferenceAttentionInput {
  readonly shape: AttentionShape;
  readonly config: SelfExtendConfig;
  readonly rope: RopeTable;
  /** Un-rotated queries [queryCount, headCount, headSize]. */
  readonly queries: NumericArray;
  /** Un-rotated keys [keyCount, kvHeadCount, headSize] for tokens 0 .. keyCount - 1. */
  readonly keys: NumericArray;
  /** Values [keyCount, kvHeadCount, headSize]. */
  readonly values: NumericArray;
  readonly queryCount: number;
  readonly keyCount: number;
  /** Absolute index of the first query; defaults to keyCount - queryCount (the newest tokens). */
  readonly queryStart?: number;
  readonly scale?: number;
  readonly logitSoftCap?: number;
  readonly slidingWindow?: number;
}

/**
 * Exact Self-Extend attention of a block of new queries against all cached keys.
 * With G = 1 it is plain causal attention with RoPE.
 */
export function referenceAttention(input: ReferenceAttentionInput): Float64Array {
  const shape = validateAttentionShape(input.shape);
  const config = validateSelfExtendConfig(input.config);
  if (input.rope.options.headSize !== shape.headSize) {
    throw new SelfExtendConfigError(
      "rope.headSize",
      input.rope.options.headSize,
      `must equal headSize (${shape.headSize})`,
    );
  }
  const queryStart = input.queryStart ?? input.keyCount - input.queryCount;
  return attendRotated({
    shape,
    config,
    queryStart,
    queryCount: input.queryCount,
    keyCount: input.keyCount,
    queries: rotateQueriesBothLevels(
      input.queries,
      queryStart,
      input.queryCount,
      shape.headCount,
      input.rope,
      config,
    ),
    keys: rotateKeysBothLevels(input.keys, 0, input.keyCount, shape.kvHeadCount, input.rope, config),
    values: input.values,
    scale: input.scale,
    logitSoftCap: input.logitSoftCap,
    slidingWindow: input.slidingWindow,
  });
}
