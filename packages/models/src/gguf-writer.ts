/**
 * GGUF version 3 writer for F32 and F16 tensors. The output depends only on the input (metadata
 * in the order given, tensors in the order given, zero padding), so the same model always gives
 * the same bytes. The Node entry's `writeGguf` (gguf-file.ts) writes them next to the target and
 * renames them into place, so a failure never leaves a half-written model where a runtime could
 * pick it up.
 */
import { numberToFloat16Bits } from "./float16.js";
import {
  type GgufScalarTypeName,
  type GgufTypedValue,
  ggmlTypes,
  ggufDefaultAlignment,
  ggufMagic,
  ggufValueTypeIds,
} from "./gguf-types.js";
import { ModelFileError } from "./model-file-error.js";

export type GgufWritableTensorType = "F32" | "F16";

export interface GgufTensorToWrite {
  readonly name: string;
  /** Row-major shape, outermost first ([out, in] for a weight matrix); ggml dims are its reverse. */
  readonly shape: readonly number[];
  readonly type: GgufWritableTensorType;
  readonly data: Float32Array;
}

export interface GgufContents {
  /** Written in iteration order. `general.alignment` (uint32), if present, sets the alignment. */
  readonly metadata: ReadonlyMap<string, GgufTypedValue> | Readonly<Record<string, GgufTypedValue>>;
  readonly tensors: readonly GgufTensorToWrite[];
}

/** ggml keeps names in a 64-byte buffer with its terminating NUL. */
const maximumTensorNameBytes = 63;
const textEncoder = new TextEncoder();

/** A little-endian byte builder that grows as needed. */
class ByteWriter {
  private buffer = new Uint8Array(1024);
  private view = new DataView(this.buffer.buffer);
  length = 0;

