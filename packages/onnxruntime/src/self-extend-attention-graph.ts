/**
 * Attention in standard ONNX ops: the verified Self-Extend block of the runtime notes, and plain
 * causal attention for baselines.
 *
 * Both score the keys in two levels, each normalised on its own and merged through their
 * log-sum-exps (buildLayerAttention): a past level that reads past cache rows as they are fed (no
 * Slice, Gather, Concat or Transpose copies them: on a 32k-token cache those copies cost more than
 * the attention itself), and a recent level. Plain attention's past level is every past key,
 * unmasked, and its recent level the run's new keys under the causal mask.
 *
 * Self-Extend (spec: neighbor iff 0 <= i - j < W; otherwise the group level):
 * - each new key is rotated twice, at j (neighbor level) and at floor(j/G) (group level). Both
 *   depend on the key alone, so both go to the cache once and nothing is re-rotated later
 *   (the cache is 1.5x a plain one: two key tensors and one value tensor);
 * - each query is rotated at i and at floor(i/G) + W - W/G;
 * - the keys are scored in two levels (SelfExtendLevels): the far level, the past keys [0, S) at
 *   the group positions (S = max(0, p - W + 1)), and the recent level, keys [S, N), at the
 *   neighbor positions except where i - j >= W. Each level is normalised on its own and the two
 *   are merged through their log-sum-exps, so every pair is counted once and the softmax is the
 *   spec's. Decoding (T = 1) thus scores p + W keys, not 2N. The session feeds the past already
 *   cut at S (LayerPastInputs "split": two views of each cache buffer), so the far level reads its
 *   rows in place without a mask, and the recent level copies only its W - 1 past rows, once, when
 *   it appends the run's new rows to them.
 *
 * RoPE is `x * cos + (x P) * sin` with P a signed permutation matrix built from the model's pair
 * layout (interleaved or half-split) and cos/sin rows expanded to the full head (cos = 1, sin = 0
 * past the rotary dimension, so partial rotary needs no slicing). P holds only 0 and +-1, so the
 * product is exact; the layout lives in data, not in graph structure.
 *
 * GQA: queries are shaped [kvHeads, repeat * T, headSize], so each key head serves its query heads
 * in one product without copying keys. The cache rows ([keys, kvHeads, headSize], token-major) reach
 * the products through a Transpose alone ([1, 2, 0] for keys, [1, 0, 2] for values), with every
 * operand of rank 3: ONNX Runtime's MatMul-Transpose fusion then turns each pair into one
 * FusedMatMul (transBatchB) that reads the rows in place with strides, so the cache is never
 * transposed in memory. Masks are laid out [repeat * T, keys] to match the score rows.
 *
 * Gemma 2's local layers (a sliding window of K keys, 0 <= i - j < K) attend at exact positions in
 * plain and Self-Extend graphs alike: every distance they see is below K <= L, so Self-Extend leaves
 * them as trained. They score only keys [max(0, p - K + 1), N), the neighbor level's range with K
 * for W, so decoding reads the last K keys. Their grouped keys still go to the cache (the session's
 * cache layout is the same for every layer) but are never read. Soft-capped scores
 * (cap * tanh(score / cap)) are capped before the mask is added, so masked pairs stay at -inf.
 */
import { type RopeLayout, ropePairIndices, type SelfExtendConfig } from "@self-extend/core";
import type { LayerPastInputs } from "./decoder-export.js";
import type { OnnxGraphBuilder } from "./onnx-graph-builder.js";

export interface AttentionShape {
  readonly headCount: number;
  readonly kvHeadCount: number;
  readonly headSize: number;
}

/** Values every layer's attention shares, computed once per graph. */
export interface AttentionContext {
  readonly shape: AttentionShape;
  /** [headSize, headSize] signed permutation of RoPE. */
  readonly rotation: string;
  /** [T, 1, headSize] cos/sin at i (queries and keys at the neighbor level). */
  readonly neighborCos: string;
  readonly neighborSin: string;
  /** Self-Extend only: cos/sin at floor(i/G) + W - W/G (queries) and floor(i/G) (keys). */
  readonly groupQueryCos?: string;
  readonly groupQuerySin?: string;
  readonly groupKeyCos?: string;
  readonly groupKeySin?: string;
  /** Self-Extend only: the key ranges and masks of the two levels (see the file comment). */
  readonly levels?: SelfExtendLevels;
  /** p, the cached tokens, and N = p + T, as 1-element int64. */
  readonly pastCount: string;
  readonly keyCount: string;
  /**
   * Plain attention: [repeat * T, T] float over the run's new keys [p, N) (row r * T + t is query
   * t's), 0 where j <= i, else -inf. Every past key is seen by every query, without a mask.
   */
  readonly causalMask?: string;
  /** What the two-level merge of plain and Self-Extend layers shares (see buildLayerAttention). */
  readonly merge: LevelMerge;
  /** Graphs of models with sliding-window layers: the key range and mask those layers use. */
  readonly slidingWindow?: SlidingWindowLevel;
}

