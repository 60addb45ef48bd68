/**
 * GGUF file-format constants and value types (ggml/docs/gguf.md, gguf-py `constants.py`).
 * Numbers here are fixed by the format; every reader or writer of GGUF must agree on them.
 */

/** "GGUF" read as a little-endian uint32. */
export const ggufMagic = 0x46554747;
export const ggufDefaultAlignment = 32;

/** Metadata value types, by their on-disk id. */
export const ggufValueTypeIds = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
} as const;

export type GgufValueTypeName = keyof typeof ggufValueTypeIds;
export type GgufScalarTypeName = Exclude<GgufValueTypeName, "array">;

export function ggufValueTypeName(id: number): GgufValueTypeName | undefined {
  for (const [name, typeId] of Object.entries(ggufValueTypeIds)) {
    if (typeId === id) return name as GgufValueTypeName;
  }
  return undefined;
}

/** A metadata value as JavaScript sees it: 64-bit integers are bigint, numeric arrays typed arrays. */
export type GgufScalar = number | bigint | boolean | string;
export type GgufArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array
  | readonly boolean[]
  | readonly string[]
  | readonly GgufArray[];
export type GgufValue = GgufScalar | GgufArray;

/**
 * A metadata value with its GGUF type spelled out. llama.cpp checks the stored type of each key
 * (a context length written as int32 where it expects uint32 fails to load), so writers must say it.
 */
export type GgufTypedValue =
  | { readonly type: "uint8" | "int8" | "uint16" | "int16" | "uint32" | "int32"; readonly value: number }
  | { readonly type: "float32" | "float64"; readonly value: number }
  | { readonly type: "uint64" | "int64"; readonly value: bigint | number }
  | { readonly type: "bool"; readonly value: boolean }
  | { readonly type: "string"; readonly value: string }
  | {
      readonly type: "array";
      readonly itemType: GgufScalarTypeName | "array";
      readonly value: GgufArray | readonly number[] | readonly bigint[];
    };

/** ggml tensor types: id, values per block and bytes per block (gguf-py `GGML_QUANT_SIZES`). */
export interface GgmlTypeInfo {
  readonly id: number;
  readonly name: string;
  readonly blockSize: number;
  readonly blockBytes: number;
}

const qk = 256;
const typeTable: readonly GgmlTypeInfo[] = [
  { id: 0, name: "F32", blockSize: 1, blockBytes: 4 },
  { id: 1, name: "F16", blockSize: 1, blockBytes: 2 },
  { id: 2, name: "Q4_0", blockSize: 32, blockBytes: 2 + 16 },
  { id: 3, name: "Q4_1", blockSize: 32, blockBytes: 2 + 2 + 16 },
  { id: 6, name: "Q5_0", blockSize: 32, blockBytes: 2 + 4 + 16 },
  { id: 7, name: "Q5_1", blockSize: 32, blockBytes: 2 + 2 + 4 + 16 },
  { id: 8, name: "Q8_0", blockSize: 32, blockBytes: 2 + 32 },
  { id: 9, name: "Q8_1", blockSize: 32, blockBytes: 4 + 4 + 32 },
  { id: 10, name: "Q2_K", blockSize: qk, blockBytes: 2 + 2 + qk / 16 + qk / 4 },
  { id: 11, name: "Q3_K", blockSize: qk, blockBytes: 2 + qk / 4 + qk / 8 + 12 },
  { id: 12, name: "Q4_K", blockSize: qk, blockBytes: 2 + 2 + qk / 2 + 12 },
  { id: 13, name: "Q5_K", blockSize: qk, blockBytes: 2 + 2 + qk / 2 + qk / 8 + 12 },
  { id: 14, name: "Q6_K", blockSize: qk, blockBytes: 2 + qk / 2 + qk / 4 + qk / 16 },
  { id: 15, name: "Q8_K", blockSize: qk, blockBytes: 4 + qk + qk / 8 },
  { id: 16, name: "IQ2_XXS", blockSize: qk, blockBytes: 2 + qk / 4 },
  { id: 17, name: "IQ2_XS", blockSize: qk, blockBytes: 2 + qk / 4 + qk / 32 },
  { id: 18, name: "IQ3_XXS", blockSize: qk, blockBytes: 2 + qk / 4 + qk / 8 },
  { id: 19, name: "IQ1_S", blockSize: qk, blockBytes: 2 + qk / 8 + qk / 16 },
  { id: 20, name: "IQ4_NL", blockSize: 32, blockBytes: 2 + 16 },
  { id: 21, name: "IQ3_S", blockSize: qk, blockBytes: 2 + qk / 4 + qk / 8 + qk / 32 + 4 },
  { id: 22, name: "IQ2_S", blockSize: qk, blockBytes: 2 + qk / 4 + qk / 16 },
  { id: 23, name: "IQ4_XS", blockSize: qk, blockBytes: 2 + 2 + qk / 2 + qk / 64 },
  { id: 24, name: "I8", blockSize: 1, blockBytes: 1 },
  { id: 25, name: "I16", blockSize: 1, blockBytes: 2 },
  { id: 26, name: "I32", blockSize: 1, blockBytes: 4 },
  { id: 27, name: "I64", blockSize: 1, blockBytes: 8 },
  { id: 28, name: "F64", blockSize: 1, blockBytes: 8 },
  { id: 29, name: "IQ1_M", blockSize: qk, blockBytes: qk / 8 + qk / 16 + qk / 32 },
  { id: 30, name: "BF16", blockSize: 1, blockBytes: 2 },
  { id: 34, name: "TQ1_0", blockSize: qk, blockBytes: 2 + 4 * 13 },
  { id: 35, name: "TQ2_0", blockSize: qk, blockBytes: 2 + 64 },
  { id: 39, name: "MXFP4", blockSize: 32, blockBytes: 1 + 16 },
];

const typesById = new Map(typeTable.map((info) => [info.id, info]));

export function ggmlTypeInfo(id: number): GgmlTypeInfo | undefined {
  return typesById.get(id);
}

/** The ids this package writes or dequantises, by name. */
export const ggmlTypes = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  BF16: 30,
} as const;
export type GgmlTypeName = keyof typeof ggmlTypes;

/** llama.cpp `general.file_type` (LlamaFileType): what most tensors are stored as. */
export const ggufFileTypes = { allF32: 0, mostlyF16: 1 } as const;

/** SentencePiece token kinds as llama.cpp stores them in `tokenizer.ggml.token_type`. */
export const ggufTokenTypes = {
  normal: 1,
  unknown: 2,
  control: 3,
  userDefined: 4,
  unused: 5,
  byte: 6,
} as const;
