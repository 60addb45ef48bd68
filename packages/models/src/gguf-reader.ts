/**
 * GGUF reader (format versions 2 and 3; ggml/docs/gguf.md).
 *
 * Files can be many gigabytes, so the head (header, metadata, tensor infos) is parsed through a
 * small window that is refilled from a byte source (a file descriptor in the Node entry's
 * `readGguf`, see gguf-file.ts; bytes in memory for `parseGguf`), and tensor bytes are read only
 * when asked for. Every length and count read from the file is checked against the bytes that remain before
 * anything is allocated or sliced, so a corrupt file gives a ModelFileError, never a RangeError.
 * Counts, sizes and offsets are compared as 64-bit integers (bigint) before they become numbers, and
 * the head as a whole is held to `ggufHeadLimits`: a corrupt count in a 5 GB file could otherwise
 * pass the "fits in the rest of the file" test and still ask for gigabytes of JavaScript objects.
 * Names and values quoted in error messages are shortened, so a corrupt length never puts megabytes
 * into a message.
 */
import { dequantizableTypeIds, dequantizableTypeNames, dequantize } from "./ggml-dequantize.js";
import {
  type GgufArray,
  type GgufScalarTypeName,
  type GgufTypedValue,
  type GgufValue,
  ggmlTypeInfo,
  ggufDefaultAlignment,
  ggufMagic,
  ggufValueTypeName,
} from "./gguf-types.js";
import { quoteForMessage } from "./message-text.js";
import { ModelFileError } from "./model-file-error.js";

export interface GgufTensorInfo {
  readonly name: string;
  /** ggml order: dimensions[0] (ne0) moves fastest, i.e. it is the row width. */
  readonly dimensions: readonly number[];
  /** Row-major shape, outermost first (dimensions reversed): [out, in] for a weight matrix. */
  readonly shape: readonly number[];
  /** ggml type id (0 F32, 1 F16, 2 Q4_0, 8 Q8_0, 30 BF16, ...). */
  readonly type: number;
  readonly typeName: string;
  readonly elementCount: number;
  /** Offset inside the tensor data section, as stored in the file. */
  readonly offset: number;
  /** Absolute offset in the file. */
  readonly fileOffset: number;
  readonly byteSize: number;
}

export interface GgufFile {
  readonly path: string;
  readonly version: number;
  readonly alignment: number;
  /** Plain values: 64-bit integers as bigint, numeric arrays as typed arrays, strings as string[]. */
  readonly metadata: ReadonlyMap<string, GgufValue>;
  /** The same values with their stored GGUF types, in file order (what writeGguf takes). */
  readonly typedMetadata: ReadonlyMap<string, GgufTypedValue>;
  readonly tensors: readonly GgufTensorInfo[];
  /** Absolute offset of the tensor data section. */
  readonly dataOffset: number;
  readonly fileSize: number;
  tensor(name: string): GgufTensorInfo | undefined;
  /** The stored bytes of one tensor, read on demand. */
  readTensorBytes(name: string): Uint8Array;
  /** One tensor as float32 (every type in `dequantizableTypeNames` is dequantised), ggml element order. */
  readTensor(name: string): Float32Array;
  close(): void;
}

