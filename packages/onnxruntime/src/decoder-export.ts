/**
 * Exports a Llama-family model (llama, mistral, qwen2, phi3, gemma, gemma2, gemma3: MHA or GQA, q/k/v biases,
 * interleaved or half-split RoPE, partial rotary) to one ONNX decoder graph with weights in an
 * external data file. Gemma's departures are read from the description once, here, and become graph
 * structure: scaled embeddings, GeGLU (ONNX Gelu with the tanh approximation), and for Gemma 2 the
 * score scale and soft-cap, post-norms, sliding-window local layers (exact positions, see
 * self-extend-attention-graph.ts) and the soft-cap on the logits; for Gemma 3 an RMSNorm of each
 * query and key head before RoPE, and its local layers' own RoPE table (`local_rope_cos/sin`).
 *
 * One graph serves prefill chunks and single-token decoding. Its interface:
 * - inputs: `input_ids` [T] int64, `positions` [T] int64 (token indices i, i.e. cached + 0..T-1),
 *   `logit_indices` [K] int64 (rows of the block whose logits are wanted), `rope_cos`/`rope_sin`
 *   [P, headSize] float32 (core's RoPE table expanded to the full head, supplied by the session so
 *   the export does not depend on the context size), and per layer the past cache rows
 *   [rows, kvHeads, headSize]: `past_key.N`, `past_value.N` (the whole past: plain graphs and
 *   sliding-window layers) or, in Self-Extend's layers, `far_key_group.N`, `far_value.N` (rows
 *   [0, S), S = max(0, p - W + 1)) and `recent_key.N`, `recent_key_group.N`, `recent_value.N`
 *   (rows [S, p));
 * - outputs: `logits` [K, vocabulary] and per layer `present_key.N`, `present_key_group.N`,
 *   `present_value.N` [T, kvHeads, headSize]: only the new rows, which the session copies into its
 *   fixed-capacity cache buffers (token-major, so the cached prefix is one contiguous view and is fed
 *   back without copying).
 *
 * Group size and window are constants of a Self-Extend export (the export cache keys on them).
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { type SelfExtendConfig, SelfExtendConfigError, validateSelfExtendConfig } from "@self-extend/core";
import { type LlamaWeights, supportedArchitectures, UnsupportedArchitectureError } from "@self-extend/models";
import { encodeModel, OnnxGraphBuilder } from "./onnx-graph-builder.js";
import { buildAttentionContext, buildLayerAttention } from "./self-extend-attention-graph.js";
import { exporterVersion } from "./version.js";

/** Which attention the graph computes. */
export type DecoderAttention =
  | { readonly kind: "plain" }
  | { readonly kind: "self-extend"; readonly selfExtend: SelfExtendConfig };

export const modelFileName = "model.onnx";
export const externalDataFileName = "model.onnx.data";

/** Names of the graph's inputs and outputs, shared by the exporter and the session. */
export const graphNames = {
  inputIds: "input_ids",
  positions: "positions",
  logitIndices: "logit_indices",
  ropeCos: "rope_cos",
  ropeSin: "rope_sin",
  localRopeCos: "local_rope_cos",
  localRopeSin: "local_rope_sin",
  logits: "logits",
  // The whole past [0, p): plain graphs and sliding-window layers.
  pastKey: (layer: number) => `past_key.${layer}`,
  pastValue: (layer: number) => `past_value.${layer}`,
  // Self-Extend's layers: the past split at S = max(0, p - W + 1), far rows [0, S) and recent rows
  // [S, p), each a view of the session's cache (see declareSessionInputs).
  farKeyGroup: (layer: number) => `far_key_group.${layer}`,
  farValue: (layer: number) => `far_value.${layer}`,
  recentKey: (layer: number) => `recent_key.${layer}`,
  recentKeyGroup: (layer: number) => `recent_key_group.${layer}`,
  recentValue: (layer: number) => `recent_value.${layer}`,
  presentKey: (layer: number) => `present_key.${layer}`,
  presentKeyGroup: (layer: number) => `present_key_group.${layer}`,
  presentValue: (layer: number) => `present_value.${layer}`,
} as const;

export function normalizeDecoderAttention(attention: DecoderAttention): DecoderAttention {
  if (attention.kind === "plain") return { kind: "plain" };
  if (attention.kind !== "self-extend") {
    throw new SelfExtendConfigError(
      "attention.kind",
      (attention as { kind: unknown }).kind,
      'must be "plain" or "self-extend"',
    );
  }
  return { kind: "self-extend", selfExtend: validateSelfExtendConfig(attention.selfExtend) };
}

