/**
 * A small builder over the generated ONNX protobuf types: nodes, graph inputs/outputs, inline
 * constants and float32 initializers that are written to an external data file.
 *
 * Why external data: protobuf messages are limited to 2 GiB and ONNX Runtime can map a data file
 * instead of parsing weights out of the model; the .onnx itself stays a few hundred kilobytes.
 * Why the generated types (not hand-rolled bytes): the encoder is checked against onnx.proto, keeps
 * int64 as bigint, and the same code decodes our exports back in tests.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import {
  type AttributeProto,
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  type GraphProto,
  GraphProtoSchema,
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  type TensorProto,
  TensorProto_DataLocation,
  TensorProto_DataType,
  TensorProtoSchema,
  TensorShapeProto_DimensionSchema,
  TensorShapeProtoSchema,
  TypeProto_TensorSchema,
  TypeProtoSchema,
  type ValueInfoProto,
  ValueInfoProtoSchema,
} from "./generated/onnx/onnx_pb.js";

/** ai.onnx opset of our exports: RMSNormalization needs 23; onnxruntime-node 1.30 loads up to 26. */
export const exportOpsetVersion = 23;
/** IR version 11 goes with opset 23 (ONNX 1.18); onnxruntime-node 1.30 loads up to IR 13. */
export const exportIrVersion = 11;

/** Offsets in the data file are aligned so that a runtime may memory-map each tensor. */
const externalDataAlignment = 4096;

export type AttributeValue =
  | number
  | string
  | readonly number[]
  | { readonly float: number }
  /** A control-flow node's branch (OnnxGraphBuilder.subgraph). */
  | { readonly graph: GraphProto };
export type Dimension = number | string;
export type ElementType = "float32" | "int64" | "bool";

const elementTypes: Record<ElementType, TensorProto_DataType> = {
  float32: TensorProto_DataType.FLOAT,
  int64: TensorProto_DataType.INT64,
  bool: TensorProto_DataType.BOOL,
};

/** One tensor of the external data file: where its bytes go and the array that holds them. */
export interface ExternalTensor {
  readonly name: string;
  readonly offset: number;
  readonly data: Float32Array;
}

function attribute(name: string, value: AttributeValue): AttributeProto {
  if (typeof value === "number") {
    if (!Number.isInteger(value)) throw new TypeError(`attribute ${name}: use { float } for non-integers`);
    return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INT, i: BigInt(value) });
  }
  if (typeof value === "string") {
    return create(AttributeProtoSchema, {
      name,
      type: AttributeProto_AttributeType.STRING,
      s: new TextEncoder().encode(value),
    });
  }
  if ("float" in value) {
    return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.FLOAT, f: value.float });
  }
  if ("graph" in value) {
    return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.GRAPH, g: value.graph });
  }
  return create(AttributeProtoSchema, {
    name,
    type: AttributeProto_AttributeType.INTS,
    ints: (value as readonly number[]).map((item) => BigInt(item)),
  });
}

function valueInfo(name: string, elementType: ElementType, shape: readonly Dimension[]): ValueInfoProto {
  const dim = shape.map((dimension) =>
    create(TensorShapeProto_DimensionSchema, {
      value:
        typeof dimension === "number"
          ? { case: "dimValue", value: BigInt(dimension) }
          : { case: "dimParam", value: dimension },
    }),
  );
  return create(ValueInfoProtoSchema, {
    name,
    type: create(TypeProtoSchema, {
      value: {
        case: "tensorType",
        value: create(TypeProto_TensorSchema, {
          elemType: elementTypes[elementType],
          shape: create(TensorShapeProtoSchema, { dim }),
        }),
      },
    }),
  });
}

