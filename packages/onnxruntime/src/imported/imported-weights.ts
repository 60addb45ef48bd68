/**
 * The weights of a user's ONNX decoder export as LlamaWeights, so the reference backend can run the
 * same model the rewritten graph runs (issue 18's conformance on imported models).
 *
 * Weights are found by structure, never by initializer names (torch.onnx names them onnx::MatMul_733):
 * find-attention.ts gives each layer's q/k/v projections and attention output; from there the
 * RMSNorm in front of the projections, the output projection, the residual Add (or genai's
 * SkipSimplifiedLayerNormalization), the SwiGLU MLP, the next layer's norm, and at the ends the
 * embedding Gather on input_ids and the final norm and classifier before `logits` are each matched
 * against the pattern the exporters write. Anything else is refused with the node it stopped at.
 *
 * ONNX MatMul weights are [in, out]; LlamaWeights are [out, in], so they are transposed. Fused
 * projections (genai's packed QKV, Phi-3's qkv_proj and gate_up_proj) are split along their outputs
 * where the graph splits them. com.microsoft MatMulNBits weights (genai int4) are dequantised:
 * (code - zero point) * scale per block of K, codes packed low bits first, zero point
 * 2^(bits - 1) when the node has none (nodes with zero-point inputs are refused). So are
 * onnxruntime's dynamically quantised MatMulInteger weights and DequantizeLinear embedding
 * (transformers.js's model_quantized.onnx): (code - zero point) * scale, per tensor or per column.
 *
 * RoPE: the per-pair frequencies the graph actually uses (torch exports: the inv_freq constant in
 * front of Cos; genai: its cos/sin cache) are read, and expressed as the base from config.json's
 * rope_theta (genai_config.json has none: inferred from the cache), a linear factor where
 * rope_scaling says linear, and per-pair frequency factors for whatever else the exporter baked in
 * (llama3 scaling).
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";
import { basename, dirname, isAbsolute, join, normalize, resolve } from "node:path";
import { create, fromBinary } from "@bufbuild/protobuf";
import {
  type LlamaArchitecture,
  type LlamaLayerWeights,
  type LlamaModelDescription,
  type LlamaWeights,
  supportedArchitectures,
} from "@self-extend/models";
import {
  ModelProtoSchema,
  type NodeProto,
  type TensorProto,
  TensorProto_DataLocation,
  TensorProto_DataType,
  TensorProtoSchema,
} from "../generated/onnx/onnx_pb.js";
import { DecoderGraphIndex, describeNode } from "./decoder-graph-index.js";
import { findAttention, type ImportedLayerAttention, UnsupportedOnnxGraphError } from "./find-attention.js";
import { type ImportedConfig, locateFiles, readConfig } from "./imported-model.js";
import { initializerValues, ropeCacheFrequencies } from "./imported-rope.js";

/** A linear map found in the graph: y = W x + b, W as [outputs, inputs]. */
interface Linear {
  readonly weight: Float32Array;
  readonly outputs: number;
  readonly inputs: number;
  readonly bias?: Float32Array;
  /** The activation the map reads. */
  readonly input: string;
  readonly node: NodeProto;
}

/** An RMSNorm: its weight, epsilon, the value it normalises and where its sum comes from. */
interface RmsNorm {
  readonly weight: Float32Array;
  readonly epsilon: number;
  readonly node: NodeProto;
  /**
   * The residual stream it normalises, as the two addends of the sum when the norm adds them
   * itself (SkipSimplifiedLayerNormalization) or a single value.
   */
  readonly addends: readonly string[];
}

/** Relative error allowed between the graph's RoPE frequencies and the description's. */
const frequencyTolerance = 1e-5;

/** Nodes that pass a value through unchanged for our purposes (float casts, identity). */
const passThrough = new Set(["Cast", "Identity"]);

class ImportedWeightReader {
  /** Open external data files by location; tensors are read from them one by one. */
  private readonly files = new Map<string, { readonly descriptor: number; readonly size: number }>();
  private readonly linears = new Map<string, Linear | undefined>();
  private readonly index: DecoderGraphIndex;

  constructor(
    readonly modelPath: string,
    index: DecoderGraphIndex,
  ) {
    this.index = index;
  }

  refuse(reason: string): never {
    throw new UnsupportedOnnxGraphError(this.modelPath, reason);
  }

  /** The producer of a value, skipping casts and identities. */
  producer(value: string): NodeProto | undefined {
    let node = this.index.producers.get(value);
    while (node !== undefined && passThrough.has(node.opType)) node = this.index.producers.get(node.input[0]);
    return node;
  }

  /** The value behind casts and identities. */
  source(value: string): string {
    let current = value;
    let node = this.index.producers.get(current);
    while (node !== undefined && passThrough.has(node.opType)) {
      current = node.input[0];
      node = this.index.producers.get(current);
    }
    return current;
  }

  /** An initializer or Constant node's tensor, or undefined for computed values. */
  constantTensor(value: string): TensorProto | undefined {
    const initializer = this.index.initializers.get(value);
    if (initializer !== undefined) return initializer;
    const producer = this.index.producers.get(value);
    if (producer?.opType !== "Constant") return undefined;
    const attribute = producer.attribute.find((item) => item.name === "value");
    if (attribute?.t !== undefined) return attribute.t;
    const scalar = producer.attribute.find((item) => item.name === "value_float");
    if (scalar !== undefined) {
      return create(TensorProtoSchema, {
        name: value,
        dataType: TensorProto_DataType.FLOAT,
        floatData: [scalar.f],
      });
    }
    return undefined;
  }

  /** Closes the external data files. */
  close(): void {
    for (const { descriptor } of this.files.values()) closeSync(descriptor);
    this.files.clear();
  }

  /**
   * A tensor with its external data read into rawData. Each tensor's bytes are read on their own
   * (data files of real models are larger than one Node buffer may be).
   */
  private inline(tensor: TensorProto): TensorProto {
    if (tensor.dataLocation !== TensorProto_DataLocation.EXTERNAL) return tensor;
    const entry = (key: string) => tensor.externalData.find((item) => item.key === key)?.value;
    const location = entry("location");
    if (location === undefined)
      this.refuse(`initializer ${tensor.name} has external data without a location`);
    // ONNX Runtime only reads data files inside the model's folder; so does this reader.
    if (isAbsolute(location) || normalize(location).startsWith("..")) {
      this.refuse(`initializer ${tensor.name} has its data at ${location}, outside the model's folder`);
    }
    let file = this.files.get(location);
    if (file === undefined) {
      const path = join(dirname(this.modelPath), location);
      let descriptor: number;
      try {
        descriptor = openSync(path, "r");
      } catch (error) {
        return this.refuse(
          `initializer ${tensor.name}'s data file ${location} cannot be opened (${(error as Error).message})`,
        );
      }
      file = { descriptor, size: fstatSync(descriptor).size };
      this.files.set(location, file);
    }
    const offset = Number(entry("offset") ?? 0);
    const length = Number(entry("length") ?? file.size - offset);
    if (offset < 0 || length < 0 || offset + length > file.size) {
      this.refuse(`initializer ${tensor.name} reaches past the end of ${location} (${file.size} bytes)`);
    }
    const bytes = new Uint8Array(length);
    let read = 0;
    while (read < length) {
      const count = readSync(file.descriptor, bytes, read, length - read, offset + read);
      if (count === 0) this.refuse(`initializer ${tensor.name}: ${location} ended while reading`);
      read += count;
    }
    return create(TensorProtoSchema, {
      name: tensor.name,
      dims: tensor.dims,
      dataType: tensor.dataType,
      rawData: bytes,
    });
  }

