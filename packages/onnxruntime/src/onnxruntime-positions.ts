/**
 * The relative positions the exported attention graph uses, read back from ONNX Runtime rather
 * than recomputed: the position part of the graph (buildAttentionContext, the same function every
 * export calls) is built on its own and run with onnxruntime-node over the prompt in the session's
 * prefill chunks, with the keys of earlier chunks in the past cache.
 *
 * Its RoPE tables are filled with the position itself (row p of the cos table holds p), so the
 * rows the graph's own Gather nodes pick for queries and keys at either level ARE the positions
 * it rotates them at. The neighbor mask and the causal mask come out of the graph too; per pair,
 * the neighbor mask picks the level exactly as the layers' `Where` picks between the two score
 * matrices. Relative position = query position - key position at the level picked.
 */
import { groupQueryPosition, type SelfExtendConfig, validateSelfExtendConfig } from "@self-extend/core";
import { encodeModel, OnnxGraphBuilder } from "./onnx-graph-builder.js";
import { loadOnnxRuntime } from "./onnxruntime-loader.js";
import { attentionGraphOf, defaultPrefillChunkSize } from "./onnxruntime-session.js";
import { buildAttentionContext } from "./self-extend-attention-graph.js";

/** One key head of two dimensions: the smallest head RoPE can rotate; positions do not depend on it. */
const headSize = 2;

function positionGraph(selfExtend: SelfExtendConfig | undefined): Uint8Array {
  const builder = new OnnxGraphBuilder("positions.onnx.data");
  const inputIds = builder.input("input_ids", "int64", ["tokens"]);
  const positions = builder.input("positions", "int64", ["tokens"]);
  const ropeCos = builder.input("rope_cos", "float32", ["rope_positions", headSize]);
  const ropeSin = builder.input("rope_sin", "float32", ["rope_positions", headSize]);
  const pastKey = builder.input("past_key", "float32", ["past", 1, headSize]);
  const context = buildAttentionContext(
    builder,
    { headCount: 1, kvHeadCount: 1, headSize },
    { layout: "interleaved", rotaryDimension: headSize },
    { positions, ropeCos, ropeSin, pastKey, inputIds },
    selfExtend,
  );
  const rows = ["tokens", 1, headSize];
  builder.output(context.neighborCos, "neighbor_position", "float32", rows);
  builder.output(context.causalMask, "causal_mask", "float32", ["tokens", "keys"]);
  if (selfExtend !== undefined) {
    builder.output(context.groupQueryCos!, "group_query_position", "float32", rows);
    builder.output(context.groupKeyCos!, "group_key_position", "float32", rows);
    builder.output(context.neighborMask!, "neighbor_mask", "bool", ["tokens", "keys"]);
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
        past_key: new Tensor("float32", new Float32Array(start * headSize), [start, 1, headSize]),
      });
      const row = (name: string, index: number) => (results[name].data as Float32Array)[index * headSize];
      for (let index = 0; index < count; index++) {
        keyNeighbor.push(row("neighbor_position", index));
        keyGroup.push(selfExtend === undefined ? 0 : row("group_key_position", index));
      }
      const keys = start + count;
      const causal = results.causal_mask.data as Float32Array;
      const neighbor = selfExtend === undefined ? undefined : (results.neighbor_mask.data as Uint8Array);
      for (let index = 0; index < count; index++) {
        const query = start + index;
        for (let key = 0; key < keys; key++) {
          if (causal[index * keys + key] !== 0) continue;
          map[query * length + key] =
            neighbor === undefined || neighbor[index * keys + key] !== 0
              ? row("neighbor_position", index) - keyNeighbor[key]
              : row("group_query_position", index) - keyGroup[key];
        }
      }
    }
    return map;
  } finally {
    await inference.release();
  }
}
