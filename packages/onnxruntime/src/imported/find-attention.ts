/**
 * Finds each layer's attention in a user's decoder export, as the values the rewriter needs and
 * nothing else: the query, key and value projections before RoPE ([batch, T, width]), the value
 * the output projection reads ([batch, T, heads * headSize]), the layer's past/present cache
 * names, and where the graph's RoPE comes from. Everything between the projections and the output
 * projection is what Self-Extend replaces.
 *
 * Two shapes of attention are recognised:
 * - com.microsoft GroupQueryAttention (onnxruntime-genai's model builder): the projections are its
 *   inputs (one packed QKV input, or three), its first output is the attention, RoPE is either
 *   inside it (do_rotary = 1, with its cos/sin cache inputs) or in com.microsoft RotaryEmbedding
 *   nodes just before it.
 * - Decomposed attention (torch.onnx exports: Optimum, transformers.js's onnx-community models): the
 *   layer's present key is Concat(past key, new key); walking back from the new key through RoPE
 *   (x * cos + rotate_half(x) * sin), Transpose and Reshape reaches the key projection; the score
 *   MatMul reads the present key, its other input leads back to the query projection; Softmax, the
 *   product with the present value, then Transpose/Reshape lead to the output projection.
 * Anything else is refused with the node it stopped at, never run plainly.
 */
import { SelfExtendError } from "@self-extend/core";
import type { NodeProto } from "../generated/onnx/onnx_pb.js";
import { type DecoderGraphIndex, describeNode } from "./decoder-graph-index.js";

/** The user's graph cannot be given Self-Extend attention; the message names the node and the reason. */
export class UnsupportedOnnxGraphError extends SelfExtendError {
  override readonly name = "UnsupportedOnnxGraphError";
  constructor(
    readonly modelPath: string,
    reason: string,
  ) {
    super(`${modelPath}: cannot rewrite attention for Self-Extend: ${reason}`);
  }
}

/** Where the graph's RoPE angles come from. */
export type RotarySource =
  /** cos and sin computed in the graph from `position_ids` (evaluated by running that subgraph). */
  | { readonly kind: "computed"; readonly cos: string; readonly sin: string; readonly positionIds: string }
  /** cos/sin cache initializers of [positions, rotary / 2] rows (GroupQueryAttention, RotaryEmbedding). */
  | {
      readonly kind: "cache";
      readonly cosCache: string;
      readonly sinCache: string;
      readonly interleaved: boolean;
    };

export interface ImportedLayerAttention {
  readonly layer: number;
  readonly pattern: "group-query-attention" | "decomposed";
  /** [batch, T, width] values. With `packedProjection`, all three are undefined. */
  readonly query?: string;
  readonly key?: string;
  readonly value?: string;
  /** One [batch, T, (heads + 2 kvHeads) * headSize] value holding Q, K and V in that order. */
  readonly packedProjection?: string;
  /** What the output projection reads: [batch, T, heads * headSize]. */
  readonly attentionOutput: string;
  readonly pastKey: string;
  readonly pastValue: string;
  readonly presentKey: string;
  readonly presentValue: string;
  readonly rotary: RotarySource;
  /** Softmax scale the graph uses (GroupQueryAttention's `scale`), when it says. */
  readonly scale?: number;
}

export interface AttentionShapeHint {
  readonly headCount: number;
  readonly kvHeadCount: number;
  readonly headSize: number;
  readonly embeddingSize: number;
}

const cacheName = /^past_key_values\.(\d+)\.(key|value)$/;