  /** A float tensor's values (float32, float16 or double), wherever they are stored. */
  floats(tensor: TensorProto): Float64Array {
    return initializerValues(this.inline(tensor), this.modelPath);
  }

  /** A weight matrix's values as float32, without a float64 copy for the common float32 case. */
  float32(tensor: TensorProto): Float32Array {
    const inlined = this.inline(tensor);
    if (inlined.dataType !== TensorProto_DataType.FLOAT || inlined.rawData.byteLength === 0) {
      return Float32Array.from(initializerValues(inlined, this.modelPath));
    }
    const bytes = inlined.rawData;
    const count = tensor.dims.reduce((product, dim) => product * Number(dim), 1);
    if (bytes.byteLength !== count * 4) {
      this.refuse(`initializer ${tensor.name} holds ${bytes.byteLength} bytes for ${count} float32 values`);
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const values = new Float32Array(count);
    for (let index = 0; index < count; index++) values[index] = view.getFloat32(index * 4, true);
    return values;
  }

  /** A constant float value, or undefined when the value is computed. */
  constantFloats(value: string): Float64Array | undefined {
    const tensor = this.constantTensor(value);
    return tensor === undefined ? undefined : this.floats(tensor);
  }

  /** A uint8 tensor's bytes (MatMulNBits codes). */
  bytes(tensor: TensorProto): Uint8Array {
    if (tensor.dataType !== TensorProto_DataType.UINT8) {
      this.refuse(`initializer ${tensor.name} is not uint8`);
    }
    const inlined = this.inline(tensor);
    if (inlined.rawData.byteLength > 0) return inlined.rawData;
    return Uint8Array.from(inlined.int32Data);
  }

  /** An int8 or uint8 tensor's values (quantised weights and their zero points). */
  smallIntegers(tensor: TensorProto): Int16Array {
    if (tensor.dataType !== TensorProto_DataType.INT8 && tensor.dataType !== TensorProto_DataType.UINT8) {
      this.refuse(`initializer ${tensor.name} is not int8 or uint8`);
    }
    const inlined = this.inline(tensor);
    const count = tensor.dims.reduce((product, dim) => product * Number(dim), 1);
    const raw = inlined.rawData;
    if (raw.byteLength === 0) return Int16Array.from(inlined.int32Data);
    if (raw.byteLength !== count)
      this.refuse(`initializer ${tensor.name} holds ${raw.byteLength} bytes for ${count} values`);
    return tensor.dataType === TensorProto_DataType.INT8
      ? Int16Array.from(new Int8Array(raw.buffer, raw.byteOffset, raw.byteLength))
      : Int16Array.from(raw);
  }

  /**
   * A DequantizeLinear-style tensor: (q - zero point) * scale, with one scale and zero point for the
   * whole tensor, or one per output column of an [inputs, outputs] weight.
   */
  dequantized(quantized: string, scale: string, zeroPoint: string | undefined, what: string): Float32Array {
    const tensor = this.constantTensor(quantized);
    const scales = this.constantFloats(scale);
    const zeroTensor = zeroPoint ? this.constantTensor(zeroPoint) : undefined;
    if (tensor === undefined || scales === undefined || (zeroPoint && zeroTensor === undefined)) {
      return this.refuse(`${what}: its quantised weight, scale or zero point is not an initializer`);
    }
    const codes = this.smallIntegers(tensor);
    const zeros = zeroTensor === undefined ? new Int16Array(1) : this.smallIntegers(zeroTensor);
    const columns = Number(tensor.dims.at(-1));
    const perColumn = (values: ArrayLike<number>, name: string) => {
      if (values.length !== 1 && values.length !== columns) {
        this.refuse(
          `${what}: ${name} has ${values.length} values; per tensor (1) or per output column (${columns}) is read`,
        );
      }
      return values.length === 1 ? () => values[0] : (column: number) => values[column];
    };
    const scaleOf = perColumn(scales, "the scale");
    const zeroOf = perColumn(zeros, "the zero point");
    const values = new Float32Array(codes.length);
    for (let index = 0; index < codes.length; index++) {
      const column = index % columns;
      values[index] = (codes[index] - zeroOf(column)) * scaleOf(column);
    }
    return values;
  }

  /**
   * The integer values of a shape-like value: constants, and the arithmetic torch.onnx writes for
   * slice bounds (Shape -> Gather -> Add/Div/Mul); NaN where a dimension is not known here.
   */
  integers(value: string, depth = 0): number[] | undefined {
    if (depth > 24) return undefined;
    const tensor = this.constantTensor(value);
    if (tensor !== undefined) {
      if (tensor.dataType === TensorProto_DataType.INT64) {
        if (tensor.rawData.byteLength > 0) {
          const view = new DataView(
            tensor.rawData.buffer,
            tensor.rawData.byteOffset,
            tensor.rawData.byteLength,
          );
          return Array.from({ length: tensor.rawData.byteLength / 8 }, (_, item) =>
            Number(view.getBigInt64(item * 8, true)),
          );
        }
        return tensor.int64Data.map(Number);
      }
      if (tensor.dataType === TensorProto_DataType.INT32) {
        if (tensor.rawData.byteLength > 0) {
          const view = new DataView(
            tensor.rawData.buffer,
            tensor.rawData.byteOffset,
            tensor.rawData.byteLength,
          );
          return Array.from({ length: tensor.rawData.byteLength / 4 }, (_, item) =>
            view.getInt32(item * 4, true),
          );
        }
        return [...tensor.int32Data];
      }
      return undefined;
    }
    const node = this.index.producers.get(value);
    if (node === undefined) return undefined;
    const operand = (position: number) => this.integers(node.input[position], depth + 1);
    switch (node.opType) {
      case "Cast":
      case "Identity":
      case "Unsqueeze":
      case "Squeeze":
        return operand(0);
      case "Concat": {
        const parts = node.input.map((_, position) => operand(position));
        return parts.some((part) => part === undefined) ? undefined : (parts.flat() as number[]);
      }
      case "Shape": {
        // The one shape known here: a linear map's output, [batch, tokens, outputs].
        const linear = this.linear(node.input[0]);
        return linear === undefined ? undefined : [Number.NaN, Number.NaN, linear.outputs];
      }
      case "Gather": {
        const data = operand(0);
        const indices = operand(1);
        if (data === undefined || indices === undefined) return undefined;
        return indices.map((item) => data[item < 0 ? item + data.length : item]);
      }
      case "Add":
      case "Sub":
      case "Mul":
      case "Div": {
        const left = operand(0);
        const right = operand(1);
        if (left === undefined || right === undefined) return undefined;
        const length = Math.max(left.length, right.length);
        return Array.from({ length }, (_, item) => {
          const a = left[left.length === 1 ? 0 : item];
          const b = right[right.length === 1 ? 0 : item];
          if (node.opType === "Add") return a + b;
          if (node.opType === "Sub") return a - b;
          if (node.opType === "Mul") return a * b;
          return Math.trunc(a / b);
        });
      }
      default:
        return undefined;
    }
  }

  /**
   * The linear map that produces `value`: MatMul / Gemm with a constant weight, MatMulNBits, a bias
   * Add on one of those, or a Slice of one along its outputs. Undefined for anything else.
   */
  linear(value: string): Linear | undefined {
    // Memoised: a fused projection is read once for its slices and for the shapes of its output.
    if (!this.linears.has(value)) this.linears.set(value, this.findLinear(value));
    return this.linears.get(value);
  }

  private findLinear(value: string): Linear | undefined {
    const node = this.index.producers.get(value);
    if (node === undefined) return undefined;
    if (node.opType === "MatMul") {
      const tensor = this.constantTensor(node.input[1]);
      if (tensor === undefined || tensor.dims.length !== 2) return undefined;
      const [inputs, outputs] = tensor.dims.map(Number);
      return {
        weight: transpose(this.float32(tensor), inputs, outputs),
        outputs,
        inputs,
        input: node.input[0],
        node,
      };
    }
    if (node.opType === "Gemm") {
      const tensor = this.constantTensor(node.input[1]);
      if (tensor === undefined || tensor.dims.length !== 2) return undefined;
      if (
        this.index.intAttribute(node, "transA", 0) !== 0 ||
        this.index.floatAttribute(node, "alpha", 1) !== 1 ||
        this.index.floatAttribute(node, "beta", 1) !== 1
      ) {
        this.refuse(
          `${describeNode(node)} scales or transposes its input (alpha, beta, transA); not a plain projection`,
        );
      }
      const transposed = this.index.intAttribute(node, "transB", 0) === 1;
      const [first, second] = tensor.dims.map(Number);
      const [inputs, outputs] = transposed ? [second, first] : [first, second];
      const values = this.float32(tensor);
      const weight = transposed ? values : transpose(values, inputs, outputs);
      const biasValues = node.input[2] ? this.constantFloats(node.input[2]) : undefined;
      if (biasValues !== undefined && biasValues.length !== outputs) {
        this.refuse(`${describeNode(node)}'s bias has ${biasValues.length} values for ${outputs} outputs`);
      }
      return {
        weight,
        outputs,
        inputs,
        ...(biasValues === undefined ? {} : { bias: Float32Array.from(biasValues) }),
        input: node.input[0],
        node,
      };
    }
    if (node.opType === "MatMulNBits") return this.matMulNBits(node);
    if (node.opType === "Mul") {
      const quantized = this.matMulInteger(node);
      if (quantized !== undefined) return quantized;
    }
    if (node.opType === "Add") {
      for (const [position, other] of [
        [0, 1],
        [1, 0],
      ]) {
        const bias = this.constantFloats(node.input[position]);
        if (bias === undefined) continue;
        const base = this.linear(node.input[other]);
        if (base === undefined || base.bias !== undefined || bias.length !== base.outputs) return undefined;
        return { ...base, bias: Float32Array.from(bias), node };
      }
      return undefined;
    }
    if (node.opType === "Slice") {
      const base = this.linear(node.input[0]);
      if (base === undefined) return undefined;
      const starts = this.integers(node.input[1]);
      const ends = this.integers(node.input[2]);
      const axes = node.input[3] ? this.integers(node.input[3]) : [-1];
      const steps = node.input[4] ? this.integers(node.input[4]) : [1];
      if (
        starts?.length !== 1 ||
        ends?.length !== 1 ||
        axes?.length !== 1 ||
        steps?.length !== 1 ||
        ![starts[0], ends[0]].every((bound) => !Number.isNaN(bound))
      ) {
        this.refuse(`${describeNode(node)}: its bounds are not constants along one axis`);
      }
      if (!(axes[0] === -1 || axes[0] === 2) || steps[0] !== 1) {
        this.refuse(
          `${describeNode(node)} slices axis ${axes[0]} with step ${steps[0]}, not the projection's outputs`,
        );
      }
      const clamp = (bound: number) =>
        Math.min(Math.max(bound < 0 ? bound + base.outputs : bound, 0), base.outputs);
      const start = clamp(starts[0]);
      const end = clamp(ends[0]);
      if (end <= start) this.refuse(`${describeNode(node)} selects no outputs`);
      return {
        weight: base.weight.slice(start * base.inputs, end * base.inputs),
        outputs: end - start,
        inputs: base.inputs,
        ...(base.bias === undefined ? {} : { bias: base.bias.slice(start, end) }),
        input: base.input,
        node,
      };
    }
    return undefined;
  }

  /**
   * onnxruntime's dynamic quantization (transformers.js's model_quantized.onnx):
   * Mul(Cast(MatMulInteger(x_q, W_q, x_zero, W_zero)), Mul(x_scale, W_scale)) with
   * x_q, x_scale, x_zero = DynamicQuantizeLinear(x). The weight is (W_q - W_zero) * W_scale.
   */
  private matMulInteger(node: NodeProto): Linear | undefined {
    for (const position of [0, 1]) {
      const cast = this.index.producers.get(node.input[position]);
      const integer = cast?.opType === "Cast" ? this.index.producers.get(cast.input[0]) : undefined;
      if (integer?.opType !== "MatMulInteger") continue;
      const where = describeNode(integer);
      const quantizer = this.index.producers.get(integer.input[0]);
      const scales = this.index.producers.get(node.input[1 - position]);
      if (
        quantizer?.opType !== "DynamicQuantizeLinear" ||
        integer.input[2] !== quantizer.output[2] ||
        scales?.opType !== "Mul" ||
        !scales.input.includes(quantizer.output[1])
      ) {
        return this.refuse(
          `${where} is not rescaled as onnxruntime's dynamic quantization does (DynamicQuantizeLinear input, Mul by both scales)`,
        );
      }
      const weightScale = scales.input.find((input) => input !== quantizer.output[1]) as string;
      const tensor = this.constantTensor(integer.input[1]);
      if (tensor === undefined || tensor.dims.length !== 2)
        return this.refuse(`${where}'s weight is not a 2-D initializer`);
      const [inputs, outputs] = tensor.dims.map(Number);
      const values = this.dequantized(integer.input[1], weightScale, integer.input[3] || undefined, where);
      return { weight: transpose(values, inputs, outputs), outputs, inputs, input: quantizer.input[0], node };
    }
    return undefined;
  }

  /** com.microsoft MatMulNBits, dequantised to [N, K] (already our [out, in] layout). */
  private matMulNBits(node: NodeProto): Linear {
    const where = describeNode(node);
    const inputs = this.index.intAttribute(node, "K", 0);
    const outputs = this.index.intAttribute(node, "N", 0);
    const bits = this.index.intAttribute(node, "bits", 4);
    const blockSize = this.index.intAttribute(node, "block_size", 0);
    if (![2, 4, 8].includes(bits)) this.refuse(`${where} has ${bits}-bit codes; 2, 4 and 8 are read`);
    if (node.input.slice(3).some((input) => input !== "")) {
      this.refuse(
        `${where} has zero_points, g_idx or bias inputs; only symmetric MatMulNBits (default zero point) is dequantised here`,
      );
    }
    const codes = this.constantTensor(node.input[1]);
    const scaleTensor = this.constantTensor(node.input[2]);
    if (codes === undefined || scaleTensor === undefined)
      this.refuse(`${where}'s weights are not initializers`);
    const blocks = Math.ceil(inputs / blockSize);
    const blobSize = (blockSize * bits) / 8;
    const packed = this.bytes(codes);
    const scales = this.floats(scaleTensor);
    if (packed.byteLength !== outputs * blocks * blobSize || scales.length !== outputs * blocks) {
      this.refuse(
        `${where}: B has ${packed.byteLength} bytes and scales ${scales.length} values, expected ${outputs * blocks * blobSize} and ${outputs * blocks} for N ${outputs}, K ${inputs}, block ${blockSize}`,
      );
    }
    const zeroPoint = 2 ** (bits - 1);
    const mask = 2 ** bits - 1;
    const perByte = 8 / bits;
    const weight = new Float32Array(outputs * inputs);
    for (let row = 0; row < outputs; row++) {
      for (let column = 0; column < inputs; column++) {
        const block = Math.floor(column / blockSize);
        const within = column % blockSize;
        const byte = packed[(row * blocks + block) * blobSize + Math.floor(within / perByte)];
        const code = (byte >> ((within % perByte) * bits)) & mask;
        weight[row * inputs + column] = (code - zeroPoint) * scales[row * blocks + block];
      }
    }
    return { weight, outputs, inputs, input: node.input[0], node };
  }

  /** The RMSNorm that produces `value`, or a refusal naming what is there instead. */
  rmsNorm(value: string, what: string): RmsNorm {
    const node = this.producer(value);
    if (node === undefined) this.refuse(`${what}: ${value} is not computed by a node`);
    if (
      node.opType === "SimplifiedLayerNormalization" ||
      node.opType === "SkipSimplifiedLayerNormalization"
    ) {
      const skip = node.opType === "SkipSimplifiedLayerNormalization";
      const weightInput = node.input[skip ? 2 : 1];
      const weight = this.constantFloats(weightInput);
      if (weight === undefined) this.refuse(`${what}: ${describeNode(node)}'s scale is not an initializer`);
      if (skip && node.input[3])
        this.refuse(`${what}: ${describeNode(node)} adds a bias input, which RMSNorm has not`);
      if (!skip && this.index.intAttribute(node, "axis", -1) !== -1) {
        this.refuse(
          `${what}: ${describeNode(node)} normalises axis ${this.index.intAttribute(node, "axis", -1)}, not the last`,
        );
      }
      return {
        weight: Float32Array.from(weight),
        epsilon: this.index.floatAttribute(node, "epsilon", 1e-5),
        node,
        addends: skip ? [node.input[0], node.input[1]] : [node.input[0]],
      };
    }
    // Decomposed (torch.onnx): weight * (x * (1 / sqrt(mean(x^2) + eps))), with casts between.
    const fail: (reason: string) => never = (reason) =>
      this.refuse(
        `${what}: ${describeNode(node)} is not an RMSNorm (weight * x / sqrt(mean(x^2) + eps)): ${reason}`,
      );
    if (node.opType !== "Mul") fail("expected Mul by the norm weight");
    const weightPosition = node.input.findIndex((input) => this.constantFloats(input)?.length !== undefined);
    if (weightPosition < 0) fail("neither operand is a constant weight");
    const weight = this.constantFloats(node.input[weightPosition]) as Float64Array;
    const scaled = this.producer(node.input[1 - weightPosition]);
    if (scaled?.opType !== "Mul") fail("the normalised value is not x * reciprocal");
    const reciprocalPosition = scaled.input.findIndex((input) => {
      const producer = this.producer(input);
      return producer?.opType === "Div" || producer?.opType === "Reciprocal";
    });
    if (reciprocalPosition < 0) fail("no 1 / sqrt(...) operand");
    const x = this.source(scaled.input[1 - reciprocalPosition]);
    const reciprocal = this.producer(scaled.input[reciprocalPosition]) as NodeProto;
    if (reciprocal.opType === "Div") {
      const one = this.constantFloats(reciprocal.input[0]);
      if (one?.length !== 1 || one[0] !== 1) fail(`${describeNode(reciprocal)} does not divide 1`);
    }
    const sqrt = this.producer(reciprocal.opType === "Div" ? reciprocal.input[1] : reciprocal.input[0]);
    if (sqrt?.opType !== "Sqrt") fail("no Sqrt");
    const add = this.producer(sqrt.input[0]);
    if (add?.opType !== "Add") fail("no Add of epsilon");
    const epsilonPosition = add.input.findIndex((input) => this.constantFloats(input)?.length === 1);
    if (epsilonPosition < 0) fail(`${describeNode(add)} adds no constant epsilon`);
    const epsilon = (this.constantFloats(add.input[epsilonPosition]) as Float64Array)[0];
    const mean = this.producer(add.input[1 - epsilonPosition]);
    if (mean?.opType !== "ReduceMean") fail("no ReduceMean");
    const axes = mean.input[1] ? this.integers(mean.input[1]) : undefined;
    if (axes !== undefined && !(axes.length === 1 && (axes[0] === -1 || axes[0] === 2))) {
      fail(`${describeNode(mean)} averages axes ${axes.join(", ")}, not the last`);
    }
    const square = this.producer(mean.input[0]);
    const isSquare =
      (square?.opType === "Pow" && this.constantFloats(square.input[1])?.[0] === 2) ||
      (square?.opType === "Mul" && square.input[0] === square.input[1]);
    if (!isSquare || this.source(square.input[0]) !== x) fail("the mean is not of x squared");
    return { weight: Float32Array.from(weight), epsilon, node, addends: [x] };
  }

  /** The value behind the residual-stream value `value`: the two addends of an Add, or undefined. */
  addends(value: string): readonly string[] | undefined {
    const node = this.producer(value);
    if (node?.opType === "Add") return node.input.map((input) => this.source(input));
    // SkipSimplifiedLayerNormalization's output 3 is the sum input + skip it normalised.
    if (node?.opType === "SkipSimplifiedLayerNormalization" && node.output[3] === this.source(value)) {
      return [this.source(node.input[0]), this.source(node.input[1])];
    }
    return undefined;
  }
}

function transpose(values: Float32Array, rows: number, columns: number): Float32Array {
  const result = new Float32Array(values.length);
  for (let row = 0; row < rows; row++) {
    for (let column = 0; column < columns; column++) {
      result[column * rows + row] = values[row * columns + column];
    }
  }
  return result;
}

/** float32 attributes (1e-5 stored as 9.99999974e-6) as the shortest decimal of the same float32. */
function shortestFloat32(value: number): number {
  if (Math.fround(value) !== value) return value;
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(value.toPrecision(digits));
    if (Math.fround(candidate) === value) return candidate;
  }
  return value;
}