/**
 * A layer's past-cache inputs, rows of [rows, kvHeads, headSize]:
 * - "whole": the past [0, p) as the cache holds it (plain graphs, and the sliding-window layers of
 *   every graph, which read the last K rows);
 * - "split": Self-Extend's layers, the past cut at S = max(0, p - W + 1) into the far rows [0, S)
 *   (grouped keys and values: the far level) and the recent rows [S, p) (both keys and values: the
 *   recent level). The session feeds each part as a view of its cache buffers, so no level copies
 *   or masks keys the other one scores.
 */
export type LayerPastInputs =
  | { readonly kind: "whole"; readonly key: string; readonly value: string }
  | {
      readonly kind: "split";
      readonly farKeyGroup: string;
      readonly farValue: string;
      readonly recentKey: string;
      readonly recentKeyGroup: string;
      readonly recentValue: string;
    };

/**
 * Declares the graph inputs the session feeds (graphNames): our exports and rewritten user
 * exports speak the same contract, so OnnxRuntimeSession runs both. The session feeds every cache
 * input the graph declares, by name.
 */
export function declareSessionInputs(
  builder: OnnxGraphBuilder,
  shape: { readonly layerCount: number; readonly kvHeadCount: number; readonly headSize: number },
  selfExtend: SelfExtendConfig | undefined,
  options: {
    /** The local layers have their own RoPE table (Gemma 3): `local_rope_cos` / `local_rope_sin`. */
    readonly localRope?: boolean;
    /** Which layers are sliding-window layers (they take the whole past). */
    readonly localLayers?: readonly boolean[];
  } = {},
) {
  const { layerCount, kvHeadCount, headSize } = shape;
  const cacheInput = (name: string, rows: string) =>
    builder.input(name, "float32", [rows, kvHeadCount, headSize]);
  const pastOf = (layer: number): LayerPastInputs =>
    selfExtend === undefined || options.localLayers?.[layer] === true
      ? {
          kind: "whole",
          key: cacheInput(graphNames.pastKey(layer), "past"),
          value: cacheInput(graphNames.pastValue(layer), "past"),
        }
      : {
          kind: "split",
          farKeyGroup: cacheInput(graphNames.farKeyGroup(layer), "far"),
          farValue: cacheInput(graphNames.farValue(layer), "far"),
          recentKey: cacheInput(graphNames.recentKey(layer), "recent_past"),
          recentKeyGroup: cacheInput(graphNames.recentKeyGroup(layer), "recent_past"),
          recentValue: cacheInput(graphNames.recentValue(layer), "recent_past"),
        };
  return {
    inputIds: builder.input(graphNames.inputIds, "int64", ["tokens"]),
    positions: builder.input(graphNames.positions, "int64", ["tokens"]),
    logitIndices: builder.input(graphNames.logitIndices, "int64", ["logit_count"]),
    ropeCos: builder.input(graphNames.ropeCos, "float32", ["rope_positions", headSize]),
    ropeSin: builder.input(graphNames.ropeSin, "float32", ["rope_positions", headSize]),
    ...(options.localRope === true
      ? {
          localRopeCos: builder.input(graphNames.localRopeCos, "float32", ["local_rope_positions", headSize]),
          localRopeSin: builder.input(graphNames.localRopeSin, "float32", ["local_rope_positions", headSize]),
        }
      : {}),
    past: Array.from({ length: layerCount }, (_, layer) => pastOf(layer)),
  };
}

