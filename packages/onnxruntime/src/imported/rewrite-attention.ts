/**
 * Rewrites a user's decoder export so its attention is this package's (Self-Extend, or plain for
 * G = 1), keeping every other node of the user's graph as it is: embeddings, norms, projections
 * (float or com.microsoft MatMulNBits), MLP and classifier run exactly as exported.
 *
 * Per layer, the values between the query/key/value projections and the output projection are
 * replaced by the attention block of self-extend-attention-graph.ts, fed the projections reshaped
 * to [T, width]; its [T, heads * headSize] result, unsqueezed to [1, T, ...], is what the output
 * projection now reads. The graph then speaks the package's session contract (decoder-export.ts's
 * graphNames: input_ids [T], positions, logit_indices, rope_cos/rope_sin, and per layer views of the
 * token-major caches, LayerPastInputs), so OnnxRuntimeSession runs it like its own
 * exports: the dual-key cache of Self-Extend needs a second key tensor the export's
 * past_key_values.N.* contract has no place for, and one runner keeps one set of session rules.
 * The user's input_ids, position_ids and attention_mask become values computed from ours, and nodes
 * nothing reads any more (the causal mask, the old attention, the RoPE of the old positions) are
 * dropped.
 */
import { clone, create } from "@bufbuild/protobuf";
import type { SelfExtendConfig } from "@self-extend/core";
import { type DecoderAttention, declareSessionInputs, graphNames } from "../decoder-export.js";
import {
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
} from "../generated/onnx/onnx_pb.js";
import { OnnxGraphBuilder } from "../onnx-graph-builder.js";
import { buildAttentionContext, buildLayerAttention } from "../self-extend-attention-graph.js";
import type { DecoderGraphIndex } from "./decoder-graph-index.js";
import { type ImportedLayerAttention, UnsupportedOnnxGraphError } from "./find-attention.js";

export interface ImportedDecoderShape {
  readonly layerCount: number;
  readonly headCount: number;
  readonly kvHeadCount: number;
  readonly headSize: number;
  readonly vocabularySize: number;
}

export interface RewriteInputs {
  readonly modelPath: string;
  readonly index: DecoderGraphIndex;
  readonly layers: readonly ImportedLayerAttention[];
  readonly shape: ImportedDecoderShape;
  /** The RoPE pair layout and rotary width of the graph's own RoPE. */
  readonly rope: { readonly layout: "half-split" | "interleaved"; readonly rotaryDimension: number };
  /** The graph's logits output ([batch, T, vocabulary]). */
  readonly logitsOutput: string;
}

/** The smallest default-domain opset whose ops (Shape start/end) the attention block uses. */
const smallestOpset = 15;