export interface LevelMerge {
  /** [-1]: the reductions' axes. */
  readonly lastAxis: string;
  /** [-1e30], the log-sum-exp of a level without keys, and the float 0 of its context. */
  readonly emptyLevelLogSumExp: string;
  readonly zero: string;
  /** p > 0, as a 1-element bool: the past level has keys to score. */
  readonly hasPast: string;
}

export interface SlidingWindowLevel {
  /** max(0, p - K + 1), as a 1-element int64: a local layer's keys are [start, N). */
  readonly keyStart: string;
  /** [T, 1, headSize] cos/sin at i from the local layers' own table (Gemma 3); absent: neighborCos/Sin. */
  readonly cos?: string;
  readonly sin?: string;
  /** [repeat * T, N - start] float: 0 where 0 <= i - j < K, else -inf. */
  readonly mask: string;
  /** 1-element int64 constants for Slice: axis 0 and an end past any row count. */
  readonly axisZero: string;
  readonly largestIndex: string;
}

/**
 * Self-Extend's keys in two levels, so that neither the scores nor the values are ever concatenated
 * across levels (see buildLayerAttention):
 * - far keys [0, S), S = max(0, p - W + 1): older than W for every query of the run, scored at the
 *   group positions, read from the far rows the session feeds (LayerPastInputs "split");
 * - recent keys [S, N): the recent past rows [S, p) the session feeds, then the run's new rows: the
 *   neighbor keys of every query, scored at exact positions, and the few keys [S, R),
 *   R = max(S, N - W), that some later query of the same run already sees at the group level (none
 *   when T = 1), whose group scores replace the neighbor ones there.
 */
export interface SelfExtendLevels {
  /**
   * R - S, R = max(S, N - W), as a 1-element int64: recent keys [S, R) are group keys of some
   * query, and R - S is their end among the recent past rows, which start at S.
   */
  readonly recentGroupPastEnd: string;
  /** max(S - p, 0) and max(R - p, 0): the part of [S, R) among the run's new rows. */
  readonly recentGroupNewStart: string;
  readonly recentGroupNewEnd: string;
  /** [0, N - R]: Pad's pads that widen the [S, R) group scores to the recent level's N - S columns. */
  readonly recentGroupPads: string;
  /** R > S, as a 1-element bool: some recent key is at the group level (never when decoding). */
  readonly hasRecentGroupKeys: string;
  /** S > 0, as a 1-element bool: the far level has keys. */
  readonly hasFarKeys: string;
  /**
   * [repeat * T, N - S] float masks of the recent keys' two scores: the neighbor score counts where
   * 0 <= i - j < W and the group score where i - j >= W (0 there, -inf elsewhere). Exactly one is
   * finite for every causal pair, so the larger of the two masked scores is the pair's score: Max,
   * which ONNX Runtime runs on its thread pool, where Where over the same tensors ran on one thread
   * (a fifth of a 128-token prompt's attention at 32k tokens on 16 cores).
   */
  readonly recentNeighborMask: string;
  readonly recentGroupMask: string;
  /** The 1-element int64 axis 0 and index 0 of Slice. */
  readonly axisZero: string;
  readonly firstRow: string;
  /** Key indices of the two levels, [S] and [N - S] (the position probe reads them back). */
  readonly farKeyIndices: string;
  readonly recentKeyIndices: string;
}

/** The RoPE permutation P: (x P)[first] = -x[second], (x P)[second] = x[first] for each pair. */
export function ropeRotationMatrix(
  layout: RopeLayout,
  headSize: number,
  rotaryDimension: number,
): Float32Array {
  const matrix = new Float32Array(headSize * headSize);
  for (let pair = 0; pair < rotaryDimension / 2; pair++) {
    const [first, second] = ropePairIndices(layout, pair, rotaryDimension);
    // matrix[row * headSize + column]: output column gets input row times the entry.
    matrix[second * headSize + first] = -1;
    matrix[first * headSize + second] = 1;
  }
  return matrix;
}

export interface AttentionContextInputs {
  readonly positions: string;
  /** [ropePositions, headSize] tables supplied at run time. */
  readonly ropeCos: string;
  readonly ropeSin: string;
  readonly inputIds: string;
  /** The local layers' own [ropePositions, headSize] table (Gemma 3), when they have one. */
  readonly localRopeCos?: string;
  readonly localRopeSin?: string;
}