/** Random access to the bytes of a GGUF file, whether on disk or in memory. */
export interface GgufByteSource {
  readonly size: number;
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

function memorySource(bytes: Uint8Array): GgufByteSource {
  return {
    size: bytes.byteLength,
    read: (offset, length) => bytes.subarray(offset, offset + length),
    close() {},
  };
}

const windowBytes = 1 << 16;
const textDecoder = new TextDecoder("utf-8");

/**
 * Bounds on the head of a GGUF file, far above what real models use (a 262k-token vocabulary with
 * its merges and scores takes about 30 MB as JavaScript values; models have hundreds to a few
 * thousand tensors) and far below what would exhaust the heap.
 */
export const ggufHeadLimits = {
  /** GGUF keys are at most 65535 bytes (ggml/docs/gguf.md). */
  keyBytes: 65535,
  /** ggml names are 64 bytes at most; this leaves room for other writers. */
  tensorNameBytes: 65535,
  metadataEntries: 1 << 20,
  tensors: 1 << 20,
  /** Estimated JavaScript memory of all metadata values and tensor infos together. */
  headMemoryBytes: 256 * 1024 * 1024,
} as const;

/** Estimated JavaScript memory of one string in an array, beyond its bytes, and of one tensor info. */
const stringOverheadBytes = 32;
const tensorInfoBytes = 256;
const arrayOverheadBytes = 64;

/** Sequential reader over the head of the file with a refillable window and checked lengths. */
class HeadCursor {
  position = 0;
  /** What is being read, for error messages ("metadata entry 3 (\"llama.block_count\")"). */
  context = "the header";
  private window: Uint8Array = new Uint8Array(0);
  private windowStart = 0;
  private view = new DataView(this.window.buffer);

  constructor(
    private readonly source: GgufByteSource,
    readonly path: string,
  ) {}

  get remaining(): number {
    return this.source.size - this.position;
  }

  fail(message: string): never {
    throw new ModelFileError(this.path, `${message} (at byte ${this.position}, reading ${this.context})`);
  }

  private take(length: number): number {
    if (length > this.remaining) {
      this.fail(`truncated: needs ${length} more bytes but the file ends at byte ${this.source.size}`);
    }
    const windowEnd = this.windowStart + this.window.byteLength;
    if (this.position < this.windowStart || this.position + length > windowEnd) {
      const readLength = Math.min(Math.max(length, windowBytes), this.remaining);
      this.window = this.source.read(this.position, readLength);
      this.windowStart = this.position;
      this.view = new DataView(this.window.buffer, this.window.byteOffset, this.window.byteLength);
    }
    const at = this.position - this.windowStart;
    this.position += length;
    return at;
  }

  /** take() may move the window, so the view must be fetched after it. */
  private read<T>(length: number, get: (view: DataView, at: number) => T): T {
    const at = this.take(length);
    return get(this.view, at);
  }

  uint8(): number {
    return this.read(1, (view, at) => view.getUint8(at));
  }
  uint32(): number {
    return this.read(4, (view, at) => view.getUint32(at, true));
  }
  bigUint64(): bigint {
    return this.read(8, (view, at) => view.getBigUint64(at, true));
  }
  /**
   * A uint64 count or size. `unitBytes` times it must fit the rest of the file, and `memoryBytes`
   * times it (what the values will take in memory) the head's memory budget, which it then uses up.
   */
  count(what: string, unitBytes: number, memoryBytes = unitBytes, limit?: number): number {
    const value = this.bigUint64();
    if (value * BigInt(unitBytes) > BigInt(this.remaining)) {
      this.fail(
        `${what} ${value} is larger than the rest of the file (${this.remaining} bytes): corrupt or truncated`,
      );
    }
    if (limit !== undefined && value > BigInt(limit)) {
      this.fail(`${what} ${value} is over the limit of ${limit}: corrupt`);
    }
    this.spend(value * BigInt(memoryBytes), `${what} ${value}`);
    return Number(value);
  }
  /** Counts `bytes` of JavaScript memory against ggufHeadLimits.headMemoryBytes. */
  spend(bytes: bigint, what: string): void {
    if (bytes > BigInt(this.memoryLeft)) {
      this.fail(
        `${what} would need ${bytes} bytes of memory, over the ${ggufHeadLimits.headMemoryBytes}-byte limit for a GGUF head: corrupt`,
      );
    }
    this.memoryLeft -= Number(bytes);
  }
  private memoryLeft: number = ggufHeadLimits.headMemoryBytes;
  bytes(length: number): Uint8Array {
    const at = this.take(length);
    return this.window.subarray(at, at + length);
  }
  string(what = "string length", limit?: number): string {
    const length = this.count(what, 1, 1, limit);
    return textDecoder.decode(this.bytes(length));
  }

