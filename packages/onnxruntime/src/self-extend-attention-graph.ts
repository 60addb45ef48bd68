/**
 * Attention in standard ONNX ops: the verified Self-Extend block of the runtime notes, and plain
 * causal attention for baselines.
 *
 * Self-Extend (spec: neighbor iff 0 <= i - j < W; otherwise the group level):
 * - each new key is rotated twice, at j (neighbor level) and at floor(j/G) (group level). Both
 *   depend on the key alone, so both go to the cache once and nothing is re-rotated later
 *   (the cache is 1.5x a plain one: two key tensors and one value tensor);
 * - each query is rotated at i and at floor(i/G) + W - W/G;
 * - two score matrices, `Where(i - j < W)` picks per pair, then the causal mask and ONE softmax
 *   over the merged scores, then the product with V.
 *
 * RoPE is `x * cos + (x P) * sin` with P a signed permutation matrix built from the model's pair
 * layout (interleaved or half-split) and cos/sin rows expanded to the full head (cos = 1, sin = 0
 * past the rotary dimension, so partial rotary needs no slicing). P holds only 0 and +-1, so the
 * product is exact; the layout lives in data, not in graph structure.
 *
 * GQA: queries are shaped [kvHeads, repeat, T, headSize] and keys [kvHeads, 1, headSize, N], so
 * MatMul's broadcasting shares each key head across its query heads without copying keys.
 */
import { type RopeLayout, ropePairIndices, type SelfExtendConfig } from "@self-extend/core";
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
  /** Self-Extend only: [T, N] bool, true where 0 <= i - j < W (neighbor level). */
  readonly neighborMask?: string;
  /** [T, N] float, 0 where j <= i and -inf after the query. */
  readonly causalMask: string;
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
  /** A [past, kvHeads, headSize] cache input: its first dimension is the number of cached tokens. */
  readonly pastKey: string;
  readonly inputIds: string;
}