export function buildAttentionContext(
  builder: OnnxGraphBuilder,
  shape: AttentionShape,
  rope: { readonly layout: RopeLayout; readonly rotaryDimension: number },
  inputs: AttentionContextInputs,
  selfExtend: SelfExtendConfig | undefined,
  /** K of the model's sliding-window layers, when it has any. */
  slidingWindowSize?: number,
): AttentionContext {
  const { headSize } = shape;
  const rotation = builder.floatConstant(
    ropeRotationMatrix(rope.layout, headSize, rope.rotaryDimension),
    [headSize, headSize],
    "rope_rotation",
  );
  const axisOne = builder.int64Constant([1], "axis_1");
  const axisZero = builder.int64Constant([0], "axis_0");
  const gatherRows = (
    positions: string,
    hint: string,
    table: { readonly cos: string; readonly sin: string } = { cos: inputs.ropeCos, sin: inputs.ropeSin },
  ): [string, string] => {
    const cos = builder.node("Gather", [table.cos, positions], { axis: 0 }, { name: `${hint}_cos_rows` });
    const sin = builder.node("Gather", [table.sin, positions], { axis: 0 }, { name: `${hint}_sin_rows` });
    return [
      builder.node("Unsqueeze", [cos, axisOne], {}, { name: `${hint}_cos` }),
      builder.node("Unsqueeze", [sin, axisOne], {}, { name: `${hint}_sin` }),
    ];
  };
  const [neighborCos, neighborSin] = gatherRows(inputs.positions, "neighbor");

  // Keys sit in the cache in token order, so a key's index is its token index j; N = cached + new.
  // The session feeds positions p, ..., N - 1: the first is the number of cached tokens (the cache
  // inputs do not all hold p rows, see LayerPastInputs).
  const pastCount = builder.node(
    "Slice",
    [inputs.positions, builder.int64Constant([0], "first_position_start"), axisOne, axisZero],
    {},
    { name: "past_count" },
  );
  const newCount = builder.node("Shape", [inputs.inputIds], { start: 0, end: 1 }, { name: "new_count" });
  const keyCount = builder.node("Add", [pastCount, newCount], {}, { name: "key_count" });
  const one = builder.int64Constant([1], "one", true);
  const scalar = (x: string, hint: string) => builder.node("Squeeze", [x, axisZero], {}, { name: hint });
  const keyRange = (first: string, end: string, hint: string) =>
    builder.node(
      "Range",
      [scalar(first, `${hint}_first`), scalar(end, `${hint}_end`), one],
      {},
      { name: `${hint}_key_indices` },
    );
  const distanceTo = (keyIndices: string, hint: string) =>
    builder.node(
      "Sub",
      [
        builder.node("Unsqueeze", [inputs.positions, axisOne], {}, { name: `${hint}_query_index_column` }),
        builder.node("Unsqueeze", [keyIndices, axisZero], {}, { name: `${hint}_key_index_row` }),
      ],
      {},
      { name: `${hint}_distance` },
    );
  const keep = builder.floatConstant([0], [], "mask_keep");
  const drop = builder.floatConstant([Number.NEGATIVE_INFINITY], [], "mask_drop");
  const maskWhere = (condition: string, hint: string) =>
    builder.node("Where", [condition, keep, drop], {}, { name: hint });
  // [T, keys] -> [repeat * T, keys], the score rows of a key head (see the file comment); built
  // once per run and shared by every layer.
  const repeat = shape.headCount / shape.kvHeadCount;
  const repeats = repeat === 1 ? undefined : builder.int64Constant([repeat, 1], "score_row_repeats");
  const perScoreRow = (x: string, hint: string) =>
    repeats === undefined ? x : builder.node("Tile", [x, repeats], {}, { name: `${hint}_score_rows` });
  // Created on first use, so a graph without sliced levels carries no unused constant.
  let largestIndexName: string | undefined;
  const largestIndex = () => {
    largestIndexName ??= builder.int64Constant([Number.MAX_SAFE_INTEGER], "largest_index");
    return largestIndexName;
  };
  // Keys [max(0, p - size + 1), N) and the mask 0 <= i - j < size over them: the neighbor level of
  // Self-Extend (size W) and the local layers' sliding window (size K) alike.
  const windowLevel = (size: number, hint: string) => {
    const start = builder.node(
      "Max",
      [
        builder.node(
          "Sub",
          [pastCount, builder.int64Constant([size - 1], `${hint}_size_minus_one`)],
          {},
          { name: `${hint}_start_raw` },
        ),
        builder.int64Constant([0], `${hint}_start_floor`),
      ],
      {},
      { name: `${hint}_start` },
    );
    const keyIndices = keyRange(start, keyCount, hint);
    const distance = distanceTo(keyIndices, hint);
    const within = builder.node(
      "And",
      [
        builder.node(
          "GreaterOrEqual",
          [distance, builder.int64Constant([0], `${hint}_zero`, true)],
          {},
          { name: `${hint}_causal` },
        ),
        builder.node(
          "Less",
          [distance, builder.int64Constant([size], `${hint}_size`, true)],
          {},
          { name: `${hint}_within_window` },
        ),
      ],
      {},
      { name: `${hint}_level` },
    );
    return { start, keyIndices, mask: perScoreRow(maskWhere(within, `${hint}_mask`), `${hint}_mask`) };
  };
  const slidingWindow = (() => {
    if (slidingWindowSize === undefined) return {};
    const level = windowLevel(slidingWindowSize, "sliding_window");
    const { localRopeCos, localRopeSin } = inputs;
    const [cos, sin] =
      localRopeCos !== undefined && localRopeSin !== undefined
        ? gatherRows(inputs.positions, "local", { cos: localRopeCos, sin: localRopeSin })
        : [undefined, undefined];
    return {
      slidingWindow: {
        keyStart: level.start,
        mask: level.mask,
        axisZero,
        largestIndex: largestIndex(),
        ...(cos === undefined || sin === undefined ? {} : { cos, sin }),
      },
    };
  })();

  const merge: LevelMerge = {
    lastAxis: builder.int64Constant([-1], "last_axis"),
    emptyLevelLogSumExp: builder.floatConstant([-1e30], [1], "empty_level_log_sum_exp"),
    zero: builder.floatConstant([0], [], "empty_level_context"),
    hasPast: builder.node(
      "Greater",
      [pastCount, builder.int64Constant([0], "no_past")],
      {},
      { name: "has_past" },
    ),
  };
  if (selfExtend === undefined) {
    const distance = distanceTo(keyRange(pastCount, keyCount, "new"), "new");
    const causal = builder.node(
      "GreaterOrEqual",
      [distance, builder.int64Constant([0], "zero_distance", true)],
      {},
      { name: "causal" },
    );
    return {
      shape,
      rotation,
      neighborCos,
      neighborSin,
      causalMask: perScoreRow(maskWhere(causal, "causal_mask"), "causal_mask"),
      merge,
      pastCount,
      keyCount,
      ...slidingWindow,
    };
  }

  const { groupSize, neighborWindow } = selfExtend;
  // Positions are non-negative, so Div's truncation is floor division.
  const groupKeyPositions = builder.node(
    "Div",
    [inputs.positions, builder.int64Constant([groupSize], "group_size", true)],
    {},
    { name: "group_key_positions" },
  );
  const groupQueryPositions = builder.node(
    "Add",
    [
      groupKeyPositions,
      builder.int64Constant([neighborWindow - Math.floor(neighborWindow / groupSize)], "group_offset", true),
    ],
    {},
    { name: "group_query_positions" },
  );
  const [groupKeyCos, groupKeySin] = gatherRows(groupKeyPositions, "group_key");
  const [groupQueryCos, groupQuerySin] = gatherRows(groupQueryPositions, "group_query");

  const start = builder.node(
    "Max",
    [
      builder.node(
        "Sub",
        [pastCount, builder.int64Constant([neighborWindow - 1], "window_minus_one")],
        {},
        { name: "recent_start_raw" },
      ),
      builder.int64Constant([0], "recent_start_floor"),
    ],
    {},
    { name: "recent_start" },
  );
  const recentGroupEnd = builder.node(
    "Max",
    [
      builder.node(
        "Sub",
        [keyCount, builder.int64Constant([neighborWindow], "window")],
        {},
        { name: "recent_group_end_raw" },
      ),
      start,
    ],
    {},
    { name: "recent_group_end" },
  );
  const newRowIndex = (index: string, hint: string) =>
    builder.node(
      "Max",
      [
        builder.node("Sub", [index, pastCount], {}, { name: `${hint}_raw` }),
        builder.int64Constant([0], `${hint}_floor`),
      ],
      {},
      { name: hint },
    );
  const noKeys = builder.int64Constant([0], "no_keys");
  const recentKeyIndices = keyRange(start, keyCount, "recent");
  const recentDistance = distanceTo(recentKeyIndices, "recent");
  const recentLevelMask = (kind: "neighbor" | "group") =>
    perScoreRow(
      maskWhere(
        kind === "group"
          ? builder.node(
              "GreaterOrEqual",
              [recentDistance, builder.int64Constant([neighborWindow], "neighbor_window", true)],
              {},
              { name: "recent_group_pairs" },
            )
          : builder.node(
              "And",
              [
                builder.node(
                  "GreaterOrEqual",
                  [recentDistance, builder.int64Constant([0], "recent_zero", true)],
                  {},
                  { name: "recent_causal" },
                ),
                builder.node(
                  "Less",
                  [recentDistance, builder.int64Constant([neighborWindow], "recent_window", true)],
                  {},
                  { name: "recent_within_window" },
                ),
              ],
              {},
              { name: "recent_neighbor_pairs" },
            ),
        `recent_${kind}_mask`,
      ),
      `recent_${kind}_mask`,
    );
  const farKeyIndices = keyRange(noKeys, start, "far");
  return {
    shape,
    rotation,
    neighborCos,
    neighborSin,
    groupQueryCos,
    groupQuerySin,
    groupKeyCos,
    groupKeySin,
    merge,
    pastCount,
    keyCount,
    levels: {
      axisZero,
      firstRow: noKeys,
      recentGroupPastEnd: builder.node("Sub", [recentGroupEnd, start], {}, { name: "recent_group_past_end" }),
      recentGroupNewStart: newRowIndex(start, "recent_group_new_start"),
      recentGroupNewEnd: newRowIndex(recentGroupEnd, "recent_group_new_end"),
      recentGroupPads: builder.node(
        "Concat",
        [
          builder.int64Constant([0], "recent_group_pad_before"),
          builder.node("Sub", [keyCount, recentGroupEnd], {}, { name: "recent_group_pad_after" }),
        ],
        { axis: 0 },
        { name: "recent_group_pads" },
      ),
      hasRecentGroupKeys: builder.node(
        "Greater",
        [recentGroupEnd, start],
        {},
        { name: "has_recent_group_keys" },
      ),
      hasFarKeys: builder.node("Greater", [start, noKeys], {}, { name: "has_far_keys" }),
      recentNeighborMask: recentLevelMask("neighbor"),
      recentGroupMask: recentLevelMask("group"),
      farKeyIndices,
      recentKeyIndices,
    },
    ...slidingWindow,
  };
}