export function rewriteImportedDecoder(inputs: RewriteInputs, attention: DecoderAttention): ModelProto {
  const { index, layers, shape, modelPath } = inputs;
  const selfExtend: SelfExtendConfig | undefined =
    attention.kind === "self-extend" ? attention.selfExtend : undefined;
  if (index.opsetVersion < 13) {
    throw new UnsupportedOnnxGraphError(
      modelPath,
      `default-domain opset ${index.opsetVersion} is older than 13; export again with opset 14 or newer`,
    );
  }
  const model = clone(ModelProtoSchema, index.model);
  const graph = model.graph!;
  const builder = new OnnxGraphBuilder("unused.data");
  const existingNames = new Set<string>();
  for (const node of graph.node) for (const name of [...node.input, ...node.output]) existingNames.add(name);
  for (const value of [...graph.input, ...graph.output, ...graph.initializer]) existingNames.add(value.name);
  builder.reserveNames(existingNames);

  const { headCount, kvHeadCount, headSize, vocabularySize } = shape;
  // The user's graph inputs become internal values; ours take their place at the edge.
  const renamed = new Map<string, string>();
  for (const name of index.graphInputs)
    renamed.set(name, builder.uniqueName(`imported_${name.replaceAll(".", "_")}`));
  renamed.set(inputs.logitsOutput, builder.uniqueName("imported_logits"));
  const replacements = new Map<string, string>();

  const { inputIds, positions, logitIndices, ropeCos, ropeSin, past } = declareSessionInputs(
    builder,
    shape,
    selfExtend,
  );
  const context = buildAttentionContext(
    builder,
    { headCount, kvHeadCount, headSize },
    inputs.rope,
    { positions, ropeCos, ropeSin, inputIds },
    selfExtend,
  );
  const axisZero = builder.int64Constant([0], "import_axis_0");
  const unsqueezeBatch = (value: string, hint: string) =>
    builder.node("Unsqueeze", [value, axisZero], {}, { name: hint });
  // What the rest of the user's graph may still read: a batch of one.
  const userInputs: Record<string, () => string> = {
    input_ids: () => unsqueezeBatch(inputIds, "import_input_ids"),
    position_ids: () => unsqueezeBatch(positions, "import_position_ids"),
    attention_mask: () => {
      const one = builder.int64Constant([1], "import_one");
      return builder.node(
        "Expand",
        [one, builder.node("Concat", [one, context.keyCount], { axis: 0 }, { name: "import_mask_shape" })],
        {},
        { name: "import_attention_mask" },
      );
    },
  };
  for (const name of index.graphInputs) {
    const make = userInputs[name];
    if (make !== undefined) replacements.set(renamed.get(name) as string, make());
  }

  const tokenRows = (value: string, width: number, hint: string) =>
    builder.node(
      "Reshape",
      [value, builder.int64Constant([-1, width], `${hint}_rows_shape`)],
      {},
      { name: `${hint}_rows` },
    );
  const lastAxisSlice = (value: string, start: number, end: number, hint: string) =>
    builder.node(
      "Slice",
      [
        value,
        builder.int64Constant([start], `${hint}_start`),
        builder.int64Constant([end], `${hint}_end`),
        builder.int64Constant([-1], `${hint}_axis`),
      ],
      {},
      { name: hint },
    );

  for (const layer of layers) {
    const prefix = `import_layer${layer.layer}`;
    const queryWidth = headCount * headSize;
    const kvWidth = kvHeadCount * headSize;
    let query: string;
    let key: string;
    let value: string;
    if (layer.packedProjection !== undefined) {
      const packed = layer.packedProjection;
      query = lastAxisSlice(packed, 0, queryWidth, `${prefix}_query`);
      key = lastAxisSlice(packed, queryWidth, queryWidth + kvWidth, `${prefix}_key`);
      value = lastAxisSlice(packed, queryWidth + kvWidth, queryWidth + 2 * kvWidth, `${prefix}_value`);
    } else {
      query = layer.query as string;
      key = layer.key as string;
      value = layer.value as string;
    }
    if (
      layer.scale !== undefined &&
      Math.abs(layer.scale - 1 / Math.sqrt(headSize)) > 1e-6 / Math.sqrt(headSize)
    ) {
      throw new UnsupportedOnnxGraphError(
        modelPath,
        `layer ${layer.layer} scales scores by ${layer.scale}, not 1/sqrt(${headSize})`,
      );
    }
    const outputs = buildLayerAttention(builder, context, {
      layer: layer.layer,
      query: tokenRows(query, queryWidth, `${prefix}_query`),
      key: tokenRows(key, kvWidth, `${prefix}_key`),
      value: tokenRows(value, kvWidth, `${prefix}_value`),
      past: past[layer.layer],
    });
    replacements.set(layer.attentionOutput, unsqueezeBatch(outputs.attention, `${prefix}_attention_batch`));
    const presentShape = ["tokens", kvHeadCount, headSize];
    builder.output(outputs.presentKey, graphNames.presentKey(layer.layer), "float32", presentShape);
    if (outputs.presentKeyGroup !== undefined) {
      builder.output(
        outputs.presentKeyGroup,
        graphNames.presentKeyGroup(layer.layer),
        "float32",
        presentShape,
      );
    }
    builder.output(outputs.presentValue, graphNames.presentValue(layer.layer), "float32", presentShape);
  }

  // Logits: the user's [1, T, vocabulary], only the rows the session asks for.
  const userLogits = renamed.get(inputs.logitsOutput) as string;
  const logitRows = builder.node(
    "Gather",
    [builder.node("Squeeze", [userLogits, axisZero], {}, { name: "import_logits_rows" }), logitIndices],
    { axis: 0 },
    { name: "import_selected_logits" },
  );
  builder.output(logitRows, graphNames.logits, "float32", ["logit_count", vocabularySize]);

  const built = builder.build({ graphName: "unused", producerVersion: "" }).graph!;
  // The user's nodes, with their inputs renamed and attention outputs replaced.
  const rename = (name: string) =>
    replacements.get(renamed.get(name) ?? name) ?? replacements.get(name) ?? renamed.get(name) ?? name;
  const userNodes: NodeProto[] = graph.node.map((node) => {
    node.input = node.input.map((input) => (input === "" ? input : rename(input)));
    node.output = node.output.map((output) => (output === inputs.logitsOutput ? userLogits : output));
    return node;
  });
  const nodes = [...userNodes, ...built.node];
  const outputs = built.output;
  const live = liveNodes(nodes, new Set(outputs.map((output) => output.name)));
  const liveValues = new Set<string>();
  for (const node of live) for (const input of valuesRead(node)) liveValues.add(input);
  for (const name of index.graphInputs) {
    const internal = renamed.get(name) as string;
    if (liveValues.has(internal) && !replacements.has(internal)) {
      const reader = live.find((node) => node.input.includes(internal));
      throw new UnsupportedOnnxGraphError(
        modelPath,
        `${reader?.name || reader?.opType} still reads the graph input ${name} after the rewrite; only input_ids, position_ids and attention_mask can be fed`,
      );
    }
  }
  graph.node = live;
  graph.input = built.input;
  graph.output = outputs;
  graph.initializer = [...graph.initializer, ...built.initializer].filter((tensor) =>
    liveValues.has(tensor.name),
  );
  graph.valueInfo = [];
  if (index.opsetVersion < smallestOpset) {
    // 13 and 14 differ from 15 only in ops decoders do not use (BatchNormalization, Pow on bfloat16, Shape
    // gained start/end): lifting the version keeps the user's nodes' meaning.
    model.opsetImport = [
      ...model.opsetImport.filter((opset) => !(opset.domain === "" || opset.domain === "ai.onnx")),
      create(OperatorSetIdProtoSchema, { domain: "", version: BigInt(smallestOpset) }),
    ];
  }
  model.metadataProps = [
    ...model.metadataProps.filter((entry) => !entry.key.startsWith("self_extend.")),
    create(StringStringEntryProtoSchema, { key: "self_extend.attention", value: attention.kind }),
    ...(selfExtend === undefined
      ? []
      : [
          create(StringStringEntryProtoSchema, {
            key: "self_extend.group_size",
            value: String(selfExtend.groupSize),
          }),
          create(StringStringEntryProtoSchema, {
            key: "self_extend.neighbor_window",
            value: String(selfExtend.neighborWindow),
          }),
        ]),
  ];
  return model;
}

