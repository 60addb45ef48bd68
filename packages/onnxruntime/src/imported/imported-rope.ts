/**
 * The RoPE of a user's export, taken from the graph itself rather than re-derived from a config:
 * whatever scaling the exporter baked in (llama3 factors, linear, an attention factor) is what the
 * rewritten graph uses.
 * - cos/sin computed from position_ids (torch.onnx exports): the subgraph that computes them is cut
 *   out and run by ONNX Runtime on positions 0 .. P - 1.
 * - cos/sin caches (GroupQueryAttention, RotaryEmbedding): the rows are read from the initializers.
 *   Positions past the cache (a cache as long as the trained context, while Self-Extend's neighbor
 *   positions run to the whole context) continue the same angles: each pair's frequency is read
 *   off the cache (row 1, refined on the last row so the error does not grow with position) and
 *   cos/sin of position * frequency are computed in double precision.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { dirname, join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { float16BitsToNumber } from "@self-extend/models";
import {
  GraphProtoSchema,
  ModelProtoSchema,
  type TensorProto,
  TensorProto_DataLocation,
  TensorProto_DataType,
  TensorProto_DataTypeSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  ValueInfoProtoSchema,
} from "../generated/onnx/onnx_pb.js";
import { encodeModel } from "../onnx-graph-builder.js";
import type { OnnxRuntime } from "../onnxruntime-loader.js";
import type { RopeTableSource } from "../onnxruntime-session.js";
import type { DecoderGraphIndex } from "./decoder-graph-index.js";
import { type RotarySource, UnsupportedOnnxGraphError } from "./find-attention.js";

export interface ImportedRope {
  readonly layout: "half-split" | "interleaved";
  /** R: the rotated width of each head (the rest passes through: cos 1, sin 0). */
  readonly rotaryDimension: number;
  /** Makes the table for positionCount rows (runs ONNX Runtime for computed RoPE). */
  prepare(positionCount: number): Promise<RopeTableSource>;
}

function bytesPerElement(dataType: TensorProto_DataType): number {
  return dataType === TensorProto_DataType.FLOAT16 ? 2 : dataType === TensorProto_DataType.DOUBLE ? 8 : 4;
}