  scalar(type: GgufScalarTypeName): number | bigint | boolean | string {
    switch (type) {
      case "uint8":
        return this.read(1, (view, at) => view.getUint8(at));
      case "int8":
        return this.read(1, (view, at) => view.getInt8(at));
      case "uint16":
        return this.read(2, (view, at) => view.getUint16(at, true));
      case "int16":
        return this.read(2, (view, at) => view.getInt16(at, true));
      case "uint32":
        return this.read(4, (view, at) => view.getUint32(at, true));
      case "int32":
        return this.read(4, (view, at) => view.getInt32(at, true));
      case "float32":
        return this.read(4, (view, at) => view.getFloat32(at, true));
      case "float64":
        return this.read(8, (view, at) => view.getFloat64(at, true));
      case "uint64":
        return this.read(8, (view, at) => view.getBigUint64(at, true));
      case "int64":
        return this.read(8, (view, at) => view.getBigInt64(at, true));
      case "bool": {
        const byte = this.read(1, (view, at) => view.getUint8(at));
        if (byte > 1) this.fail(`bool value ${byte} is neither 0 nor 1`);
        return byte === 1;
      }
      case "string":
        return this.string();
    }
  }
}

const numericArrays = {
  uint8: [1, (buffer: ArrayBuffer) => new Uint8Array(buffer)],
  int8: [1, (buffer: ArrayBuffer) => new Int8Array(buffer)],
  uint16: [2, (buffer: ArrayBuffer) => new Uint16Array(buffer)],
  int16: [2, (buffer: ArrayBuffer) => new Int16Array(buffer)],
  uint32: [4, (buffer: ArrayBuffer) => new Uint32Array(buffer)],
  int32: [4, (buffer: ArrayBuffer) => new Int32Array(buffer)],
  float32: [4, (buffer: ArrayBuffer) => new Float32Array(buffer)],
  float64: [8, (buffer: ArrayBuffer) => new Float64Array(buffer)],
  uint64: [8, (buffer: ArrayBuffer) => new BigUint64Array(buffer)],
  int64: [8, (buffer: ArrayBuffer) => new BigInt64Array(buffer)],
} as const satisfies Record<string, readonly [number, (buffer: ArrayBuffer) => GgufArray]>;

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function readValueType(cursor: HeadCursor): ReturnType<typeof ggufValueTypeName> & string {
  const id = cursor.uint32();
  const name = ggufValueTypeName(id);
  if (name === undefined) cursor.fail(`unknown metadata value type id ${id}`);
  return name;
}

function readArray(
  cursor: HeadCursor,
  depth: number,
): { itemType: GgufScalarTypeName | "array"; value: GgufArray } {
  const itemType = readValueType(cursor);
  if (itemType === "array") {
    if (depth > 4) cursor.fail("arrays nested more than 4 deep");
    const length = cursor.count("array length", 12, arrayOverheadBytes);
    const value: GgufArray[] = [];
    for (let index = 0; index < length; index++) value.push(readArray(cursor, depth + 1).value);
    return { itemType, value };
  }
  if (itemType === "string") {
    const length = cursor.count("array length", 8, stringOverheadBytes);
    const value: string[] = new Array(length);
    for (let index = 0; index < length; index++) value[index] = cursor.string();
    return { itemType, value };
  }
  if (itemType === "bool") {
    const length = cursor.count("array length", 1, 8);
    const value: boolean[] = new Array(length);
    for (let index = 0; index < length; index++) value[index] = cursor.scalar("bool") as boolean;
    return { itemType, value };
  }
  const [itemBytes, create] = numericArrays[itemType];
  const length = cursor.count("array length", itemBytes);
  // slice() gives a fresh, aligned ArrayBuffer that the typed array can view directly.
  const bytes = cursor.bytes(length * itemBytes).slice();
  if (!hostIsLittleEndian) {
    for (let start = 0; start < bytes.length; start += itemBytes)
      bytes.subarray(start, start + itemBytes).reverse();
  }
  return { itemType, value: create(bytes.buffer) };
}

/** Parses the head of a GGUF file from any byte source (the Node entry passes a file). */
export function parseGgufSource(source: GgufByteSource, path: string): GgufFile {
  const cursor: HeadCursor = new HeadCursor(source, path);
  if (source.size < 4) cursor.fail(`is only ${source.size} bytes: too short for a GGUF header`);
  const magic = cursor.uint32();
  if (magic !== ggufMagic) {
    cursor.fail(`does not start with the GGUF magic "GGUF" (found 0x${magic.toString(16).padStart(8, "0")})`);
  }
  const version = cursor.uint32();
  if (version === 0x03000000 || version === 0x02000000) {
    cursor.fail(
      `is a big-endian GGUF (version bytes ${version.toString(16)}); only little-endian files are supported`,
    );
  }
  if (version !== 2 && version !== 3) {
    cursor.fail(`has GGUF version ${version}; versions 2 and 3 are supported (version 1 used 32-bit counts)`);
  }
  // Each tensor info takes at least 8 + 4 + 8 + 4 + 8 bytes; each metadata entry at least 8 + 4 + 1.
  cursor.context = "the header counts";
  const tensorCount = cursor.count("tensor count", 32, tensorInfoBytes, ggufHeadLimits.tensors);
  const metadataCount = cursor.count(
    "metadata entry count",
    13,
    arrayOverheadBytes,
    ggufHeadLimits.metadataEntries,
  );

  const typedMetadata = new Map<string, GgufTypedValue>();
  const metadata = new Map<string, GgufValue>();
  for (let entry = 0; entry < metadataCount; entry++) {
    cursor.context = `metadata entry ${entry}`;
    const key = cursor.string("key length", ggufHeadLimits.keyBytes);
    cursor.context = `metadata entry ${entry} (${quoteForMessage(key)})`;
    if (typedMetadata.has(key)) cursor.fail(`duplicate metadata key ${quoteForMessage(key)}`);
    const type = readValueType(cursor);
    let typed: GgufTypedValue;
    if (type === "array") {
      const { itemType, value } = readArray(cursor, 0);
      typed = { type, itemType, value };
    } else {
      typed = { type, value: cursor.scalar(type) } as GgufTypedValue;
    }
    typedMetadata.set(key, typed);
    metadata.set(key, typed.value as GgufValue);
  }

  let alignment = ggufDefaultAlignment;
  const alignmentEntry = typedMetadata.get("general.alignment");
  if (alignmentEntry !== undefined) {
    const value = alignmentEntry.value;
    if (
      alignmentEntry.type !== "uint32" ||
      typeof value !== "number" ||
      value === 0 ||
      (value & (value - 1)) !== 0
    ) {
      throw new ModelFileError(
        path,
        `general.alignment must be a uint32 power of two, found ${alignmentEntry.type} ${typeof value === "number" || typeof value === "bigint" ? value : "(not a number)"}`,
      );
    }
    alignment = value;
  }

  interface PendingTensor {
    name: string;
    dimensions: number[];
    type: number;
    typeName: string;
    elementCount: number;
    offset: number;
    byteSize: number;
  }
  const pending: PendingTensor[] = [];
  const seen = new Set<string>();
  for (let index = 0; index < tensorCount; index++) {
    cursor.context = `tensor info ${index}`;
    const name = cursor.string("tensor name length", ggufHeadLimits.tensorNameBytes);
    const quoted = quoteForMessage(name);
    cursor.context = `tensor info ${index} (${quoted})`;
    if (seen.has(name)) cursor.fail(`duplicate tensor name ${quoted}`);
    seen.add(name);
    const dimensionCount = cursor.uint32();
    if (dimensionCount > 4)
      cursor.fail(`tensor ${quoted} has ${dimensionCount} dimensions; ggml allows at most 4`);
    const dimensions: bigint[] = [];
    let elementCount = 1n;
    for (let axis = 0; axis < dimensionCount; axis++) {
      const size = cursor.bigUint64();
      if (size > BigInt(Number.MAX_SAFE_INTEGER))
        cursor.fail(`tensor ${quoted} dimension ${axis} = ${size} is too large`);
      elementCount *= size;
      dimensions.push(size);
    }
    const type = cursor.uint32();
    const info = ggmlTypeInfo(type);
    if (info === undefined) {
      cursor.fail(`tensor ${quoted} has unknown ggml type id ${type}`);
    }
    if ((dimensions[0] ?? 1n) % BigInt(info.blockSize) !== 0n) {
      cursor.fail(
        `tensor ${quoted} of type ${info.name} has rows of ${dimensions[0]} values, not a multiple of its block size ${info.blockSize}`,
      );
    }
    // Once the size is known to fit the file, every count and offset of the tensor is a safe number.
    const byteSize = (elementCount / BigInt(info.blockSize)) * BigInt(info.blockBytes);
    if (byteSize > BigInt(source.size)) {
      cursor.fail(
        `tensor ${quoted} of shape [${dimensions.join(", ")}] needs ${byteSize} bytes, more than the whole file (${source.size} bytes): corrupt`,
      );
    }
    const offset = cursor.bigUint64();
    if (offset > BigInt(source.size)) {
      cursor.fail(
        `tensor ${quoted} data offset ${offset} lies past the end of the file (${source.size} bytes)`,
      );
    }
    if (offset % BigInt(alignment) !== 0n) {
      cursor.fail(`tensor ${quoted} data offset ${offset} is not a multiple of the alignment ${alignment}`);
    }
    pending.push({
      name,
      dimensions: dimensions.map(Number),
      type,
      typeName: info.name,
      elementCount: Number(elementCount),
      offset: Number(offset),
      byteSize: Number(byteSize),
    });
  }

  const dataOffset = Math.ceil(cursor.position / alignment) * alignment;
  const tensors: GgufTensorInfo[] = pending.map((tensor) => {
    const fileOffset = dataOffset + tensor.offset;
    if (fileOffset + tensor.byteSize > source.size) {
      throw new ModelFileError(
        path,
        `tensor ${quoteForMessage(tensor.name)} data (bytes ${fileOffset}..${fileOffset + tensor.byteSize}) lies past the end of the file (${source.size} bytes): truncated`,
      );
    }
    return { ...tensor, shape: [...tensor.dimensions].reverse(), fileOffset };
  });
  const byName = new Map(tensors.map((tensor) => [tensor.name, tensor]));

  const find = (name: string): GgufTensorInfo => {
    const tensor = byName.get(name);
    if (tensor === undefined) throw new ModelFileError(path, `has no tensor named ${quoteForMessage(name)}`);
    return tensor;
  };
  const readTensorBytes = (name: string): Uint8Array => {
    const tensor = find(name);
    return source.read(tensor.fileOffset, tensor.byteSize);
  };

  return {
    path,
    version,
    alignment,
    metadata,
    typedMetadata,
    tensors,
    dataOffset,
    fileSize: source.size,
    tensor: (name) => byName.get(name),
    readTensorBytes,
    readTensor(name) {
      const tensor = find(name);
      if (!dequantizableTypeIds.includes(tensor.type)) {
        throw new ModelFileError(
          path,
          `tensor ${quoteForMessage(name)} has type ${tensor.typeName} (id ${tensor.type}), which cannot be read here (supported: ${dequantizableTypeNames.join(", ")})`,
        );
      }
      return dequantize(tensor.type, readTensorBytes(name), tensor.elementCount) as Float32Array;
    },
    close: () => source.close(),
  };
}

/** Parses a GGUF file already in memory; tensors are views of `bytes` until dequantised. */
export function parseGguf(bytes: Uint8Array, path = "<in-memory GGUF>"): GgufFile {
  return parseGgufSource(memorySource(bytes), path);
}

/** True when the bytes start with the GGUF magic. */
export function hasGgufMagic(bytes: Uint8Array): boolean {
  return (
    bytes.byteLength >= 4 && bytes[0] === 0x47 && bytes[1] === 0x47 && bytes[2] === 0x55 && bytes[3] === 0x46
  );
}