/** The layer's cache inputs and outputs, by the names Optimum, transformers.js and genai all use. */
function cacheNames(index: DecoderGraphIndex, modelPath: string) {
  const layers = new Map<number, { pastKey?: string; pastValue?: string }>();
  for (const name of index.graphInputs) {
    const match = cacheName.exec(name);
    if (match === null) continue;
    const layer = Number(match[1]);
    const entry = layers.get(layer) ?? {};
    if (match[2] === "key") entry.pastKey = name;
    else entry.pastValue = name;
    layers.set(layer, entry);
  }
  if (layers.size === 0) {
    throw new UnsupportedOnnxGraphError(
      modelPath,
      `no past_key_values.N.key/value inputs (inputs: ${[...index.graphInputs].join(", ")}); export the decoder with its KV cache (Optimum: task text-generation-with-past)`,
    );
  }
  const count = Math.max(...layers.keys()) + 1;
  return Array.from({ length: count }, (_, layer) => {
    const entry = layers.get(layer);
    const presentKey = `present.${layer}.key`;
    const presentValue = `present.${layer}.value`;
    if (entry?.pastKey === undefined || entry.pastValue === undefined) {
      throw new UnsupportedOnnxGraphError(
        modelPath,
        `layer ${layer} has no past_key_values.${layer}.key/value inputs`,
      );
    }
    for (const name of [presentKey, presentValue]) {
      if (!index.graphOutputs.has(name)) {
        throw new UnsupportedOnnxGraphError(modelPath, `layer ${layer}: the graph has no output ${name}`);
      }
    }
    return { layer, pastKey: entry.pastKey, pastValue: entry.pastValue, presentKey, presentValue };
  });
}

/** Nodes that only move or reshape data: walked through when following a value. */
const dataMovement = new Set([
  "Transpose",
  "Reshape",
  "Unsqueeze",
  "Squeeze",
  "Expand",
  "Identity",
  "Cast",
  "Flatten",
]);

/** Which inputs of a node carry data (the rest are shapes, axes, indices). */
function dataInputs(node: NodeProto): readonly string[] {
  switch (node.opType) {
    case "Reshape":
    case "Unsqueeze":
    case "Squeeze":
    case "Expand":
    case "Slice":
    case "Transpose":
    case "Identity":
    case "Cast":
    case "Flatten":
    case "Neg":
    case "Split":
    case "RotaryEmbedding":
      return [node.input[0]];
    case "Gather":
      return [node.input[0]];
    default:
      return node.input.filter((input) => input !== "");
  }
}