interface RopeDescription {
  readonly ropeBase: number;
  readonly rotaryDimension: number;
  readonly ropeLayout: "half-split" | "interleaved";
  readonly ropeLinearScalingFactor: number;
  readonly ropeFrequencyFactors?: readonly number[];
}

/**
 * Expresses observed per-pair frequencies as base^(-2k / R) / linear / factor_k: the base from the
 * configuration (or inferred from pair 1), the linear factor when the configuration says linear,
 * per-pair factors only where the graph differs from that.
 */
function describeFrequencies(
  reader: ImportedWeightReader,
  frequencies: readonly number[],
  configured: RopeConfig,
  layout: "half-split" | "interleaved",
  where: string,
): RopeDescription {
  const rotaryDimension = frequencies.length * 2;
  let base = configured.base;
  if (base === undefined) {
    if (frequencies.length < 2)
      reader.refuse(`${where}: one RoPE pair; the base cannot be read off the graph`);
    const inferred =
      frequencies[1] ** (-rotaryDimension / 2) * (configured.linearFactor ?? 1) ** (-rotaryDimension / 2);
    const rounded = Math.round(inferred);
    base = Math.abs(rounded - inferred) <= 1e-4 * inferred ? rounded : inferred;
  }
  const linearFactor = configured.linearFactor ?? 1;
  const factors = frequencies.map(
    (frequency, pair) => base ** ((-2 * pair) / rotaryDimension) / linearFactor / frequency,
  );
  const invalid = factors.findIndex((factor) => !(factor > 0) || !Number.isFinite(factor));
  if (invalid >= 0) reader.refuse(`${where}: RoPE pair ${invalid} has frequency ${frequencies[invalid]}`);
  const plain = factors.every((factor) => Math.abs(factor - 1) <= frequencyTolerance);
  if (!plain && configured.linearFactor !== undefined) {
    reader.refuse(
      `${where}: the graph's RoPE frequencies are not rope_theta ${base} with the configured linear factor ${linearFactor}`,
    );
  }
  return {
    ropeBase: base,
    rotaryDimension,
    ropeLayout: layout,
    ropeLinearScalingFactor: linearFactor,
    ...(plain ? {} : { ropeFrequencyFactors: factors }),
  };
}