/** An initializer's values as float64 (float32, float16 or double; inline, raw or external). */
export function initializerValues(tensor: TensorProto, modelPath: string): Float64Array {
  const count = tensor.dims.reduce((product, dim) => product * Number(dim), 1);
  let bytes: Uint8Array;
  if (tensor.dataLocation === TensorProto_DataLocation.EXTERNAL) {
    const entry = (key: string) => tensor.externalData.find((item) => item.key === key)?.value;
    const location = entry("location");
    if (location === undefined)
      throw new UnsupportedOnnxGraphError(
        modelPath,
        `initializer ${tensor.name} has external data without a location`,
      );
    // Only this tensor's bytes: data files of real models are gigabytes.
    const offset = Number(entry("offset") ?? 0);
    const length = Number(entry("length") ?? count * bytesPerElement(tensor.dataType));
    bytes = new Uint8Array(length);
    const descriptor = openSync(join(dirname(modelPath), location), "r");
    try {
      let done = 0;
      while (done < length) {
        const read = readSync(descriptor, bytes, done, length - done, offset + done);
        if (read === 0)
          throw new UnsupportedOnnxGraphError(
            modelPath,
            `initializer ${tensor.name} runs past the end of ${location}`,
          );
        done += read;
      }
    } finally {
      closeSync(descriptor);
    }
  } else {
    bytes = tensor.rawData;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values = new Float64Array(count);
  switch (tensor.dataType) {
    case TensorProto_DataType.FLOAT:
      for (let index = 0; index < count; index++) {
        values[index] = bytes.byteLength > 0 ? view.getFloat32(index * 4, true) : tensor.floatData[index];
      }
      return values;
    case TensorProto_DataType.FLOAT16:
      for (let index = 0; index < count; index++) {
        values[index] = float16BitsToNumber(
          bytes.byteLength > 0 ? view.getUint16(index * 2, true) : tensor.int32Data[index],
        );
      }
      return values;
    case TensorProto_DataType.DOUBLE:
      for (let index = 0; index < count; index++) {
        values[index] = bytes.byteLength > 0 ? view.getFloat64(index * 8, true) : tensor.doubleData[index];
      }
      return values;
    default:
      throw new UnsupportedOnnxGraphError(
        modelPath,
        `initializer ${tensor.name} has element type ${TensorProto_DataTypeSchema.values[tensor.dataType]?.name ?? tensor.dataType}, expected float`,
      );
  }
}

/**
 * Each rotary pair's angle per position, read off a [rows, pairs] cos/sin cache: coarse from row 1,
 * refined on the last row (the error of a float32 angle then shrinks with the row count instead of
 * growing with the position). Both the rewrite (positions past the cache) and the imported weights
 * (the reference backend's RoPE description) use it, so the two agree.
 */
export function ropeCacheFrequencies(
  cos: Float64Array,
  sin: Float64Array,
  rows: number,
  pairs: number,
): number[] {
  const last = rows - 1;
  return Array.from({ length: pairs }, (_, pair) => {
    const coarse = Math.atan2(sin[pairs + pair], cos[pairs + pair]);
    const wrapped = Math.atan2(sin[last * pairs + pair], cos[last * pairs + pair]);
    const turns = Math.round((coarse * last - wrapped) / (2 * Math.PI));
    return (wrapped + 2 * Math.PI * turns) / last;
  });
}

/** Writes rows of R/2 pair values into full-head rows (cos 1 and sin 0 past R). */
function expandRows(
  pairValues: (position: number, pair: number) => [number, number],
  positionCount: number,
  headSize: number,
  rotaryDimension: number,
  layout: "half-split" | "interleaved",
) {
  const pairs = rotaryDimension / 2;
  const cos = new Float32Array(positionCount * headSize).fill(1);
  const sin = new Float32Array(positionCount * headSize);
  for (let position = 0; position < positionCount; position++) {
    for (let pair = 0; pair < pairs; pair++) {
      const [c, s] = pairValues(position, pair);
      const [first, second] = layout === "interleaved" ? [2 * pair, 2 * pair + 1] : [pair, pair + pairs];
      cos[position * headSize + first] = c;
      cos[position * headSize + second] = c;
      sin[position * headSize + first] = s;
      sin[position * headSize + second] = s;
    }
  }
  return { cos, sin };
}

export async function importedRope(
  index: DecoderGraphIndex,
  rotary: RotarySource,
  headSize: number,
  modelPath: string,
  runtime: () => Promise<OnnxRuntime>,
): Promise<ImportedRope> {
  if (rotary.kind === "cache") {
    const cosTensor = index.initializers.get(rotary.cosCache);
    const sinTensor = index.initializers.get(rotary.sinCache);
    if (cosTensor === undefined || sinTensor === undefined || cosTensor.dims.length !== 2) {
      throw new UnsupportedOnnxGraphError(
        modelPath,
        `the RoPE cache ${rotary.cosCache} is not a [positions, R/2] initializer`,
      );
    }
    const rows = Number(cosTensor.dims[0]);
    const pairs = Number(cosTensor.dims[1]);
    const rotaryDimension = pairs * 2;
    if (rotaryDimension > headSize) {
      throw new UnsupportedOnnxGraphError(
        modelPath,
        `the RoPE cache ${rotary.cosCache} is wider (${pairs} pairs) than the head (${headSize})`,
      );
    }
    const layout = rotary.interleaved ? "interleaved" : "half-split";
    const cosCache = initializerValues(cosTensor, modelPath);
    const sinCache = initializerValues(sinTensor, modelPath);
    const frequencies = ropeCacheFrequencies(cosCache, sinCache, rows, pairs);
    const table: RopeTableSource = (positionCount) =>
      expandRows(
        (position, pair) =>
          position < rows
            ? [cosCache[position * pairs + pair], sinCache[position * pairs + pair]]
            : [Math.cos(position * frequencies[pair]), Math.sin(position * frequencies[pair])],
        positionCount,
        headSize,
        rotaryDimension,
        layout,
      );
    return { layout, rotaryDimension, prepare: async () => table };
  }

  // Computed RoPE: the nodes between position_ids and cos/sin, run on their own.
  const nodes = new Set<number>();
  const nodeIndex = new Map(index.graph.node.map((node, position) => [node, position]));
  const stack = [rotary.cos, rotary.sin];
  const seen = new Set<string>();
  const initializers = new Set<string>();
  while (stack.length > 0) {
    const value = stack.pop() as string;
    if (value === "" || seen.has(value)) continue;
    seen.add(value);
    if (index.initializers.has(value)) {
      initializers.add(value);
      continue;
    }
    if (index.graphInputs.has(value)) {
      if (value !== rotary.positionIds) {
        throw new UnsupportedOnnxGraphError(
          modelPath,
          `the RoPE cos/sin depend on the input ${value}, not only on ${rotary.positionIds}`,
        );
      }
      continue;
    }
    const producer = index.producers.get(value);
    if (producer === undefined) continue;
    nodes.add(nodeIndex.get(producer) as number);
    stack.push(...producer.input);
  }
  const subgraph = create(ModelProtoSchema, {
    irVersion: index.model.irVersion,
    opsetImport: index.model.opsetImport,
    graph: create(GraphProtoSchema, {
      name: "rope",
      node: [...nodes].sort((a, b) => a - b).map((position) => index.graph.node[position]),
      input: index.graph.input.filter((value) => value.name === rotary.positionIds),
      output: [rotary.cos, rotary.sin].map((name) =>
        create(ValueInfoProtoSchema, {
          name,
          type: create(TypeProtoSchema, {
            value: {
              case: "tensorType",
              value: create(TypeProto_TensorSchema, { elemType: TensorProto_DataType.FLOAT }),
            },
          }),
        }),
      ),
      initializer: index.graph.initializer.filter((tensor) => initializers.has(tensor.name)),
    }),
  });
  const evaluate = async (positionCount: number) => {
    const ort = await runtime();
    const session = await ort.InferenceSession.create(encodeModel(subgraph));
    try {
      const positions = BigInt64Array.from({ length: positionCount }, (_, position) => BigInt(position));
      const results = await session.run({
        [rotary.positionIds]: new ort.Tensor("int64", positions, [1, positionCount]),
      });
      const cos = results[rotary.cos];
      const sin = results[rotary.sin];
      const width = cos.dims.at(-1) as number;
      if (cos.data.length !== positionCount * width || !(cos.data instanceof Float32Array)) {
        throw new UnsupportedOnnxGraphError(
          modelPath,
          `the graph's RoPE cos has shape [${cos.dims.join(", ")}] for ${positionCount} positions; expected float32 rows`,
        );
      }
      return { width, cos: cos.data, sin: sin.data as Float32Array };
    } finally {
      await session.release();
    }
  };
  const probe = await evaluate(2);
  const rotaryDimension = probe.width;
  // torch exports hold each angle twice, at k and k + R/2 (rotate_half's pairs).
  const half = rotaryDimension / 2;
  for (let pair = 0; pair < half; pair++) {
    if (probe.cos[rotaryDimension + pair] !== probe.cos[rotaryDimension + pair + half]) {
      throw new UnsupportedOnnxGraphError(
        modelPath,
        "the graph's RoPE cos rows are not two equal halves (rotate_half pairs)",
      );
    }
  }
  if (rotaryDimension > headSize || rotaryDimension % 2 !== 0) {
    throw new UnsupportedOnnxGraphError(
      modelPath,
      `the graph's RoPE is ${rotaryDimension} wide for heads of ${headSize}`,
    );
  }
  return {
    layout: "half-split",
    rotaryDimension,
    async prepare(positionCount) {
      const { cos, sin } = await evaluate(positionCount);
      const table = expandRows(
        (position, pair) => [cos[position * rotaryDimension + pair], sin[position * rotaryDimension + pair]],
        positionCount,
        headSize,
        rotaryDimension,
        "half-split",
      );
      return () => table;
    },
  };
}