/** Builds the graph in memory; `externalTensors` says what the data file must hold. */
export function buildDecoderGraph(weights: LlamaWeights, attention: DecoderAttention) {
  const { description } = weights;
  if (!supportedArchitectures.includes(description.architecture)) {
    throw new UnsupportedArchitectureError(
      description.name ?? "(in-memory weights)",
      description.architecture,
      supportedArchitectures,
    );
  }
  const normalized = normalizeDecoderAttention(attention);
  const selfExtend = normalized.kind === "self-extend" ? normalized.selfExtend : undefined;
  const { layerCount, headCount, kvHeadCount, headSize, embeddingSize, feedForwardSize, vocabularySize } =
    description;
  const builder = new OnnxGraphBuilder(externalDataFileName);
  const localRope = description.slidingWindow?.ropeBase !== undefined;
  const { inputIds, positions, logitIndices, ropeCos, ropeSin, localRopeCos, localRopeSin, past } =
    declareSessionInputs(builder, { layerCount, kvHeadCount, headSize }, selfExtend, {
      localRope,
      ...(description.slidingWindow === undefined
        ? {}
        : { localLayers: description.slidingWindow.localLayers }),
    });

  const context = buildAttentionContext(
    builder,
    { headCount, kvHeadCount, headSize },
    { layout: description.ropeLayout, rotaryDimension: description.rotaryDimension },
    {
      positions,
      ropeCos,
      ropeSin,
      inputIds,
      ...(localRopeCos === undefined || localRopeSin === undefined ? {} : { localRopeCos, localRopeSin }),
    },
    selfExtend,
    description.slidingWindow?.size,
  );

  const rmsNorm = (x: string, gain: Float32Array, hint: string) =>
    builder.node(
      "RMSNormalization",
      [x, builder.weight(gain, [embeddingSize], `${hint}.weight`)],
      { axis: -1, epsilon: { float: description.normEpsilon } },
      { name: hint },
    );
  // Gemm with transB keeps every matrix in the file's [out, in] layout: no transposed copies.
  const project = (
    x: string,
    matrix: Float32Array,
    rows: number,
    columns: number,
    hint: string,
    bias?: Float32Array,
  ) =>
    builder.node(
      "Gemm",
      [
        x,
        builder.weight(matrix, [rows, columns], `${hint}.weight`),
        ...(bias === undefined ? [] : [builder.weight(bias, [rows], `${hint}.bias`)]),
      ],
      { transB: 1 },
      { name: hint },
    );

  // cap * tanh(x / cap): Gemma 2's soft-cap of the logits.
  const softCap = (x: string, cap: number, hint: string) => {
    const capConstant = builder.floatConstant([cap], [], `${hint}_cap`);
    return builder.node(
      "Mul",
      [
        builder.node(
          "Tanh",
          [builder.node("Div", [x, capConstant], {}, { name: `${hint}_over_cap` })],
          {},
          { name: `${hint}_tanh` },
        ),
        capConstant,
      ],
      {},
      { name: hint },
    );
  };
  // Gemma 3's RMSNorm of each query or key head ([T, heads * headSize] -> the same), before RoPE.
  const headNorm = (x: string, gain: Float32Array | undefined, heads: number, hint: string) => {
    if (gain === undefined) return x;
    const heads3d = builder.node(
      "Reshape",
      [x, builder.int64Constant([0, heads, headSize], `${hint}_heads_shape`)],
      {},
      { name: `${hint}_heads` },
    );
    const normalized = builder.node(
      "RMSNormalization",
      [heads3d, builder.weight(gain, [headSize], `${hint}.weight`)],
      { axis: -1, epsilon: { float: description.normEpsilon } },
      { name: hint },
    );
    return builder.node(
      "Reshape",
      [normalized, builder.int64Constant([0, heads * headSize], `${hint}_rows_shape`)],
      {},
      { name: `${hint}_rows` },
    );
  };
  // Gemma 2's RMSNorm of a block's output before its residual add; nothing without the weight.
  const postNorm = (x: string, gain: Float32Array | undefined, hint: string) =>
    gain === undefined ? x : rmsNorm(x, gain, hint);
  const gatedActivation =
    description.feedForwardActivation === "gelu-tanh"
      ? (gate: string, hint: string) =>
          builder.node("Gelu", [gate], { approximate: "tanh" }, { name: `${hint}.gate_gelu` })
      : (gate: string, hint: string) =>
          builder.node(
            "Mul",
            [gate, builder.node("Sigmoid", [gate], {}, { name: `${hint}.gate_sigmoid` })],
            {},
            { name: `${hint}.gate_silu` },
          );
  const { embeddingScale, slidingWindow } = description;

  const embedded = builder.node(
    "Gather",
    [builder.weight(weights.tokenEmbedding, [vocabularySize, embeddingSize], "token_embedding"), inputIds],
    { axis: 0 },
    { name: "embedded" },
  );
  let hidden =
    embeddingScale === undefined
      ? embedded
      : builder.node(
          "Mul",
          [embedded, builder.floatConstant([embeddingScale], [], "embedding_scale")],
          {},
          { name: "embedded_scaled" },
        );
  const presentNames: string[] = [];
  weights.layers.forEach((layer, index) => {
    const prefix = `layer${index}`;
    const normalized = rmsNorm(hidden, layer.attentionNorm, `${prefix}.attention_norm`);
    const query = headNorm(
      project(
        normalized,
        layer.query,
        headCount * headSize,
        embeddingSize,
        `${prefix}.query`,
        layer.queryBias,
      ),
      layer.queryNorm,
      headCount,
      `${prefix}.query_norm`,
    );
    const key = headNorm(
      project(normalized, layer.key, kvHeadCount * headSize, embeddingSize, `${prefix}.key`, layer.keyBias),
      layer.keyNorm,
      kvHeadCount,
      `${prefix}.key_norm`,
    );
    const value = project(
      normalized,
      layer.value,
      kvHeadCount * headSize,
      embeddingSize,
      `${prefix}.value`,
      layer.valueBias,
    );
    const attention = buildLayerAttention(builder, context, {
      layer: index,
      query,
      key,
      value,
      past: past[index],
      ...(description.attentionScale === undefined ? {} : { scale: description.attentionScale }),
      ...(description.attentionLogitSoftCap === undefined
        ? {}
        : { logitSoftCap: description.attentionLogitSoftCap }),
      local: slidingWindow?.localLayers[index] === true,
    });
    const attended = project(
      attention.attention,
      layer.output,
      embeddingSize,
      headCount * headSize,
      `${prefix}.output`,
    );
    hidden = builder.node(
      "Add",
      [hidden, postNorm(attended, layer.postAttentionNorm, `${prefix}.post_attention_norm`)],
      {},
      { name: `${prefix}.attention_residual` },
    );
    const normalizedFeedForward = rmsNorm(hidden, layer.feedForwardNorm, `${prefix}.feed_forward_norm`);
    const gate = project(normalizedFeedForward, layer.gate, feedForwardSize, embeddingSize, `${prefix}.gate`);
    const up = project(normalizedFeedForward, layer.up, feedForwardSize, embeddingSize, `${prefix}.up`);
    const gated = builder.node("Mul", [gatedActivation(gate, prefix), up], {}, { name: `${prefix}.gated` });
    const down = project(gated, layer.down, embeddingSize, feedForwardSize, `${prefix}.down`);
    hidden = builder.node(
      "Add",
      [hidden, postNorm(down, layer.postFeedForwardNorm, `${prefix}.post_feed_forward_norm`)],
      {},
      { name: `${prefix}.feed_forward_residual` },
    );
    const presentShape = ["tokens", kvHeadCount, headSize];
    presentNames.push(
      builder.output(attention.presentKey, graphNames.presentKey(index), "float32", presentShape),
    );
    if (attention.presentKeyGroup !== undefined) {
      builder.output(attention.presentKeyGroup, graphNames.presentKeyGroup(index), "float32", presentShape);
    }
    builder.output(attention.presentValue, graphNames.presentValue(index), "float32", presentShape);
  });
  // Only the rows asked for reach the classifier: a long prompt chunk pays for one row, not T.
  const selected = builder.node("Gather", [hidden, logitIndices], { axis: 0 }, { name: "selected_rows" });
  const finalNorm = rmsNorm(selected, weights.outputNorm, "output_norm");
  const classified = project(finalNorm, weights.output, vocabularySize, embeddingSize, "classifier");
  const logits =
    description.finalLogitSoftCap === undefined
      ? classified
      : softCap(classified, description.finalLogitSoftCap, "logits_capped");
  builder.output(logits, graphNames.logits, "float32", ["logit_count", vocabularySize]);

  const model = builder.build({
    graphName: `${description.name ?? description.architecture}-${normalized.kind}`,
    producerVersion: exporterVersion,
    docString:
      normalized.kind === "self-extend"
        ? `Self-Extend attention, G = ${normalized.selfExtend.groupSize}, W = ${normalized.selfExtend.neighborWindow}`
        : "plain causal attention",
    metadata: {
      "self_extend.attention": normalized.kind,
      ...(selfExtend === undefined
        ? {}
        : {
            "self_extend.group_size": String(selfExtend.groupSize),
            "self_extend.neighbor_window": String(selfExtend.neighborWindow),
          }),
      "self_extend.architecture": description.architecture,
      "self_extend.trained_context": String(description.trainedContext),
    },
  });
  return { model, external: builder.externalTensors() };
}