/**
 * The values a node reads: its inputs, and for a control-flow node (our If) the outer values its
 * branches read, which must be produced before it like inputs.
 */
function valuesRead(node: NodeProto): string[] {
  const read = node.input.filter((input) => input !== "");
  for (const attribute of node.attribute) {
    for (const branch of attribute.g === undefined ? attribute.graphs : [attribute.g]) {
      const produced = new Set(branch.node.flatMap((inner) => inner.output));
      for (const inner of branch.node)
        for (const value of valuesRead(inner)) if (!produced.has(value)) read.push(value);
    }
  }
  return read;
}

/** Nodes some output depends on, in their original (topological) order. */
function liveNodes(nodes: readonly NodeProto[], outputs: ReadonlySet<string>): NodeProto[] {
  const producer = new Map<string, NodeProto>();
  for (const node of nodes) for (const output of node.output) producer.set(output, node);
  const live = new Set<NodeProto>();
  const stack = [...outputs];
  while (stack.length > 0) {
    const value = stack.pop() as string;
    const node = producer.get(value);
    if (node === undefined || live.has(node)) continue;
    live.add(node);
    stack.push(...valuesRead(node));
  }
  // Our nodes come after the user's but may feed them (the attention output): order topologically.
  const ordered: NodeProto[] = [];
  const placed = new Set<NodeProto>();
  const visit = (node: NodeProto) => {
    if (placed.has(node)) return;
    placed.add(node);
    for (const input of valuesRead(node)) {
      const before = producer.get(input);
      if (before !== undefined && live.has(before)) visit(before);
    }
    ordered.push(node);
  };
  for (const node of nodes) if (live.has(node)) visit(node);
  return ordered;
}