export function buildAttentionContext(
  builder: OnnxGraphBuilder,
  shape: AttentionShape,
  rope: { readonly layout: RopeLayout; readonly rotaryDimension: number },
  inputs: AttentionContextInputs,
  selfExtend: SelfExtendConfig | undefined,
): AttentionContext {
  const { headSize } = shape;
  const rotation = builder.floatConstant(
    ropeRotationMatrix(rope.layout, headSize, rope.rotaryDimension),
    [headSize, headSize],
    "rope_rotation",
  );
  const axisOne = builder.int64Constant([1], "axis_1");
  const axisZero = builder.int64Constant([0], "axis_0");
  const gatherRows = (positions: string, hint: string): [string, string] => {
    const cos = builder.node(
      "Gather",
      [inputs.ropeCos, positions],
      { axis: 0 },
      { name: `${hint}_cos_rows` },
    );
    const sin = builder.node(
      "Gather",
      [inputs.ropeSin, positions],
      { axis: 0 },
      { name: `${hint}_sin_rows` },
    );
    return [
      builder.node("Unsqueeze", [cos, axisOne], {}, { name: `${hint}_cos` }),
      builder.node("Unsqueeze", [sin, axisOne], {}, { name: `${hint}_sin` }),
    ];
  };
  const [neighborCos, neighborSin] = gatherRows(inputs.positions, "neighbor");

  // Key indices 0 .. N-1 with N = cached + new tokens; keys sit in the cache in token order, so a
  // key's index is its token index j.
  const pastCount = builder.node("Shape", [inputs.pastKey], { start: 0, end: 1 }, { name: "past_count" });
  const newCount = builder.node("Shape", [inputs.inputIds], { start: 0, end: 1 }, { name: "new_count" });
  const keyCount = builder.node("Add", [pastCount, newCount], {}, { name: "key_count" });
  const keyCountScalar = builder.node("Squeeze", [keyCount, axisZero], {}, { name: "key_count_scalar" });
  const keyIndices = builder.node(
    "Range",
    [builder.int64Constant([0], "zero", true), keyCountScalar, builder.int64Constant([1], "one", true)],
    {},
    { name: "key_indices" },
  );
  const distance = builder.node(
    "Sub",
    [
      builder.node("Unsqueeze", [inputs.positions, axisOne], {}, { name: "query_index_column" }),
      builder.node("Unsqueeze", [keyIndices, axisZero], {}, { name: "key_index_row" }),
    ],
    {},
    { name: "distance" },
  );
  const causal = builder.node(
    "GreaterOrEqual",
    [distance, builder.int64Constant([0], "zero_distance", true)],
    {},
    { name: "causal" },
  );
  const causalMask = builder.node(
    "Where",
    [
      causal,
      builder.floatConstant([0], [], "mask_keep"),
      builder.floatConstant([Number.NEGATIVE_INFINITY], [], "mask_drop"),
    ],
    {},
    { name: "causal_mask" },
  );
  if (selfExtend === undefined) {
    return { shape, rotation, neighborCos, neighborSin, causalMask };
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
  const neighborMask = builder.node(
    "Less",
    [distance, builder.int64Constant([neighborWindow], "neighbor_window", true)],
    {},
    { name: "neighbor_mask" },
  );
  return {
    shape,
    rotation,
    neighborCos,
    neighborSin,
    groupQueryCos,
    groupQuerySin,
    groupKeyCos,
    groupKeySin,
    neighborMask,
    causalMask,
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
  /** [past, kvHeads, headSize] caches as graph inputs. */
  readonly pastKey: string;
  readonly pastKeyGroup?: string;
  readonly pastValue: string;
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
  const repeat = headCount / kvHeadCount;
  const prefix = `layer${inputs.layer}`;
  const selfExtend = context.neighborMask !== undefined;
  const shapeConstant = (values: number[], hint: string) =>
    builder.int64Constant(values, `${prefix}_${hint}`);
  const reshape = (x: string, values: number[], hint: string) =>
    builder.node("Reshape", [x, shapeConstant(values, `${hint}_shape`)], {}, { name: `${prefix}_${hint}` });
  const transpose = (x: string, perm: number[], hint: string) =>
    builder.node("Transpose", [x], { perm }, { name: `${prefix}_${hint}` });

  const queryHeads = reshape(inputs.query, [-1, headCount, headSize], "query_heads");
  const keyHeads = reshape(inputs.key, [-1, kvHeadCount, headSize], "key_heads");
  const presentValue = reshape(inputs.value, [-1, kvHeadCount, headSize], "value_heads");
  const presentKey = rotate(
    builder,
    context,
    keyHeads,
    context.neighborCos,
    context.neighborSin,
    `${prefix}_key_neighbor`,
  );
  const presentKeyGroup = selfExtend
    ? rotate(builder, context, keyHeads, context.groupKeyCos!, context.groupKeySin!, `${prefix}_key_group`)
    : undefined;

  // Scaling the query by 1/sqrt(d) once is cheaper than scaling both N-wide score matrices.
  const scale = builder.floatConstant([1 / Math.sqrt(headSize)], [], `${prefix}_scale`);
  const queryForScores = (cos: string, sin: string, level: string) => {
    const rotated = rotate(builder, context, queryHeads, cos, sin, `${prefix}_query_${level}`);
    const scaled = builder.node("Mul", [rotated, scale], {}, { name: `${prefix}_query_${level}_scaled` });
    const headMajor = transpose(scaled, [1, 0, 2], `query_${level}_head_major`);
    return reshape(headMajor, [kvHeadCount, repeat, -1, headSize], `query_${level}_grouped`);
  };
  const keysForScores = (past: string, present: string, level: string) => {
    const all = builder.node("Concat", [past, present], { axis: 0 }, { name: `${prefix}_keys_${level}` });
    const transposed = transpose(all, [1, 2, 0], `keys_${level}_transposed`);
    return reshape(transposed, [kvHeadCount, 1, headSize, -1], `keys_${level}_grouped`);
  };

  const neighborScores = builder.node(
    "MatMul",
    [
      queryForScores(context.neighborCos, context.neighborSin, "neighbor"),
      keysForScores(inputs.pastKey, presentKey, "neighbor"),
    ],
    {},
    { name: `${prefix}_scores_neighbor` },
  );
  let scores = neighborScores;
  if (selfExtend) {
    const groupScores = builder.node(
      "MatMul",
      [
        queryForScores(context.groupQueryCos!, context.groupQuerySin!, "group"),
        keysForScores(inputs.pastKeyGroup!, presentKeyGroup!, "group"),
      ],
      {},
      { name: `${prefix}_scores_group` },
    );
    scores = builder.node(
      "Where",
      [context.neighborMask!, neighborScores, groupScores],
      {},
      { name: `${prefix}_scores_merged` },
    );
  }
  const masked = builder.node("Add", [scores, context.causalMask], {}, { name: `${prefix}_scores_masked` });
  const probabilities = builder.node("Softmax", [masked], { axis: -1 }, { name: `${prefix}_probabilities` });

  const values = builder.node(
    "Concat",
    [inputs.pastValue, presentValue],
    { axis: 0 },
    { name: `${prefix}_values` },
  );
  const valuesHeadMajor = transpose(values, [1, 0, 2], "values_head_major");
  const valuesGrouped = reshape(valuesHeadMajor, [kvHeadCount, 1, -1, headSize], "values_grouped");
  const context4d = builder.node("MatMul", [probabilities, valuesGrouped], {}, { name: `${prefix}_context` });
  const contextHeads = reshape(context4d, [headCount, -1, headSize], "context_heads");
  const contextTokens = transpose(contextHeads, [1, 0, 2], "context_token_major");
  const attention = reshape(contextTokens, [-1, headCount * headSize], "attention");
  return {
    attention,
    presentKey,
    ...(presentKeyGroup === undefined ? {} : { presentKeyGroup }),
    presentValue,
  };
}