function readRope(
  reader: ImportedWeightReader,
  index: DecoderGraphIndex,
  attention: ImportedLayerAttention,
  headSize: number,
  configured: RopeConfig,
): RopeDescription {
  const rotary = attention.rotary;
  if (rotary.kind === "cache") {
    const cosTensor = index.initializers.get(rotary.cosCache);
    const sinTensor = index.initializers.get(rotary.sinCache);
    if (cosTensor === undefined || sinTensor === undefined || cosTensor.dims.length !== 2) {
      return reader.refuse(`the RoPE cache ${rotary.cosCache} is not a [positions, R/2] initializer`);
    }
    const rows = Number(cosTensor.dims[0]);
    const pairs = Number(cosTensor.dims[1]);
    if (rows < 2 || 2 * pairs > headSize) {
      reader.refuse(
        `the RoPE cache ${rotary.cosCache} has shape [${rows}, ${pairs}] for heads of ${headSize}`,
      );
    }
    const cos = reader.floats(cosTensor);
    const sin = reader.floats(sinTensor);
    const frequencies = ropeCacheFrequencies(cos, sin, rows, pairs);
    const description = describeFrequencies(
      reader,
      frequencies,
      configured,
      rotary.interleaved ? "interleaved" : "half-split",
      `RoPE cache ${rotary.cosCache}`,
    );
    // Every row of the cache must be cos/sin of position * frequency (no per-position scaling).
    for (let position = 0; position < rows; position++) {
      for (let pair = 0; pair < pairs; pair++) {
        const angle = position * frequencies[pair];
        const error = Math.max(
          Math.abs(cos[position * pairs + pair] - Math.cos(angle)),
          Math.abs(sin[position * pairs + pair] - Math.sin(angle)),
        );
        // Exporters compute the angle in float32: its rounding (half an ulp of position * frequency)
        // grows with the position, so the bound does too.
        if (error > 1e-5 + 2 ** -23 * Math.abs(angle)) {
          reader.refuse(
            `the RoPE cache ${rotary.cosCache} row ${position} pair ${pair} is not cos/sin of position * frequency (off by ${error.toExponential(2)})`,
          );
        }
      }
    }
    return description;
  }
  // Computed RoPE (torch.onnx): cos = Cos(concat(freqs, freqs)) * attention scaling, with
  // freqs = inv_freq (a constant) times the positions. The constant is the only float tensor of
  // more than one value behind Cos.
  const cosNode = findBehind(index, rotary.cos, (node) => node.opType === "Cos", 12);
  if (cosNode === undefined) reader.refuse(`no Cos behind the RoPE cos value ${rotary.cos}`);
  const scaling = findScaling(reader, index, rotary.cos, cosNode);
  if (scaling !== 1) {
    reader.refuse(
      `${describeNode(cosNode)}: the graph scales cos/sin by ${scaling} (an attention factor, e.g. YaRN/LongRoPE); the reference backend has no attention factor`,
    );
  }
  const constants: { value: string; values: Float64Array }[] = [];
  const seen = new Set<string>();
  const stack = [cosNode.input[0]];
  while (stack.length > 0) {
    const value = stack.pop() as string;
    if (value === "" || seen.has(value)) continue;
    seen.add(value);
    const tensor = reader.constantTensor(value);
    if (tensor !== undefined) {
      if (tensor.dataType === TensorProto_DataType.FLOAT || tensor.dataType === TensorProto_DataType.DOUBLE) {
        const values = reader.floats(tensor);
        if (values.length > 1) constants.push({ value, values });
      }
      continue;
    }
    const producer = index.producers.get(value);
    if (producer !== undefined) stack.push(...producer.input);
  }
  if (constants.length !== 1) {
    reader.refuse(
      `${describeNode(cosNode)}: expected one inv_freq constant behind it, found ${constants.length}`,
    );
  }
  const frequencies = Array.from(constants[0].values);
  if (2 * frequencies.length > headSize) {
    reader.refuse(
      `the RoPE inv_freq ${constants[0].value} has ${frequencies.length} pairs for heads of ${headSize}`,
    );
  }
  return describeFrequencies(
    reader,
    frequencies,
    configured,
    "half-split",
    `RoPE inv_freq ${constants[0].value}`,
  );
}

