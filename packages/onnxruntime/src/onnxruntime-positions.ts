/**
 * The relative positions the exported attention graph uses, read back from ONNX Runtime rather
 * than recomputed: the position part of the graph (buildAttentionContext, the same function every
 * export calls) is built on its own and run with onnxruntime-node over the prompt in the session's
 * prefill chunks, with the keys of earlier chunks in the past cache.
 *
 * Its RoPE tables are filled with the position itself (row p of the cos table holds p), so the
 * rows the graph's own Gather nodes pick for queries and keys at either level ARE the positions
 * it rotates them at. The key ranges and masks of the two levels come out of the graph too: the
 * layers score exactly those keys with exactly those masks, so a pair kept by the group mask is
 * attended at the group level and one kept by the neighbor mask at the neighbor level (a pair kept
 * by both would be counted twice and is reported as an error). Relative position = query position
 * - key position at the level kept.
 */
import { groupQueryPosition, type SelfExtendConfig, validateSelfExtendConfig } from "@self-extend/core";
import { encodeModel, OnnxGraphBuilder } from "./onnx-graph-builder.js";
import { loadOnnxRuntime } from "./onnxruntime-loader.js";
import { attentionGraphOf, defaultPrefillChunkSize } from "./onnxruntime-session.js";
import { buildAttentionContext } from "./self-extend-attention-graph.js";

/** One key head of two dimensions: the smallest head RoPE can rotate; positions do not depend on it. */
const headSize = 2;

/** A level's mask as a predicate: a cell is scored where its mask adds 0. */
function maskedScores(mask: Float32Array): (cell: number) => boolean {
  return (cell) => mask[cell] === 0;
}

function positionGraph(selfExtend: SelfExtendConfig | undefined): Uint8Array {
  const builder = new OnnxGraphBuilder("positions.onnx.data");
  const inputIds = builder.input("input_ids", "int64", ["tokens"]);
  const positions = builder.input("positions", "int64", ["tokens"]);
  const ropeCos = builder.input("rope_cos", "float32", ["rope_positions", headSize]);
  const ropeSin = builder.input("rope_sin", "float32", ["rope_positions", headSize]);
  const context = buildAttentionContext(
    builder,
    { headCount: 1, kvHeadCount: 1, headSize },
    { layout: "interleaved", rotaryDimension: headSize },
    { positions, ropeCos, ropeSin, inputIds },
    selfExtend,
  );
  const rows = ["tokens", 1, headSize];
  builder.output(context.neighborCos, "neighbor_position", "float32", rows);
  const { levels } = context;
  if (levels === undefined) {
    builder.output(context.causalMask!, "causal_mask", "float32", ["tokens", "tokens"]);
  } else {
    builder.output(context.groupQueryCos!, "group_query_position", "float32", rows);
    builder.output(context.groupKeyCos!, "group_key_position", "float32", rows);
    builder.output(levels.farKeyIndices, "far_key_indices", "int64", ["far_keys"]);
    builder.output(levels.recentKeyIndices, "recent_key_indices", "int64", ["recent_keys"]);
    builder.output(levels.recentNeighborMask, "recent_neighbor_mask", "float32", ["tokens", "recent_keys"]);
    builder.output(levels.recentGroupMask, "recent_group_mask", "float32", ["tokens", "recent_keys"]);
  }
  return encodeModel(builder.build({ graphName: "self_extend_positions", producerVersion: "positions" }));
}

/**
 * The relative-position map (core's layout, -1 above the diagonal) of a prompt of `length` tokens
 * evaluated by a session with this config (the plain graph for G = 1, as sessions choose).
 */