/** Writes `model.onnx` and `model.onnx.data` into `folder` (which must exist). */
export function writeDecoderExport(weights: LlamaWeights, attention: DecoderAttention, folder: string): void {
  const { model, external } = buildDecoderGraph(weights, attention);
  const descriptor = openSync(join(folder, externalDataFileName), "w");
  try {
    for (const tensor of external.tensors) {
      const bytes = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
      writeAllAt(descriptor, bytes, tensor.offset);
    }
  } finally {
    closeSync(descriptor);
  }
  const modelDescriptor = openSync(join(folder, modelFileName), "w");
  try {
    writeAllAt(modelDescriptor, encodeModel(model), 0);
  } finally {
    closeSync(modelDescriptor);
  }
}

/**
 * Writes all of `bytes` at `position`: Node writes at most 2 GiB per call (a Gemma-2-2B embedding
 * is 2.36 GB in float32) and may write less than asked, so in pieces of at most `pieceBytes`.
 */
export function writeAllAt(
  descriptor: number,
  bytes: Uint8Array,
  position: number,
  pieceBytes = 1 << 30,
): void {
  let written = 0;
  while (written < bytes.byteLength) {
    const length = Math.min(pieceBytes, bytes.byteLength - written);
    written += writeSync(descriptor, bytes, written, length, position + written);
  }
}