/** The scale between Cos and the graph's cos value (1 when none). */
function findScaling(
  reader: ImportedWeightReader,
  index: DecoderGraphIndex,
  cosValue: string,
  cosNode: NodeProto,
): number {
  let scale = 1;
  let value = cosValue;
  for (let step = 0; step < 12 && value !== cosNode.output[0]; step++) {
    const node = index.producers.get(value);
    if (node === undefined) break;
    if (node.opType === "Mul") {
      const constantPosition = node.input.findIndex((input) => reader.constantFloats(input)?.length === 1);
      if (constantPosition >= 0) {
        scale *= (reader.constantFloats(node.input[constantPosition]) as Float64Array)[0];
        value = node.input[1 - constantPosition];
        continue;
      }
    }
    value = node.input[0];
  }
  return scale;
}

function findBehind(
  index: DecoderGraphIndex,
  start: string,
  matches: (node: NodeProto) => boolean,
  depth: number,
): NodeProto | undefined {
  let frontier = [start];
  for (let step = 0; step < depth && frontier.length > 0; step++) {
    const next: string[] = [];
    for (const value of frontier) {
      const node = index.producers.get(value);
      if (node === undefined) continue;
      if (matches(node)) return node;
      next.push(...node.input.filter((input) => input !== ""));
    }
    frontier = next;
  }
  return undefined;
}

interface RopeConfig {
  readonly base?: number;
  readonly linearFactor?: number;
}

/**
 * What config.json says about RoPE: rope_theta and a linear rope_scaling factor (other scaling
 * types are read off the graph). genai_config.json says nothing about RoPE.
 */
function readRopeConfig(configFolder: string): RopeConfig {
  const path = join(configFolder, "config.json");
  if (!existsSync(path)) return {};
  // readConfig has already parsed this file and refused it if it is not JSON.
  const config = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  const positive = (value: unknown, key: string): number => {
    if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
      throw new UnsupportedOnnxGraphError(path, `${key} is ${JSON.stringify(value)}, expected a number > 0`);
    }
    return value;
  };
  const scaling = config.rope_scaling as
    | { rope_type?: string; type?: string; factor?: unknown }
    | null
    | undefined;
  const scalingType = scaling?.rope_type ?? scaling?.type;
  return {
    ...(config.rope_theta === undefined ? {} : { base: positive(config.rope_theta, "rope_theta") }),
    ...(scalingType === "linear" ? { linearFactor: positive(scaling?.factor, "rope_scaling.factor") } : {}),
  };
}

/**
 * Reads a user's ONNX decoder export (a folder, or a .onnx file) into LlamaWeights for the reference
 * backend. Refuses, naming the node, whatever it does not recognise.
 */