export async function onnxRuntimeRelativePositions(
  config: SelfExtendConfig,
  length: number,
  prefillChunkSize = defaultPrefillChunkSize,
): Promise<Int32Array> {
  validateSelfExtendConfig(config);
  if (!Number.isSafeInteger(length) || length < 1) {
    throw new RangeError(`length must be an integer >= 1 (got ${length})`);
  }
  const selfExtend =
    attentionGraphOf({ selfExtend: config, contextSize: length }, config) === "self-extend"
      ? config
      : undefined;
  const runtime = await loadOnnxRuntime();
  // Warnings off: the probe leaves the RoPE rotation matrix unused, which ORT would log.
  const inference = await runtime.InferenceSession.create(positionGraph(selfExtend), { logSeverityLevel: 3 });
  try {
    const { Tensor } = runtime;
    const positionCount =
      Math.max(length - 1, selfExtend === undefined ? 0 : groupQueryPosition(length - 1, config)) + 1;
    const table = new Float32Array(positionCount * headSize);
    for (let position = 0; position < positionCount; position++)
      table.fill(position, position * headSize, (position + 1) * headSize);
    const ropeCos = new Tensor("float32", table, [positionCount, headSize]);
    const ropeSin = new Tensor("float32", new Float32Array(table.length), [positionCount, headSize]);
    // Key positions at both levels, in cache order, as the caches keep them.
    const keyNeighbor: number[] = [];
    const keyGroup: number[] = [];
    const map = new Int32Array(length * length).fill(-1);
    const chunk = Math.min(prefillChunkSize, length);
    for (let start = 0; start < length; start += chunk) {
      const count = Math.min(chunk, length - start);
      const results = await inference.run({
        input_ids: new Tensor("int64", new BigInt64Array(count), [count]),
        positions: new Tensor(
          "int64",
          BigInt64Array.from({ length: count }, (_, index) => BigInt(start + index)),
          [count],
        ),
        rope_cos: ropeCos,
        rope_sin: ropeSin,
      });
      const row = (name: string, index: number) => (results[name].data as Float32Array)[index * headSize];
      for (let index = 0; index < count; index++) {
        keyNeighbor.push(row("neighbor_position", index));
        keyGroup.push(selfExtend === undefined ? 0 : row("group_key_position", index));
      }
      // Each level: the key indices it scores, whether it scores a (query, column) pair, and the
      // positions of query and key there.
      const groupQuery = (index: number) => row("group_query_position", index);
      const neighborQuery = (index: number) => row("neighbor_position", index);
      const levels =
        selfExtend === undefined
          ? [
              {
                // The past level: every past key, without a mask.
                keys: Array.from({ length: start }, (_, key) => key),
                scores: () => true,
                query: neighborQuery,
                key: keyNeighbor,
              },
              {
                // The run's new keys under the causal mask.
                keys: Array.from({ length: count }, (_, key) => start + key),
                scores: maskedScores(results.causal_mask.data as Float32Array),
                query: neighborQuery,
                key: keyNeighbor,
              },
            ]
          : [
              {
                // The far level: its keys, without a mask (every query of the run scores them).
                keys: Array.from(results.far_key_indices.data as BigInt64Array, Number),
                scores: () => true,
                query: groupQuery,
                key: keyGroup,
              },
              {
                // The recent keys' neighbor scores, where their mask keeps them...
                keys: Array.from(results.recent_key_indices.data as BigInt64Array, Number),
                scores: maskedScores(results.recent_neighbor_mask.data as Float32Array),
                query: neighborQuery,
                key: keyNeighbor,
              },
              {
                // ...and their group scores, where theirs does (the graph takes the larger of the two
                // masked scores, so a pair kept by both would be an error, reported below).
                keys: Array.from(results.recent_key_indices.data as BigInt64Array, Number),
                scores: maskedScores(results.recent_group_mask.data as Float32Array),
                query: groupQuery,
                key: keyGroup,
              },
            ];
      for (const level of levels) {
        const width = level.keys.length;
        for (let index = 0; index < count; index++) {
          const query = start + index;
          for (let column = 0; column < width; column++) {
            const cell = index * width + column;
            if (!level.scores(cell)) continue;
            const key = level.keys[column];
            if (map[query * length + key] !== -1) {
              throw new Error(`the attention graph scores query ${query} and key ${key} at both levels`);
            }
            map[query * length + key] = level.query(index) - level.key[key];
          }
        }
      }
    }
    return map;
  } finally {
    await inference.release();
  }
}