/** x * cos + (x P) * sin for x of shape [T, heads, headSize]. */
function rotate(
  builder: OnnxGraphBuilder,
  context: AttentionContext,
  x: string,
  cos: string,
  sin: string,
  hint: string,
) {
  const swapped = builder.node("MatMul", [x, context.rotation], {}, { name: `${hint}_swapped` });
  return builder.node(
    "Add",
    [
      builder.node("Mul", [x, cos], {}, { name: `${hint}_cos_part` }),
      builder.node("Mul", [swapped, sin], {}, { name: `${hint}_sin_part` }),
    ],
    {},
    { name: hint },
  );
}

export interface LayerAttentionInputs {
  readonly layer: number;
  /** [T, headCount * headSize] */
  readonly query: string;
  /** [T, kvHeads * headSize] */
  readonly key: string;
  readonly value: string;
  /** The layer's past-cache inputs: "whole" in plain graphs and sliding-window layers, else "split". */
  readonly past: LayerPastInputs;
  /** Score scale; 1/sqrt(headSize) when absent. */
  readonly scale?: number;
  /** Scaled scores become cap * tanh(score / cap) before the mask (Gemma 2). */
  readonly logitSoftCap?: number;
  /** A sliding-window layer: exact positions, keys within context.slidingWindow only. */
  readonly local?: boolean;
}