export function readImportedWeights(path: string): LlamaWeights {
  const files = locateFiles(path);
  if (files === undefined) {
    throw new UnsupportedOnnxGraphError(path, "no model.onnx in the folder or in its onnx/ folder");
  }
  const modelPath = files.modelPath;
  let model: ReturnType<typeof fromBinary<typeof ModelProtoSchema>>;
  try {
    model = fromBinary(ModelProtoSchema, readFileSync(modelPath));
  } catch (error) {
    throw new UnsupportedOnnxGraphError(
      modelPath,
      `not an ONNX model (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  const index = new DecoderGraphIndex(model);
  const config: ImportedConfig = readConfig(files);
  const reader: ImportedWeightReader = new ImportedWeightReader(modelPath, index);
  try {
    return readGraphWeights(reader, index, config, files.configFolder);
  } finally {
    reader.close();
  }
}

function readGraphWeights(
  reader: ImportedWeightReader,
  index: DecoderGraphIndex,
  config: ImportedConfig,
  configFolder: string,
): LlamaWeights {
  const modelPath = reader.modelPath;
  const architecture = config.architecture as LlamaArchitecture;
  if (!supportedArchitectures.includes(architecture)) {
    reader.refuse(
      `architecture "${config.architecture}" is not one the reference backend runs (${supportedArchitectures.join(", ")})`,
    );
  }
  const attention = findAttention(index, config, modelPath);
  if (attention.length !== config.layerCount) {
    reader.refuse(
      `the graph has ${attention.length} attention layers, the configuration says ${config.layerCount}`,
    );
  }
  const { embeddingSize, headCount, kvHeadCount, headSize, vocabularySize } = config;
  const queryWidth = headCount * headSize;
  const keyWidth = kvHeadCount * headSize;

  const expectLinear = (value: string, what: string, outputs: number, inputs: number): Linear => {
    const linear = reader.linear(value);
    if (linear === undefined) {
      const producer = index.producers.get(value);
      return reader.refuse(
        `${what}: ${producer === undefined ? value : describeNode(producer)} is not a projection by a constant weight (MatMul, Gemm, MatMulNBits or dynamically quantised MatMulInteger)`,
      );
    }
    if (linear.outputs !== outputs || linear.inputs !== inputs) {
      reader.refuse(
        `${what}: ${describeNode(linear.node)} maps ${linear.inputs} to ${linear.outputs} values, expected ${inputs} to ${outputs}`,
      );
    }
    return linear;
  };

  const layers: LlamaLayerWeights[] = [];
  const epsilons: { value: number; node: NodeProto }[] = [];
  let feedForwardSize = 0;
  /** The residual stream's value entering the current layer, as its addends when it is a sum. */
  let residualIn: readonly string[] | undefined;
  let embedding: Float32Array | undefined;
  let previousDown: string | undefined;

  for (const layer of attention) {
    const where = `layer ${layer.layer}`;
    let query: Linear;
    let key: Linear;
    let value: Linear;
    if (layer.packedProjection !== undefined) {
      const packed = expectLinear(
        layer.packedProjection,
        `${where} packed QKV`,
        queryWidth + 2 * keyWidth,
        embeddingSize,
      );
      const part = (start: number, width: number): Linear => ({
        ...packed,
        weight: packed.weight.slice(start * embeddingSize, (start + width) * embeddingSize),
        outputs: width,
        ...(packed.bias === undefined ? {} : { bias: packed.bias.slice(start, start + width) }),
      });
      query = part(0, queryWidth);
      key = part(queryWidth, keyWidth);
      value = part(queryWidth + keyWidth, keyWidth);
    } else {
      query = expectLinear(layer.query as string, `${where} query`, queryWidth, embeddingSize);
      key = expectLinear(layer.key as string, `${where} key`, keyWidth, embeddingSize);
      value = expectLinear(layer.value as string, `${where} value`, keyWidth, embeddingSize);
    }
    const normalized = reader.source(query.input);
    if (reader.source(key.input) !== normalized || reader.source(value.input) !== normalized) {
      reader.refuse(`${where}: the query, key and value projections do not read the same normalised input`);
    }
    // The reference backend scales scores by 1/sqrt(head size), as Llama-family models do.
    const scale =
      layer.pattern === "decomposed"
        ? decomposedScale(reader, index, layer, where)
        : { value: layer.scale ?? 1 / Math.sqrt(headSize), node: undefined };
    const expectedScale = 1 / Math.sqrt(headSize);
    if (Math.abs(scale.value - expectedScale) > 1e-5 * expectedScale) {
      reader.refuse(
        `${where}: ${scale.node === undefined ? "the attention" : describeNode(scale.node)} scales scores by ${scale.value}, not 1/sqrt(head size) = ${expectedScale}`,
      );
    }
    const attentionNorm = reader.rmsNorm(normalized, `${where} attention norm`);
    epsilons.push({ value: attentionNorm.epsilon, node: attentionNorm.node });
    if (layer.layer === 0) {
      if (attentionNorm.addends.length !== 1) {
        reader.refuse(
          `${where}: ${describeNode(attentionNorm.node)} adds a skip input before the first layer`,
        );
      }
      // The table is either float, or quantised with the rows dequantised after the Gather.
      const first = reader.producer(attentionNorm.addends[0]);
      const dequantize = first?.opType === "DequantizeLinear" ? first : undefined;
      const gather = dequantize === undefined ? first : reader.producer(dequantize.input[0]);
      const table = gather?.opType === "Gather" ? reader.constantTensor(gather.input[0]) : undefined;
      if (
        gather === undefined ||
        table === undefined ||
        reader.source(gather.input[1]) !== "input_ids" ||
        index.intAttribute(gather, "axis", 0) !== 0
      ) {
        reader.refuse(`${where}: the first norm's input is not the embedding Gather(table, input_ids)`);
      }
      if (
        table.dims.length !== 2 ||
        Number(table.dims[0]) !== vocabularySize ||
        Number(table.dims[1]) !== embeddingSize
      ) {
        reader.refuse(
          `the embedding ${table.name} has shape [${table.dims.join(", ")}], expected [${vocabularySize}, ${embeddingSize}]`,
        );
      }
      if (dequantize === undefined) {
        embedding = reader.float32(table);
      } else {
        const scale = reader.constantFloats(dequantize.input[1]);
        if (scale?.length !== 1) {
          reader.refuse(
            `${describeNode(dequantize)}: the embedding's scale is not one constant for the whole table`,
          );
        }
        embedding = reader.dequantized(
          table.name,
          dequantize.input[1],
          dequantize.input[2] || undefined,
          describeNode(dequantize),
        );
      }
    } else {
      checkResidual(reader, attentionNorm, residualIn, previousDown, where);
    }
    residualIn = attentionNorm.addends;

    // The output projection reads the attention output (through reshapes in torch exports).
    const outputProjected = findOutputProjection(index, layer.attentionOutput);
    if (outputProjected === undefined) {
      reader.refuse(`${where}: no output projection reads ${layer.attentionOutput}`);
    }
    const output = expectLinear(outputProjected, `${where} output projection`, embeddingSize, queryWidth);

    // The MLP: down(silu(gate(x)) * up(x)) with x = the feed-forward norm of (residual + attention).
    const found = findFeedForwardNorm(reader, index, output.node.output[0], where);
    if (found === undefined) {
      reader.refuse(
        `${where}: no RMSNorm of the residual sum with the attention output ${output.node.output[0]} (the feed-forward norm)`,
      );
    }
    const feedForwardNorm = found.norm;
    const { gate, up, down } = findMlp(reader, index, found.normalized, where, embeddingSize);
    if (reader.source(gate.input) !== reader.source(found.normalized)) {
      reader.refuse(`${where}: the MLP's gate projection does not read the feed-forward norm's output`);
    }
    if (reader.source(up.input) !== reader.source(gate.input)) {
      reader.refuse(`${where}: the MLP's gate and up projections read different inputs`);
    }
    epsilons.push({ value: feedForwardNorm.epsilon, node: feedForwardNorm.node });
    checkResidual(reader, feedForwardNorm, residualIn, output.node.output[0], where);
    if (feedForwardSize === 0) feedForwardSize = gate.outputs;
    if (
      gate.outputs !== feedForwardSize ||
      up.outputs !== feedForwardSize ||
      down.inputs !== feedForwardSize
    ) {
      reader.refuse(
        `${where}: the MLP widths (${gate.outputs}, ${up.outputs}, ${down.inputs}) differ from layer 0's ${feedForwardSize}`,
      );
    }
    residualIn = feedForwardNorm.addends;
    previousDown = down.node.output[0];

    if (
      output.bias !== undefined ||
      gate.bias !== undefined ||
      up.bias !== undefined ||
      down.bias !== undefined
    ) {
      reader.refuse(
        `${where}: the output or MLP projections carry biases, which Llama-family models have not`,
      );
    }
    layers.push({
      attentionNorm: attentionNorm.weight,
      query: query.weight,
      key: key.weight,
      value: value.weight,
      output: output.weight,
      ...(query.bias === undefined ? {} : { queryBias: query.bias }),
      ...(key.bias === undefined ? {} : { keyBias: key.bias }),
      ...(value.bias === undefined ? {} : { valueBias: value.bias }),
      feedForwardNorm: feedForwardNorm.weight,
      gate: gate.weight,
      up: up.weight,
      down: down.weight,
    });
  }

  // The classifier before `logits`, and the final norm before it.
  const classifier = expectLinear("logits", "the classifier", vocabularySize, embeddingSize);
  if (classifier.bias !== undefined)
    reader.refuse(`the classifier ${describeNode(classifier.node)} has a bias`);
  const outputNorm = reader.rmsNorm(reader.source(classifier.input), "the final norm");
  epsilons.push({ value: outputNorm.epsilon, node: outputNorm.node });
  checkResidual(reader, outputNorm, residualIn, previousDown, "the final norm");

  const epsilon = epsilons[0].value;
  const differing = epsilons.find((item) => item.value !== epsilon);
  if (differing !== undefined) {
    reader.refuse(
      `${describeNode(differing.node)} has epsilon ${shortestFloat32(differing.value)}, other norms ${shortestFloat32(epsilon)}`,
    );
  }
  const ropeConfig = readRopeConfig(configFolder);
  const rope = readRope(reader, index, attention[0], headSize, ropeConfig);
  const tokenEmbedding = embedding as Float32Array;
  const tied =
    classifier.weight.length === tokenEmbedding.length &&
    classifier.weight.every((item, position) => item === tokenEmbedding[position]);

  const description: LlamaModelDescription = {
    architecture,
    name: basename(resolve(configFolder)),
    layerCount: config.layerCount,
    headCount,
    kvHeadCount,
    headSize,
    embeddingSize,
    feedForwardSize,
    normEpsilon: shortestFloat32(epsilon),
    vocabularySize,
    trainedContext: config.trainedContext,
    ...rope,
    hasQkvBias: layers.some((layer) => layer.queryBias !== undefined || layer.keyBias !== undefined),
  };
  return {
    description,
    tokenEmbedding,
    outputNorm: outputNorm.weight,
    output: tied ? tokenEmbedding : classifier.weight,
    layers,
  };
}