export function findAttention(
  index: DecoderGraphIndex,
  shape: AttentionShapeHint,
  modelPath: string,
): ImportedLayerAttention[] {
  const refuse = (reason: string): never => {
    throw new UnsupportedOnnxGraphError(modelPath, reason);
  };
  for (const node of index.graph.node) {
    if (
      node.opType === "MultiHeadAttention" ||
      node.opType === "Attention" ||
      node.opType === "PagedAttention"
    ) {
      refuse(
        `${describeNode(node)} is not a supported attention op (supported: com.microsoft GroupQueryAttention and decomposed MatMul/Softmax attention)`,
      );
    }
  }
  const { headCount, kvHeadCount, headSize, embeddingSize } = shape;

  /**
   * The projection a value comes from, walking back through RoPE and data movement: a MatMul, Gemm
   * or MatMulNBits reading the hidden state (weight [embedding, width]), its bias Add, or a slice of
   * a fused projection.
   */
  const hasWeight = (node: NodeProto) => {
    const weight = index.constantShape(node.input[1]);
    return weight !== undefined && weight.length === 2 && weight.includes(embeddingSize);
  };
  /**
   * A projection's own output: MatMul/Gemm by a weight, com.microsoft MatMulNBits (int4), or the
   * rescaled MatMulInteger of onnxruntime's dynamic quantization (Mul(Cast(MatMulInteger(x, W)), scale)).
   */
  const isProjectionProduct = (value: string): boolean => {
    const producer = index.producers.get(value);
    if (producer === undefined) return false;
    if (producer.opType === "MatMulNBits") return true;
    if (producer.opType === "MatMul" || producer.opType === "Gemm") return hasWeight(producer);
    if (producer.opType === "Mul") {
      return producer.input.some((input) => {
        const cast = index.producers.get(input);
        const integer = cast?.opType === "Cast" ? index.producers.get(cast.input[0]) : undefined;
        return integer?.opType === "MatMulInteger" && hasWeight(integer);
      });
    }
    return false;
  };
  /** A projection's output, its bias Add, or a slice of a fused projection. */
  const isProjection = (value: string): boolean => {
    if (isProjectionProduct(value)) return true;
    const producer = index.producers.get(value);
    if (producer === undefined) return false;
    if (producer.opType === "Add") {
      return (
        producer.input.some((input) => isProjectionProduct(input)) &&
        producer.input.some((input) => index.constantShape(input)?.length === 1)
      );
    }
    if (producer.opType === "Slice" || producer.opType === "Split") return isProjection(producer.input[0]);
    return false;
  };

  /** Walks back from `start` and returns the projections reached, and whether a Cos op was on the way. */
  const projectionsBehind = (start: string) => {
    const found = new Set<string>();
    const seen = new Set<string>();
    let sawRotary = false;
    const stack = [start];
    while (stack.length > 0) {
      const value = stack.pop() as string;
      if (seen.has(value)) continue;
      seen.add(value);
      if (isProjection(value)) {
        found.add(value);
        continue;
      }
      const producer = index.producers.get(value);
      if (producer === undefined) continue;
      if (producer.opType === "Cos" || producer.opType === "Sin" || producer.opType === "RotaryEmbedding") {
        sawRotary = true;
      }
      stack.push(...dataInputs(producer));
    }
    return { projections: [...found], sawRotary };
  };

  /** Follows a value forward through data movement (and scaling) to the first node of `opTypes`. */
  const forwardTo = (start: string, opTypes: readonly string[], through: ReadonlySet<string>) => {
    const reached: NodeProto[] = [];
    const seen = new Set<string>();
    const stack = [start];
    while (stack.length > 0) {
      const value = stack.pop() as string;
      if (seen.has(value)) continue;
      seen.add(value);
      for (const consumer of index.consumersOf(value)) {
        if (opTypes.includes(consumer.opType)) {
          if (!reached.includes(consumer)) reached.push(consumer);
        } else if (through.has(consumer.opType)) {
          stack.push(...consumer.output);
        }
      }
    }
    return reached;
  };

  /**
   * The cos and sin of RoPE on the new key: x * cos + rotate_half(x) * sin, where rotate_half is a
   * Concat (of -x2 and x1). Phi-3's export wraps it as Concat(rotated part, passed-through part).
   */
  const rotaryOf = (newKey: string): RotarySource | undefined => {
    let add = index.producers.get(newKey);
    if (add?.opType === "Concat") add = index.producers.get(add.input[0]);
    // onnxruntime's transformer optimizer fuses the pattern into com.microsoft RotaryEmbedding
    // (input, position_ids, cos_cache, sin_cache).
    if (add?.opType === "RotaryEmbedding") {
      const [, , cosCache, sinCache] = add.input;
      if (!index.initializers.has(cosCache) || !index.initializers.has(sinCache)) return undefined;
      if (
        index.intAttribute(add, "rotary_embedding_dim", 0) !== 0 ||
        index.intAttribute(add, "num_heads", 0) !== 0
      ) {
        return undefined;
      }
      return {
        kind: "cache",
        cosCache,
        sinCache,
        interleaved: index.intAttribute(add, "interleaved", 0) === 1,
      };
    }
    if (add?.opType !== "Add") return undefined;
    const muls = add.input.map((input) => index.producers.get(input));
    if (muls.some((mul) => mul?.opType !== "Mul")) return undefined;
    const isRotateHalf = (value: string) => index.producers.get(value)?.opType === "Concat";
    const sinMul = muls.find((mul) => mul?.input.some(isRotateHalf));
    const cosMul = muls.find((mul) => mul !== sinMul);
    if (sinMul === undefined || cosMul === undefined) return undefined;
    const rotateHalf = index.producers.get(sinMul.input.find(isRotateHalf) as string) as NodeProto;
    const sin = sinMul.input.find((input) => !isRotateHalf(input)) as string;
    // In the cos branch, x is the operand rotate_half was computed from.
    const x = cosMul.input.find((operand) =>
      rotateHalf.input.some((half) => dependsOn(index, half, operand, 4)),
    );
    const cos = cosMul.input.find((operand) => operand !== x);
    if (x === undefined || cos === undefined) return undefined;
    if (!index.graphInputs.has("position_ids")) return undefined;
    return { kind: "computed", cos, sin, positionIds: "position_ids" };
  };

  const layers = cacheNames(index, modelPath);
  return layers.map((names): ImportedLayerAttention => {
    const presentKeyProducer = index.producers.get(names.presentKey);
    const where = `layer ${names.layer}`;
    if (presentKeyProducer === undefined) return refuse(`${where}: nothing produces ${names.presentKey}`);

    if (presentKeyProducer.opType === "GroupQueryAttention") {
      const node = presentKeyProducer;
      if (
        node.output[2] !== names.presentValue ||
        node.input[3] !== names.pastKey ||
        node.input[4] !== names.pastValue
      ) {
        return refuse(`${where}: ${describeNode(node)} does not read and write this layer's cache`);
      }
      const attribute = (name: string, fallback: number) => index.intAttribute(node, name, fallback);
      if (attribute("num_heads", -1) !== headCount || attribute("kv_num_heads", -1) !== kvHeadCount) {
        return refuse(
          `${where}: ${describeNode(node)} has num_heads ${attribute("num_heads", -1)}/kv_num_heads ${attribute("kv_num_heads", -1)}, the configuration says ${headCount}/${kvHeadCount}`,
        );
      }
      const localWindow = attribute("local_window_size", -1);
      if (localWindow !== -1)
        return refuse(
          `${where}: ${describeNode(node)} uses a sliding window (local_window_size ${localWindow}); Self-Extend needs full attention`,
        );
      if (index.floatAttribute(node, "softcap", 0) !== 0)
        return refuse(
          `${where}: ${describeNode(node)} soft-caps its scores (softcap), which Self-Extend here does not apply`,
        );
      const packed = node.input[1] === "" || node.input[1] === undefined;
      let rotary: RotarySource;
      let query = node.input[0];
      let key = packed ? undefined : node.input[1];
      if (attribute("do_rotary", 0) === 1) {
        const cosCache = node.input[7];
        const sinCache = node.input[8];
        if (!index.initializers.has(cosCache) || !index.initializers.has(sinCache)) {
          return refuse(
            `${where}: ${describeNode(node)} rotates with cos/sin caches that are not initializers`,
          );
        }
        rotary = { kind: "cache", cosCache, sinCache, interleaved: attribute("rotary_interleaved", 0) === 1 };
      } else {
        // RoPE in com.microsoft RotaryEmbedding nodes in front of the query and key inputs.
        const queryRotary = index.producers.get(query);
        const keyRotary = key === undefined ? undefined : index.producers.get(key);
        if (queryRotary?.opType !== "RotaryEmbedding" || keyRotary?.opType !== "RotaryEmbedding" || packed) {
          return refuse(
            `${where}: ${describeNode(node)} has do_rotary = 0 and no RotaryEmbedding nodes on its query and key; the model has no rotary position embedding Self-Extend can regroup`,
          );
        }
        query = queryRotary.input[0];
        key = keyRotary.input[0];
        rotary = {
          kind: "cache",
          cosCache: queryRotary.input[2],
          sinCache: queryRotary.input[3],
          interleaved: index.intAttribute(queryRotary, "interleaved", 0) === 1,
        };
      }
      const scale = index.floatAttribute(node, "scale", 0);
      return {
        pattern: "group-query-attention",
        ...(packed ? { packedProjection: query } : { query, key, value: node.input[2] }),
        attentionOutput: node.output[0],
        ...names,
        rotary,
        ...(scale === 0 ? {} : { scale }),
      };
    }

    // Decomposed attention: present key = Concat(past key, new key) on the sequence axis.
    if (presentKeyProducer.opType !== "Concat" || !presentKeyProducer.input.includes(names.pastKey)) {
      return refuse(
        `${where}: ${names.presentKey} comes from ${describeNode(presentKeyProducer)}, not from com.microsoft GroupQueryAttention or Concat(past key, new key)`,
      );
    }
    const presentValueProducer = index.producers.get(names.presentValue);
    if (presentValueProducer?.opType !== "Concat" || !presentValueProducer.input.includes(names.pastValue)) {
      return refuse(`${where}: ${names.presentValue} is not Concat(past value, new value)`);
    }
    const newKey = presentKeyProducer.input.find((input) => input !== names.pastKey) as string;
    const newValue = presentValueProducer.input.find((input) => input !== names.pastValue) as string;
    const keySide = projectionsBehind(newKey);
    if (keySide.projections.length !== 1) {
      return refuse(
        `${where}: found ${keySide.projections.length} projections behind the new key ${newKey} (expected the key projection alone)`,
      );
    }
    if (!keySide.sawRotary) {
      return refuse(
        `${where}: no rotary position embedding (Cos/Sin) on the key path to ${describeNode(presentKeyProducer)}; Self-Extend regroups RoPE positions (ALiBi and absolute positions are not supported)`,
      );
    }
    const valueSide = projectionsBehind(newValue);
    if (valueSide.projections.length !== 1 || valueSide.sawRotary) {
      return refuse(
        `${where}: the new value ${newValue} does not come from one value projection without RoPE`,
      );
    }
    const key = keySide.projections[0];
    const rotary = rotaryOf(newKey);
    if (rotary === undefined) {
      return refuse(
        `${where}: the key's RoPE before ${describeNode(presentKeyProducer)} is neither x * cos + rotate_half(x) * sin with cos/sin computed from position_ids nor a full-width com.microsoft RotaryEmbedding with cos/sin cache initializers`,
      );
    }
    const moving = new Set([...dataMovement, "Mul", "Div"]);
    const scoreProducts = forwardTo(names.presentKey, ["MatMul"], moving);
    const valueProducts = forwardTo(names.presentValue, ["MatMul"], dataMovement);
    if (scoreProducts.length !== 1 || valueProducts.length !== 1) {
      return refuse(
        `${where}: expected one score MatMul reading ${names.presentKey} and one MatMul reading ${names.presentValue}, found ${scoreProducts.length} and ${valueProducts.length}`,
      );
    }
    const scores = scoreProducts[0];
    const queryInput =
      scores.input.find((input) => !forwardReaches(index, names.presentKey, input, moving)) ??
      scores.input[0];
    const querySide = projectionsBehind(queryInput);
    if (querySide.projections.length !== 1 || !querySide.sawRotary) {
      return refuse(
        `${where}: the query of ${describeNode(scores)} does not come from one query projection through RoPE`,
      );
    }
    const softmaxes = forwardTo(
      scores.output[0],
      ["Softmax"],
      new Set(["Add", "Mul", "Div", "Where", "Cast", "Sub", "Identity", "Slice", "Tanh"]),
    );
    if (softmaxes.length !== 1)
      return refuse(`${where}: ${describeNode(scores)} does not lead to one Softmax`);
    const product = valueProducts[0];
    // torch exports guard fully masked rows: Where(IsNaN(p), 0, p).
    const fromSoftmax = forwardTo(
      softmaxes[0].output[0],
      ["MatMul"],
      new Set(["Cast", "Identity", "Dropout", "Where"]),
    );
    if (fromSoftmax.length !== 1 || fromSoftmax[0] !== product) {
      return refuse(
        `${where}: ${describeNode(softmaxes[0])}'s probabilities do not multiply the present value`,
      );
    }
    // The output projection, or the DynamicQuantizeLinear in front of a quantized one.
    const outputProjections = forwardTo(
      product.output[0],
      ["MatMul", "Gemm", "MatMulNBits", "DynamicQuantizeLinear"],
      dataMovement,
    );
    if (outputProjections.length !== 1) {
      return refuse(`${where}: ${describeNode(product)} does not lead to one output projection`);
    }
    for (const node of [scores, product, softmaxes[0]]) {
      if (
        node.opType === "Softmax" &&
        index.intAttribute(node, "axis", -1) !== -1 &&
        index.intAttribute(node, "axis", -1) !== 3
      ) {
        return refuse(
          `${where}: ${describeNode(node)} normalises over axis ${index.intAttribute(node, "axis", -1)}, not the keys`,
        );
      }
    }
    if (headCount * headSize <= 0) refuse(`${where}: bad shape`);
    return {
      pattern: "decomposed",
      query: querySide.projections[0],
      key,
      value: valueSide.projections[0],
      attentionOutput: outputProjections[0].input[0],
      ...names,
      rotary,
    };
  });
}

function dependsOn(index: DecoderGraphIndex, value: string, target: string, depth: number): boolean {
  if (value === target) return true;
  if (depth === 0) return false;
  const producer = index.producers.get(value);
  if (producer === undefined) return false;
  return dataInputs(producer).some((input) => dependsOn(index, input, target, depth - 1));
}

function forwardReaches(
  index: DecoderGraphIndex,
  start: string,
  target: string,
  through: ReadonlySet<string>,
): boolean {
  const seen = new Set<string>();
  const stack = [start];
  while (stack.length > 0) {
    const value = stack.pop() as string;
    if (value === target) return true;
    if (seen.has(value)) continue;
    seen.add(value);
    for (const consumer of index.consumersOf(value)) {
      if (through.has(consumer.opType)) stack.push(...consumer.output);
    }
  }
  return false;
}