export interface LayerAttentionOutputs {
  /** [T, headCount * headSize] */
  readonly attention: string;
  /** [T, kvHeads, headSize] rows to append to the caches. */
  readonly presentKey: string;
  readonly presentKeyGroup?: string;
  readonly presentValue: string;
}

export function buildLayerAttention(
  builder: OnnxGraphBuilder,
  context: AttentionContext,
  inputs: LayerAttentionInputs,
): LayerAttentionOutputs {
  const { headCount, kvHeadCount, headSize } = context.shape;
  const prefix = `layer${inputs.layer}`;
  const levels = context.levels;
  const selfExtend = levels !== undefined;
  const shapeConstant = (values: number[], hint: string) =>
    builder.int64Constant(values, `${prefix}_${hint}`);
  const reshape = (x: string, values: number[], hint: string) =>
    builder.node("Reshape", [x, shapeConstant(values, `${hint}_shape`)], {}, { name: `${prefix}_${hint}` });
  const transpose = (x: string, perm: number[], hint: string) =>
    builder.node("Transpose", [x], { perm }, { name: `${prefix}_${hint}` });

  const queryHeads = reshape(inputs.query, [-1, headCount, headSize], "query_heads");
  const keyHeads = reshape(inputs.key, [-1, kvHeadCount, headSize], "key_heads");
  const presentValue = reshape(inputs.value, [-1, kvHeadCount, headSize], "value_heads");
  // Exact-position rotation: the local layers' own table where they have one (Gemma 3).
  const exactCos = (inputs.local === true ? context.slidingWindow?.cos : undefined) ?? context.neighborCos;
  const exactSin = (inputs.local === true ? context.slidingWindow?.sin : undefined) ?? context.neighborSin;
  const presentKey = rotate(builder, context, keyHeads, exactCos, exactSin, `${prefix}_key_neighbor`);
  const presentKeyGroup = selfExtend
    ? rotate(builder, context, keyHeads, context.groupKeyCos!, context.groupKeySin!, `${prefix}_key_group`)
    : undefined;

  // Scaling the query by 1/sqrt(d) once is cheaper than scaling both N-wide score matrices.
  const scale = builder.floatConstant([inputs.scale ?? 1 / Math.sqrt(headSize)], [], `${prefix}_scale`);
  const queryForScores = (cos: string, sin: string, level: string) => {
    const rotated = rotate(builder, context, queryHeads, cos, sin, `${prefix}_query_${level}`);
    const scaled = builder.node("Mul", [rotated, scale], {}, { name: `${prefix}_query_${level}_scaled` });
    const headMajor = transpose(scaled, [1, 0, 2], `query_${level}_head_major`);
    return reshape(headMajor, [kvHeadCount, -1, headSize], `query_${level}_grouped`);
  };
  // [keys, kvHeads, headSize] rows -> [kvHeads, headSize, keys] straight into the score MatMul, where
  // ONNX Runtime fuses the Transpose away (see the file comment): nothing may stand between them.
  const keysForScores = (keys: string, level: string) =>
    transpose(keys, [1, 2, 0], `keys_${level}_transposed`);
  // [keys, kvHeads, headSize] rows -> [kvHeads, keys, headSize] for the product, fused the same way.
  const valuesForProduct = (values: string, level: string) =>
    transpose(values, [1, 0, 2], `values_${level}_head_major`);
  const concatenate = (parts: string[], axis: number, hint: string) =>
    builder.node("Concat", parts, { axis }, { name: `${prefix}_${hint}` });
  const { logitSoftCap } = inputs;
  const cap =
    logitSoftCap === undefined
      ? undefined
      : builder.floatConstant([logitSoftCap], [], `${prefix}_logit_soft_cap`);
  const capScores = (scores: string, level: string) => {
    if (cap === undefined) return scores;
    const bounded = builder.node(
      "Tanh",
      [builder.node("Div", [scores, cap], {}, { name: `${prefix}_scores_${level}_over_cap` })],
      {},
      { name: `${prefix}_scores_${level}_tanh` },
    );
    return builder.node("Mul", [bounded, cap], {}, { name: `${prefix}_scores_${level}_capped` });
  };
  // A query's scores against `keys` rows (soft-capped where the model caps), for every level.
  const scoresOf = (query: string, keys: string, level: string) =>
    capScores(
      builder.node("MatMul", [query, keysForScores(keys, level)], {}, { name: `${prefix}_scores_${level}` }),
      level,
    );

  const { merge } = context;
  // Each level is normalised on its own and the two are merged through their log-sum-exps l_p
  // and l_r: softmax over both = exp(l_p - l) softmax_p + exp(l_r - l) softmax_r with
  // l = log(e^l_p + e^l_r), and exp(l_p - l) = sigmoid(l_p - l_r). So the past level, nearly all
  // of the keys, is scored, normalised and multiplied straight from the cache as fed, and no
  // [T, N] tensor and no cache is ever concatenated.
  const levelAttention = (scores: string, values: string, level: string) => {
    const probabilities = builder.node(
      "Softmax",
      [scores],
      { axis: -1 },
      { name: `${prefix}_probabilities_${level}` },
    );
    const rowMaximum = (x: string, hint: string) =>
      builder.node("ReduceMax", [x, merge.lastAxis], { keepdims: 1 }, { name: `${prefix}_${hint}_${level}` });
    return {
      context: builder.node(
        "MatMul",
        [probabilities, valuesForProduct(values, level)],
        {},
        { name: `${prefix}_context_${level}` },
      ),
      // The row's largest score m has probability exp(m - l) >= 1 / keys, so l = m - log p(m)
      // loses nothing to underflow, and costs two max-reductions where ONNX Runtime's
      // ReduceLogSumExp measured 25x slower than the Softmax itself.
      logSumExp: builder.node(
        "Sub",
        [
          rowMaximum(scores, "largest_score"),
          builder.node(
            "Log",
            [rowMaximum(probabilities, "largest_probability")],
            {},
            { name: `${prefix}_log_largest_probability_${level}` },
          ),
        ],
        {},
        { name: `${prefix}_log_sum_exp_${level}` },
      ),
    };
  };
  const expandTo = (value: string, like: string, hint: string) =>
    builder.node(
      "Expand",
      [value, builder.node("Shape", [like], {}, { name: `${prefix}_${hint}_shape` })],
      {},
      { name: `${prefix}_${hint}` },
    );
  type BranchOutputs = { readonly value: string; readonly elementType: "float32" }[];
  const floatOutputs = (...values: string[]): BranchOutputs =>
    values.map((value) => ({ value, elementType: "float32" }));
  const ifNode = (
    condition: string,
    then: () => BranchOutputs,
    otherwise: () => BranchOutputs,
    hint: string,
  ) => {
    const thenBranch = builder.subgraph(`${prefix}_${hint}_then`, then);
    const elseBranch = builder.subgraph(`${prefix}_${hint}_else`, otherwise);
    return builder.nodeWithOutputs(
      "If",
      [condition],
      thenBranch.output.length,
      { then_branch: { graph: thenBranch }, else_branch: { graph: elseBranch } },
      { name: `${prefix}_${hint}` },
    );
  };
  // One level scored from `keys` rows, every key counted (no mask): [context, log-sum-exp] as a
  // branch's outputs.
  const scoredLevel = (query: string, keys: string, values: string, level: string) => {
    const attended = levelAttention(scoresOf(query, keys, level), values, level);
    return floatOutputs(attended.context, attended.logSumExp);
  };
  /**
   * The layer's context from a past level (keys read from the past cache) and a recent level the
   * caller has scored. `past` builds the past level's If nodes and returns [context, log-sum-exp]:
   * ONNX Runtime's fused MatMul divides by the row count of its batch-transposed operand (1.30:
   * SIGFPE on 0 rows), so a past level without keys must not run; `noKeys` builds the branch that
   * stands for it, a zero context with log-sum-exp -1e30, weight 0 in the merge.
   */
  const mergedLevels = (
    query: string,
    past: (noKeys: () => BranchOutputs) => string[],
    recent: { readonly scores: string; readonly values: string },
  ) => {
    const recentLevel = levelAttention(recent.scores, recent.values, "recent");
    const [pastContext, pastLogSumExp] = past(() =>
      floatOutputs(
        expandTo(merge.zero, query, "no_past_context"),
        expandTo(merge.emptyLevelLogSumExp, recentLevel.logSumExp, "no_past_log_sum_exp"),
      ),
    );
    // recent + sigmoid(l_p - l_r) (past - recent): the merge in five nodes.
    const pastWeight = builder.node(
      "Sigmoid",
      [
        builder.node(
          "Sub",
          [pastLogSumExp, recentLevel.logSumExp],
          {},
          { name: `${prefix}_log_sum_exp_difference` },
        ),
      ],
      {},
      { name: `${prefix}_past_weight` },
    );
    return builder.node(
      "Add",
      [
        recentLevel.context,
        builder.node(
          "Mul",
          [
            pastWeight,
            builder.node(
              "Sub",
              [pastContext, recentLevel.context],
              {},
              { name: `${prefix}_past_minus_recent` },
            ),
          ],
          {},
          { name: `${prefix}_past_weighted` },
        ),
      ],
      {},
      { name: `${prefix}_context` },
    );
  };

  const { past } = inputs;
  const wholePast = () => {
    if (past.kind !== "whole")
      throw new Error(`layer ${inputs.layer} needs the whole past cache as its input`);
    return past;
  };
  let headContext: string;
  if (inputs.local === true) {
    const window = context.slidingWindow;
    if (window === undefined) throw new Error(`layer ${inputs.layer} is local but the graph has no window`);
    // Rows [start, N): the last rows of the past from start, then every new row (at most K + T - 1).
    const windowRows = (past: string, present: string, hint: string) =>
      concatenate(
        [
          builder.node(
            "Slice",
            [past, window.keyStart, window.largestIndex, window.axisZero],
            {},
            { name: `${prefix}_${hint}_window_past` },
          ),
          present,
        ],
        0,
        `${hint}_window`,
      );
    const scores = scoresOf(
      queryForScores(exactCos, exactSin, "neighbor"),
      windowRows(wholePast().key, presentKey, "keys"),
      "window",
    );
    const masked = builder.node("Add", [scores, window.mask], {}, { name: `${prefix}_scores_masked` });
    const probabilities = builder.node(
      "Softmax",
      [masked],
      { axis: -1 },
      { name: `${prefix}_probabilities` },
    );
    headContext = builder.node(
      "MatMul",
      [probabilities, valuesForProduct(windowRows(wholePast().value, presentValue, "values"), "window")],
      {},
      { name: `${prefix}_context` },
    );
  } else if (levels === undefined) {
    // Plain: the past level is every past key at its exact position, unmasked; the recent level the
    // run's new keys under the causal mask.
    const query = queryForScores(context.neighborCos, context.neighborSin, "neighbor");
    const newScores = builder.node(
      "Add",
      [scoresOf(query, presentKey, "new"), context.causalMask!],
      {},
      { name: `${prefix}_scores_new_masked` },
    );
    headContext = mergedLevels(
      query,
      (noKeys) =>
        ifNode(
          merge.hasPast,
          () => scoredLevel(query, wholePast().key, wholePast().value, "past"),
          noKeys,
          "past",
        ),
      { scores: newScores, values: presentValue },
    );
  } else {
    if (past.kind !== "split") throw new Error(`layer ${inputs.layer} needs the past cache split at S`);
    const slice = (x: string, starts: string, ends: string, hint: string) =>
      builder.node("Slice", [x, starts, ends, levels.axisZero], {}, { name: `${prefix}_${hint}` });
    // Recent rows [S, N): the recent past rows as fed, then every new row.
    const recentRows = (recentPast: string, present: string, hint: string) =>
      concatenate([recentPast, present], 0, `${hint}_recent`);
    const groupQuery = queryForScores(context.groupQueryCos!, context.groupQuerySin!, "group");
    const recentNeighborScores = scoresOf(
      queryForScores(context.neighborCos, context.neighborSin, "neighbor"),
      recentRows(past.recentKey, presentKey, "keys"),
      "recent_neighbor",
    );
    const maskedNeighborScores = () =>
      builder.node(
        "Add",
        [recentNeighborScores, levels.recentNeighborMask],
        {},
        { name: `${prefix}_scores_recent_neighbor_masked` },
      );
    // Where a prompt's query already sees some recent keys [S, R) at the group level, their group
    // scores (padded to the level's N - S columns) replace the neighbor ones. Decoding has none, so
    // it runs in an If: the group rows are then never gathered or scored.
    const withRecentGroupScores = () => {
      const groupRows = concatenate(
        [
          slice(past.recentKeyGroup, levels.firstRow, levels.recentGroupPastEnd, "keys_recent_group_past"),
          slice(
            presentKeyGroup!,
            levels.recentGroupNewStart,
            levels.recentGroupNewEnd,
            "keys_recent_group_new",
          ),
        ],
        0,
        "keys_recent_group",
      );
      const groupScores = builder.node(
        "Pad",
        [scoresOf(groupQuery, groupRows, "recent_group"), levels.recentGroupPads, "", merge.lastAxis],
        {},
        { name: `${prefix}_scores_recent_group_padded` },
      );
      return floatOutputs(
        builder.node(
          "Max",
          [
            maskedNeighborScores(),
            builder.node(
              "Add",
              [groupScores, levels.recentGroupMask],
              {},
              { name: `${prefix}_scores_recent_group_masked` },
            ),
          ],
          {},
          { name: `${prefix}_scores_recent_levels` },
        ),
      );
    };
    const [recentScores] = ifNode(
      levels.hasRecentGroupKeys,
      withRecentGroupScores,
      () => floatOutputs(maskedNeighborScores()),
      "recent_group",
    );
    // The far level, at the group positions: the far rows [0, S) as fed, when there are any.
    const farLevel = (noKeys: () => BranchOutputs) =>
      ifNode(
        levels.hasFarKeys,
        () => scoredLevel(groupQuery, past.farKeyGroup, past.farValue, "far"),
        noKeys,
        "far",
      );
    headContext = mergedLevels(groupQuery, farLevel, {
      scores: recentScores,
      values: recentRows(past.recentValue, presentValue, "values"),
    });
  }
  const contextHeads = reshape(headContext, [headCount, -1, headSize], "context_heads");
  const contextTokens = transpose(contextHeads, [1, 0, 2], "context_token_major");
  const attention = reshape(contextTokens, [-1, headCount * headSize], "attention");
  return {
    attention,
    presentKey,
    ...(presentKeyGroup === undefined ? {} : { presentKeyGroup }),
    presentValue,
  };
}