/**
 * Checks that a norm's residual input is the sum of the stream before (`residualIn`, as one value
 * or the addends a skip-norm summed) and `added` (the attention output or the MLP's down output).
 */
function checkResidual(
  reader: ImportedWeightReader,
  norm: RmsNorm,
  residualIn: readonly string[] | undefined,
  added: string | undefined,
  where: string,
): void {
  const addends =
    norm.addends.length === 2
      ? norm.addends.map((value) => reader.source(value))
      : reader.addends(norm.addends[0]);
  const fail: () => never = () =>
    reader.refuse(
      `${where}: ${describeNode(norm.node)} does not normalise the residual sum (previous stream + ${added})`,
    );
  if (addends === undefined || added === undefined || residualIn === undefined) fail();
  if (!addends.includes(reader.source(added))) fail();
  const previous = addends.find((value) => value !== reader.source(added)) as string;
  // The previous stream is either the value itself, or the sum a skip-norm (output 3) or Add made of it.
  if (residualIn.length === 1) {
    if (previous !== reader.source(residualIn[0])) fail();
    return;
  }
  const sum = reader.addends(previous);
  const previousNode = reader.producer(previous);
  const viaSkip =
    previousNode?.opType === "SkipSimplifiedLayerNormalization" &&
    previousNode.input[0] === residualIn[0] &&
    previousNode.input[1] === residualIn[1];
  if (!viaSkip && !(sum !== undefined && residualIn.every((item) => sum.includes(reader.source(item)))))
    fail();
}

/**
 * The factor a decomposed attention scales its scores by: the product of the scalar Mul/Div
 * constants on the score MatMul's two operands (torch.onnx splits 1/sqrt(d) as d^-1/4 on each) and
 * between it and the Softmax.
 */
function decomposedScale(
  reader: ImportedWeightReader,
  index: DecoderGraphIndex,
  layer: ImportedLayerAttention,
  where: string,
): { value: number; node: NodeProto } {
  const movement = new Set(["Transpose", "Reshape", "Unsqueeze", "Squeeze", "Expand", "Cast", "Identity"]);
  /** A scalar constant operand of a Mul or Div: [the factor it applies, the other operand]. */
  const scalarFactor = (node: NodeProto): [number, string] | undefined => {
    if (node.opType !== "Mul" && node.opType !== "Div") return undefined;
    for (const position of node.opType === "Mul" ? [0, 1] : [1]) {
      const constant = reader.constantFloats(node.input[position]);
      if (constant?.length !== 1) continue;
      return [node.opType === "Mul" ? constant[0] : 1 / constant[0], node.input[1 - position]];
    }
    return undefined;
  };
  // The score MatMul: forward from the present key through data movement and scaling.
  const scores: NodeProto[] = [];
  const seen = new Set<string>();
  const stack = [layer.presentKey];
  while (stack.length > 0) {
    const value = stack.pop() as string;
    if (seen.has(value)) continue;
    seen.add(value);
    for (const consumer of index.consumersOf(value)) {
      if (consumer.opType === "MatMul") {
        if (!scores.includes(consumer)) scores.push(consumer);
      } else if (movement.has(consumer.opType) || scalarFactor(consumer) !== undefined) {
        stack.push(consumer.output[0]);
      }
    }
  }
  if (scores.length !== 1) {
    return reader.refuse(
      `${where}: expected one score MatMul reading ${layer.presentKey}, found ${scores.length}`,
    );
  }
  const [product] = scores;
  let value = 1;
  for (const operand of product.input) {
    let current = operand;
    for (let step = 0; step < 16; step++) {
      const node = index.producers.get(current);
      if (node === undefined) break;
      const factor = scalarFactor(node);
      if (factor !== undefined) {
        value *= factor[0];
        current = factor[1];
      } else if (movement.has(node.opType)) {
        current = node.input[0];
      } else {
        break;
      }
    }
  }
  // After the product: the mask Add, casts, and any scaling, up to the Softmax.
  let current = product.output[0];
  for (let step = 0; step < 16; step++) {
    const consumers = index.consumersOf(current);
    if (consumers.length !== 1 || consumers[0].opType === "Softmax") break;
    const [node] = consumers;
    const factor = scalarFactor(node);
    if (factor !== undefined && factor[1] === current) value *= factor[0];
    else if (!["Add", "Cast", "Identity", "Where"].includes(node.opType)) break;
    current = node.output[0];
  }
  return { value, node: product };
}

