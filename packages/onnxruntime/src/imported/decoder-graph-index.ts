/**
 * An index over a user's ONNX decoder graph: who produces and who consumes each value, the
 * initializers and their shapes, and the graph's own inputs and outputs. The attention finder and
 * the rewriter only ask questions through it.
 */
import type { GraphProto, ModelProto, NodeProto, TensorProto } from "../generated/onnx/onnx_pb.js";

export class DecoderGraphIndex {
  readonly graph: GraphProto;
  readonly producers = new Map<string, NodeProto>();
  readonly consumers = new Map<string, NodeProto[]>();
  readonly initializers = new Map<string, TensorProto>();
  readonly graphInputs: Set<string>;
  readonly graphOutputs: Set<string>;
  /** The default domain's opset version. */
  readonly opsetVersion: number;

  constructor(readonly model: ModelProto) {
    if (model.graph === undefined) throw new Error("the ONNX file holds no graph");
    this.graph = model.graph;
    for (const node of this.graph.node) {
      for (const output of node.output) if (output !== "") this.producers.set(output, node);
      for (const input of node.input) {
        if (input === "") continue;
        const list = this.consumers.get(input);
        if (list === undefined) this.consumers.set(input, [node]);
        else if (!list.includes(node)) list.push(node);
      }
    }
    for (const tensor of this.graph.initializer) this.initializers.set(tensor.name, tensor);
    this.graphInputs = new Set(
      this.graph.input.map((value) => value.name).filter((name) => !this.initializers.has(name)),
    );
    this.graphOutputs = new Set(this.graph.output.map((value) => value.name));
    const defaultDomain = model.opsetImport.find(
      (opset) => opset.domain === "" || opset.domain === "ai.onnx",
    );
    this.opsetVersion = defaultDomain === undefined ? 0 : Number(defaultDomain.version);
  }

  consumersOf(value: string): readonly NodeProto[] {
    return this.consumers.get(value) ?? [];
  }

  /** The dimensions of an initializer, or of a Constant node's tensor; undefined for computed values. */
  constantShape(value: string): number[] | undefined {
    const initializer = this.initializers.get(value);
    if (initializer !== undefined) return initializer.dims.map(Number);
    const producer = this.producers.get(value);
    if (producer?.opType === "Constant") {
      const tensor = producer.attribute.find((attribute) => attribute.name === "value")?.t;
      if (tensor !== undefined) return tensor.dims.map(Number);
    }
    return undefined;
  }

  /** A node's integer attribute, or the fallback. */
  intAttribute(node: NodeProto, name: string, fallback: number): number {
    const attribute = node.attribute.find((item) => item.name === name);
    return attribute === undefined ? fallback : Number(attribute.i);
  }

  floatAttribute(node: NodeProto, name: string, fallback: number): number {
    const attribute = node.attribute.find((item) => item.name === name);
    return attribute === undefined ? fallback : attribute.f;
  }
}

/** How a node is named in errors: its name if it has one, else its op type and first output. */
export function describeNode(node: NodeProto): string {
  const domain = node.domain === "" || node.domain === "ai.onnx" ? "" : `${node.domain}.`;
  return node.name === ""
    ? `${domain}${node.opType} -> ${node.output[0]}`
    : `${node.name} (${domain}${node.opType})`;
}