  private reserve(extra: number): number {
    if (this.length + extra > this.buffer.length) {
      let size = this.buffer.length * 2;
      while (size < this.length + extra) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.buffer.subarray(0, this.length));
      this.buffer = grown;
      this.view = new DataView(grown.buffer);
    }
    const at = this.length;
    this.length += extra;
    return at;
  }
  /** Where the last at() reserved its bytes. */
  private last = 0;
  /** reserve() may replace the buffer, so the view is fetched only after it. */
  private at(length: number): DataView {
    this.last = this.reserve(length);
    return this.view;
  }
  uint8(value: number) {
    this.at(1).setUint8(this.last, value);
  }
  int8(value: number) {
    this.at(1).setInt8(this.last, value);
  }
  uint16(value: number) {
    this.at(2).setUint16(this.last, value, true);
  }
  int16(value: number) {
    this.at(2).setInt16(this.last, value, true);
  }
  uint32(value: number) {
    this.at(4).setUint32(this.last, value, true);
  }
  int32(value: number) {
    this.at(4).setInt32(this.last, value, true);
  }
  float32(value: number) {
    this.at(4).setFloat32(this.last, value, true);
  }
  float64(value: number) {
    this.at(8).setFloat64(this.last, value, true);
  }
  uint64(value: bigint) {
    this.at(8).setBigUint64(this.last, value, true);
  }
  int64(value: bigint) {
    this.at(8).setBigInt64(this.last, value, true);
  }
  bytes(bytes: Uint8Array) {
    const at = this.reserve(bytes.length);
    this.buffer.set(bytes, at);
  }
  string(value: string) {
    const bytes = textEncoder.encode(value);
    this.uint64(BigInt(bytes.length));
    this.bytes(bytes);
  }
  padTo(alignment: number) {
    this.reserve((alignment - (this.length % alignment)) % alignment);
  }
  result(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

const integerRanges: Partial<Record<GgufScalarTypeName, readonly [number, number]>> = {
  uint8: [0, 0xff],
  int8: [-0x80, 0x7f],
  uint16: [0, 0xffff],
  int16: [-0x8000, 0x7fff],
  uint32: [0, 0xffffffff],
  int32: [-0x80000000, 0x7fffffff],
};

function writeScalar(
  writer: ByteWriter,
  type: GgufScalarTypeName,
  value: unknown,
  where: string,
  fail: (message: string) => never,
) {
  const range = integerRanges[type];
  if (
    range !== undefined &&
    !(typeof value === "number" && Number.isInteger(value) && value >= range[0] && value <= range[1])
  ) {
    fail(`${where}: ${String(value)} is not a valid ${type}`);
  }
  switch (type) {
    case "uint8":
      return writer.uint8(value as number);
    case "int8":
      return writer.int8(value as number);
    case "uint16":
      return writer.uint16(value as number);
    case "int16":
      return writer.int16(value as number);
    case "uint32":
      return writer.uint32(value as number);
    case "int32":
      return writer.int32(value as number);
    case "float32":
    case "float64":
      if (typeof value !== "number") fail(`${where}: ${String(value)} is not a number`);
      return type === "float32" ? writer.float32(value) : writer.float64(value);
    case "uint64":
    case "int64": {
      if (!(typeof value === "bigint" || (typeof value === "number" && Number.isSafeInteger(value)))) {
        fail(`${where}: ${String(value)} is not a valid ${type}`);
      }
      const big = BigInt(value);
      if (type === "uint64" ? big < 0n || big >= 1n << 64n : big < -(1n << 63n) || big >= 1n << 63n) {
        fail(`${where}: ${big} is out of range for ${type}`);
      }
      return type === "uint64" ? writer.uint64(big) : writer.int64(big);
    }
    case "bool":
      if (typeof value !== "boolean") fail(`${where}: ${String(value)} is not a boolean`);
      return writer.uint8(value ? 1 : 0);
    case "string":
      if (typeof value !== "string") fail(`${where}: ${String(value)} is not a string`);
      return writer.string(value);
  }
}

function writeTypedValue(
  writer: ByteWriter,
  entry: GgufTypedValue,
  where: string,
  fail: (message: string) => never,
) {
  const typeId = ggufValueTypeIds[entry.type];
  if (typeId === undefined) fail(`${where}: unknown GGUF value type ${JSON.stringify(entry.type)}`);
  writer.uint32(typeId);
  if (entry.type !== "array") {
    writeScalar(writer, entry.type, entry.value, where, fail);
    return;
  }
  const { itemType } = entry;
  if (itemType === "array") fail(`${where}: nested arrays are not written by this writer`);
  const itemTypeId = ggufValueTypeIds[itemType];
  if (itemTypeId === undefined) fail(`${where}: unknown GGUF array item type ${JSON.stringify(itemType)}`);
  writer.uint32(itemTypeId);
  const items = entry.value as ArrayLike<unknown>;
  writer.uint64(BigInt(items.length));
  for (let index = 0; index < items.length; index++) {
    writeScalar(writer, itemType, items[index], `${where}[${index}]`, fail);
  }
}

function metadataEntries(metadata: GgufContents["metadata"]): [string, GgufTypedValue][] {
  return metadata instanceof Map
    ? [...metadata.entries()]
    : Object.entries(metadata as Record<string, GgufTypedValue>);
}

interface PlannedTensor {
  readonly tensor: GgufTensorToWrite;
  readonly offset: number;
  readonly byteSize: number;
}

/** Builds the head (header, metadata, tensor infos, padding) and where each tensor goes. */
function planGguf(
  contents: GgufContents,
  path: string,
): { head: Uint8Array; alignment: number; planned: PlannedTensor[] } {
  const fail: (message: string) => never = (message) => {
    throw new ModelFileError(path, `cannot be written: ${message}`);
  };
  const entries = metadataEntries(contents.metadata);
  let alignment = ggufDefaultAlignment;
  for (const [key, entry] of entries) {
    if (key !== "general.alignment") continue;
    const value = entry.value;
    if (entry.type !== "uint32" || typeof value !== "number" || value <= 0 || (value & (value - 1)) !== 0) {
      fail(`general.alignment must be a uint32 power of two, got ${entry.type} ${String(value)}`);
    }
    alignment = value;
  }

  const writer = new ByteWriter();
  writer.uint32(ggufMagic);
  writer.uint32(3);
  writer.uint64(BigInt(contents.tensors.length));
  writer.uint64(BigInt(entries.length));
  for (const [key, entry] of entries) {
    writer.string(key);
    writeTypedValue(writer, entry, `metadata ${JSON.stringify(key)}`, fail);
  }

  const planned: PlannedTensor[] = [];
  const names = new Set<string>();
  let offset = 0;
  for (const tensor of contents.tensors) {
    const where = `tensor ${JSON.stringify(tensor.name)}`;
    if (names.has(tensor.name)) fail(`${where} appears twice`);
    names.add(tensor.name);
    if (textEncoder.encode(tensor.name).length > maximumTensorNameBytes) {
      fail(`${where}: names are limited to ${maximumTensorNameBytes} bytes`);
    }
    if (tensor.shape.length < 1 || tensor.shape.length > 4)
      fail(`${where}: ggml tensors have 1 to 4 dimensions`);
    const elementCount = tensor.shape.reduce((product, size) => product * size, 1);
    if (
      !tensor.shape.every((size) => Number.isInteger(size) && size > 0) ||
      elementCount !== tensor.data.length
    ) {
      fail(`${where}: shape [${tensor.shape.join(", ")}] does not match ${tensor.data.length} values`);
    }
    if (tensor.type !== "F32" && tensor.type !== "F16")
      fail(`${where}: type ${String(tensor.type)} cannot be written`);
    writer.string(tensor.name);
    writer.uint32(tensor.shape.length);
    for (const size of [...tensor.shape].reverse()) writer.uint64(BigInt(size));
    writer.uint32(ggmlTypes[tensor.type]);
    writer.uint64(BigInt(offset));
    const byteSize = elementCount * (tensor.type === "F32" ? 4 : 2);
    planned.push({ tensor, offset, byteSize });
    offset += Math.ceil(byteSize / alignment) * alignment;
  }
  writer.padTo(alignment);
  return { head: writer.result(), alignment, planned };
}

/** Values per encoded piece: 64 MiB of float32. Node writes at most 2 GiB per call, and a tensor
 * may be larger (Gemma-2-2B's embedding is 2.36 GB in float32); pieces also bound the extra memory. */
const valuesPerPiece = 16 * 1024 * 1024;

function* encodeTensor(tensor: GgufTensorToWrite): Generator<Uint8Array> {
  const { data } = tensor;
  const width = tensor.type === "F32" ? 4 : 2;
  for (let start = 0; start < data.length; start += valuesPerPiece) {
    const end = Math.min(data.length, start + valuesPerPiece);
    const bytes = new Uint8Array((end - start) * width);
    const view = new DataView(bytes.buffer);
    if (width === 4) {
      for (let index = start; index < end; index++) view.setFloat32((index - start) * 4, data[index], true);
    } else {
      for (let index = start; index < end; index++)
        view.setUint16((index - start) * 2, numberToFloat16Bits(data[index]), true);
    }
    yield bytes;
  }
}

/** Yields the file in pieces: the head, then each tensor and its padding. */
export function* ggufChunks(contents: GgufContents, path: string): Generator<Uint8Array> {
  const { head, alignment, planned } = planGguf(contents, path);
  yield head;
  for (const { tensor, byteSize } of planned) {
    yield* encodeTensor(tensor);
    const padding = (alignment - (byteSize % alignment)) % alignment;
    if (padding > 0) yield new Uint8Array(padding);
  }
}

/** The bytes of a GGUF file, for in-memory use and tests. */
export function encodeGguf(contents: GgufContents): Uint8Array {
  const chunks = [...ggufChunks(contents, "<in-memory GGUF>")];
  const result = new Uint8Array(chunks.reduce((total, chunk) => total + chunk.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    result.set(chunk, at);
    at += chunk.length;
  }
  return result;
}