/**
 * The result of the projection that reads `value` directly: a MatMul (or MatMulNBits/Gemm), or for
 * a dynamically quantised graph the rescaling Mul after DynamicQuantizeLinear -> MatMulInteger -> Cast.
 */
function projectionReading(index: DecoderGraphIndex, value: string): string | undefined {
  const only = (input: string, opType: string) => {
    const consumers = index.consumersOf(input).filter((node) => node.opType === opType);
    return consumers.length === 1 ? consumers[0] : undefined;
  };
  for (const consumer of index.consumersOf(value)) {
    if (["MatMul", "MatMulNBits", "Gemm"].includes(consumer.opType) && consumer.input[0] === value) {
      return consumer.output[0];
    }
    if (consumer.opType === "DynamicQuantizeLinear") {
      const integer = only(consumer.output[0], "MatMulInteger");
      const cast = integer === undefined ? undefined : only(integer.output[0], "Cast");
      const rescale = cast === undefined ? undefined : only(cast.output[0], "Mul");
      if (rescale !== undefined) return rescale.output[0];
    }
  }
  return undefined;
}

/** The output projection's result, reading the attention output through reshapes. */
function findOutputProjection(index: DecoderGraphIndex, attentionOutput: string): string | undefined {
  const movement = new Set(["Transpose", "Reshape", "Identity", "Cast", "Flatten"]);
  const stack = [attentionOutput];
  const seen = new Set<string>();
  while (stack.length > 0) {
    const value = stack.pop() as string;
    if (seen.has(value)) continue;
    seen.add(value);
    const projected = projectionReading(index, value);
    if (projected !== undefined) return projected;
    for (const consumer of index.consumersOf(value)) {
      if (movement.has(consumer.opType) && consumer.input[0] === value) stack.push(consumer.output[0]);
    }
  }
  return undefined;
}

/**
 * The norm in front of the MLP: the RMSNorm nearest after the projected attention output whose
 * residual sum includes it (decomposed: Add(stream, attention) then Pow/ReduceMean/...; genai:
 * SkipSimplifiedLayerNormalization(stream, attention)). Undefined when there is none.
 */
function findFeedForwardNorm(
  reader: ImportedWeightReader,
  index: DecoderGraphIndex,
  attentionProjected: string,
  where: string,
): { norm: RmsNorm; normalized: string } | undefined {
  const normOps = new Set([
    "Cast",
    "Identity",
    "Add",
    "Pow",
    "ReduceMean",
    "Sqrt",
    "Div",
    "Mul",
    "Reciprocal",
    "SkipSimplifiedLayerNormalization",
    "SimplifiedLayerNormalization",
  ]);
  const attention = reader.source(attentionProjected);
  const seen = new Set<string>();
  let frontier = [attentionProjected];
  for (let depth = 0; depth < 12 && frontier.length > 0; depth++) {
    const next: string[] = [];
    for (const value of frontier) {
      if (seen.has(value)) continue;
      seen.add(value);
      for (const consumer of index.consumersOf(value)) {
        if (!normOps.has(consumer.opType)) continue;
        const normalized = consumer.output[0];
        const isNorm =
          consumer.opType === "Mul" ||
          consumer.opType === "SkipSimplifiedLayerNormalization" ||
          consumer.opType === "SimplifiedLayerNormalization";
        if (isNorm && normalized !== "") {
          let norm: RmsNorm | undefined;
          try {
            norm = reader.rmsNorm(normalized, `${where} feed-forward norm`);
          } catch (error) {
            if (!(error instanceof UnsupportedOnnxGraphError)) throw error;
          }
          const addends =
            norm === undefined
              ? undefined
              : norm.addends.length === 2
                ? norm.addends.map((item) => reader.source(item))
                : reader.addends(norm.addends[0]);
          if (norm !== undefined && addends?.includes(attention)) return { norm, normalized };
        }
        next.push(...consumer.output.filter((output) => output !== ""));
      }
    }
    frontier = next;
  }
  return undefined;
}

/**
 * The SwiGLU MLP reading the feed-forward norm's output: the down projection's input is
 * silu(gate) * up, with silu as Mul(g, Sigmoid(g)); gate and up are projections (or slices of one
 * fused gate_up). The search passes one linear map (gate/up) and no residual Add, so it stays
 * inside this layer's MLP.
 */
function findMlp(
  reader: ImportedWeightReader,
  index: DecoderGraphIndex,
  normalized: string,
  where: string,
  embeddingSize: number,
): { gate: Linear; up: Linear; down: Linear } {
  const linearOps = new Set(["MatMul", "MatMulNBits", "Gemm", "MatMulInteger"]);
  const stops = new Set([
    "Add",
    "SkipSimplifiedLayerNormalization",
    "SimplifiedLayerNormalization",
    "GroupQueryAttention",
    "Softmax",
  ]);
  const seen = new Set<string>();
  let frontier: { value: string; linears: number }[] = [{ value: normalized, linears: 0 }];
  for (let depth = 0; depth < 12 && frontier.length > 0; depth++) {
    const next: { value: string; linears: number }[] = [];
    for (const { value, linears } of frontier) {
      if (seen.has(value)) continue;
      seen.add(value);
      for (const consumer of index.consumersOf(value)) {
        if (consumer.opType === "Mul") {
          const mlp = swiGlu(reader, consumer);
          if (mlp !== undefined) {
            const downValue = projectionReading(index, consumer.output[0]);
            if (downValue === undefined)
              reader.refuse(`${where}: ${describeNode(consumer)} feeds no down projection`);
            const down = reader.linear(downValue);
            if (down === undefined || down.outputs !== embeddingSize || down.inputs !== mlp.gate.outputs) {
              reader.refuse(`${where}: ${downValue} is not a down projection to ${embeddingSize} values`);
            }
            return { ...mlp, down };
          }
        }
        if (stops.has(consumer.opType)) continue;
        const passed = linears + (linearOps.has(consumer.opType) ? 1 : 0);
        if (passed > 1) continue;
        for (const output of consumer.output)
          if (output !== "") next.push({ value: output, linears: passed });
      }
    }
    frontier = next;
  }
  return reader.refuse(
    `${where}: no SwiGLU MLP (down(silu(gate(x)) * up(x))) reads the feed-forward norm's output ${normalized}`,
  );
}

function swiGlu(reader: ImportedWeightReader, product: NodeProto): { gate: Linear; up: Linear } | undefined {
  for (const [siluPosition, upPosition] of [
    [0, 1],
    [1, 0],
  ]) {
    const silu = reader.producer(product.input[siluPosition]);
    if (silu?.opType !== "Mul") continue;
    const sigmoidPosition = silu.input.findIndex((input) => reader.producer(input)?.opType === "Sigmoid");
    if (sigmoidPosition < 0) continue;
    const sigmoid = reader.producer(silu.input[sigmoidPosition]) as NodeProto;
    const gateValue = reader.source(silu.input[1 - sigmoidPosition]);
    if (reader.source(sigmoid.input[0]) !== gateValue) continue;
    const gate = reader.linear(gateValue);
    const up = reader.linear(reader.source(product.input[upPosition]));
    if (gate === undefined || up === undefined) continue;
    return { gate, up };
  }
  return undefined;
}