export class OnnxGraphBuilder {
  /** Where node() adds: the main graph's nodes, or a subgraph's while subgraph() builds it. */
  private nodes: NodeProto[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly initializers: TensorProto[] = [];
  private readonly external: ExternalTensor[] = [];
  /** The same array (a tied embedding) becomes one initializer. */
  private readonly initializerByArray = new Map<Float32Array, string>();
  private readonly usedNames = new Set<string>();
  private externalSize = 0;
  private nodeCount = 0;

  constructor(readonly externalDataFileName: string) {}

  /** Marks names as taken (the values of a graph being rewritten), so new names never collide. */
  reserveNames(names: Iterable<string>): void {
    for (const name of names) this.usedNames.add(name);
  }

  /** A value name not used yet, derived from `hint` so the graph stays readable in Netron. */
  uniqueName(hint: string): string {
    let name = hint;
    for (let suffix = 1; this.usedNames.has(name); suffix++) name = `${hint}_${suffix}`;
    this.usedNames.add(name);
    return name;
  }

  input(name: string, elementType: ElementType, shape: readonly Dimension[]): string {
    this.usedNames.add(name);
    this.inputs.push(valueInfo(name, elementType, shape));
    return name;
  }

  /** Declares `value` as a graph output named `name` (through Identity when the names differ). */
  output(value: string, name: string, elementType: ElementType, shape: readonly Dimension[]): string {
    if (value !== name) {
      this.usedNames.add(name);
      this.nodes.push(
        create(NodeProtoSchema, {
          opType: "Identity",
          input: [value],
          output: [name],
          name: `${name}_identity`,
        }),
      );
    }
    this.outputs.push(valueInfo(name, elementType, shape));
    return name;
  }

  /** Adds one node and returns its first output; `outputCount` > 1 names the others `<out>_1`... */
  node(
    opType: string,
    inputs: readonly string[],
    attributes: Record<string, AttributeValue> = {},
    options: { readonly name?: string; readonly domain?: string } = {},
  ): string {
    return this.nodeWithOutputs(opType, inputs, 1, attributes, options)[0];
  }

  nodeWithOutputs(
    opType: string,
    inputs: readonly string[],
    outputCount: number,
    attributes: Record<string, AttributeValue> = {},
    options: { readonly name?: string; readonly domain?: string } = {},
  ): string[] {
    const base = this.uniqueName(options.name ?? `${opType.toLowerCase()}_${this.nodeCount}`);
    this.nodeCount++;
    const output = [base];
    for (let index = 1; index < outputCount; index++) output.push(this.uniqueName(`${base}_${index}`));
    this.nodes.push(
      create(NodeProtoSchema, {
        opType,
        input: [...inputs],
        output,
        name: `${base}_node`,
        ...(options.domain === undefined ? {} : { domain: options.domain }),
        attribute: Object.entries(attributes).map(([key, value]) => attribute(key, value)),
      }),
    );
    return output;
  }

  /**
   * A branch of a control-flow node (If's then_branch / else_branch): the nodes `body` adds go into
   * it instead of the main graph, and it may read any value built before (ONNX's outer scope).
   * Its outputs, in the order `body` returns them, go through Identity to fresh names, so a branch
   * may return an outer value as it is. Constants it creates stay in the main graph's initializers,
   * which the branch reads from the outer scope.
   */
  subgraph(
    name: string,
    body: () => readonly { readonly value: string; readonly elementType: ElementType }[],
  ): GraphProto {
    const outer = this.nodes;
    this.nodes = [];
    try {
      const outputs = body().map(({ value, elementType }) => {
        const output = this.node("Identity", [value], {}, { name: `${name}_${value}` });
        return create(ValueInfoProtoSchema, {
          name: output,
          type: create(TypeProtoSchema, {
            value: {
              case: "tensorType",
              value: create(TypeProto_TensorSchema, { elemType: elementTypes[elementType] }),
            },
          }),
        });
      });
      return create(GraphProtoSchema, { name, node: this.nodes, output: outputs });
    } finally {
      this.nodes = outer;
    }
  }

  /** A small int64 constant stored inside the model (shapes, axes, indices). */
  int64Constant(values: readonly number[], hint = "constant", scalar = false): string {
    const name = this.uniqueName(hint);
    this.initializers.push(
      create(TensorProtoSchema, {
        name,
        dims: scalar ? [] : [BigInt(values.length)],
        dataType: TensorProto_DataType.INT64,
        int64Data: values.map((value) => BigInt(value)),
      }),
    );
    return name;
  }

  /** A small float32 constant stored inside the model (scales, the -inf of the mask). */
  floatConstant(
    values: readonly number[] | Float32Array,
    dims: readonly number[],
    hint = "constant",
  ): string {
    const name = this.uniqueName(hint);
    this.initializers.push(
      create(TensorProtoSchema, {
        name,
        dims: dims.map((dim) => BigInt(dim)),
        dataType: TensorProto_DataType.FLOAT,
        floatData: Array.from(values),
      }),
    );
    return name;
  }

  /** A float32 weight whose bytes go to the external data file. */
  weight(data: Float32Array, dims: readonly number[], hint: string): string {
    const existing = this.initializerByArray.get(data);
    if (existing !== undefined) return existing;
    const expected = dims.reduce((product, dim) => product * dim, 1);
    if (expected !== data.length) {
      throw new RangeError(
        `weight ${hint}: ${data.length} values do not fill the shape [${dims.join(", ")}]`,
      );
    }
    const name = this.uniqueName(hint);
    const offset = Math.ceil(this.externalSize / externalDataAlignment) * externalDataAlignment;
    this.externalSize = offset + data.byteLength;
    this.external.push({ name, offset, data });
    this.initializerByArray.set(data, name);
    this.initializers.push(
      create(TensorProtoSchema, {
        name,
        dims: dims.map((dim) => BigInt(dim)),
        dataType: TensorProto_DataType.FLOAT,
        dataLocation: TensorProto_DataLocation.EXTERNAL,
        externalData: [
          create(StringStringEntryProtoSchema, { key: "location", value: this.externalDataFileName }),
          create(StringStringEntryProtoSchema, { key: "offset", value: String(offset) }),
          create(StringStringEntryProtoSchema, { key: "length", value: String(data.byteLength) }),
        ],
      }),
    );
    return name;
  }

  /** Tensors of the external data file in file order, and the file's total size. */
  externalTensors(): { readonly tensors: readonly ExternalTensor[]; readonly size: number } {
    return { tensors: this.external, size: this.externalSize };
  }

  build(options: {
    readonly graphName: string;
    readonly producerVersion: string;
    readonly metadata?: Record<string, string>;
    readonly docString?: string;
  }): ModelProto {
    return create(ModelProtoSchema, {
      irVersion: BigInt(exportIrVersion),
      opsetImport: [create(OperatorSetIdProtoSchema, { domain: "", version: BigInt(exportOpsetVersion) })],
      producerName: "@self-extend/onnxruntime",
      producerVersion: options.producerVersion,
      ...(options.docString === undefined ? {} : { docString: options.docString }),
      metadataProps: Object.entries(options.metadata ?? {}).map(([key, value]) =>
        create(StringStringEntryProtoSchema, { key, value }),
      ),
      graph: create(GraphProtoSchema, {
        name: options.graphName,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers,
      }),
    });
  }
}

export function encodeModel(model: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, model);
}
