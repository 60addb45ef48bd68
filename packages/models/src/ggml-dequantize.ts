/**
 * Turns the stored bytes of a ggml tensor back into float32, the formats as ggml's format
 * description (ggml-common.h) lays them out. Every type stores blocks of values; a block's
 * value i is x[i], and `f16(a)` is the F16 number at byte a, little-endian.
 *
 * Arithmetic is float32 with the same rounding steps as ggml's own dequantiser, so the result is
 * bit-identical to ggml's `to_float` (the tests check this on files written by llama-quantize):
 * round(...) below marks an intermediate rounded to float32 before the next step, and every
 * result x is rounded to float32 when stored.
 *
 * 32-value blocks (q = the stored unsigned integer of value i, d the scale, m the minimum):
 * - Q4_0 (18 bytes): d = f16(0); byte 2 + j holds value j in its low nibble and value j + 16 in
 *   its high nibble (j < 16); x = d * (q - 8).
 * - Q4_1 (20 bytes): d = f16(0), m = f16(2); nibbles at 4 as in Q4_0; x = round(d * q) + m.
 * - Q5_0 (22 bytes): d = f16(0); bytes 2..5 are a little-endian uint32 h whose bit i is the
 *   fifth bit of value i; nibbles at 6 as in Q4_0; q = nibble + 16 * bit; x = d * (q - 16).
 * - Q5_1 (24 bytes): d = f16(0), m = f16(2), h at 4..7, nibbles at 8; x = round(d * q) + m.
 * - Q8_0 (34 bytes): d = f16(0), then 32 int8 q; x = d * q.
 *
 * 256-value super-blocks (K-quants). Value i sits in sub-block s = floor(i / 16) (16 values) or
 * floor(i / 32) (32 values). The 2-bit fields of Q2_K, Q3_K and Q6_K are spread so that value i,
 * with n = floor(i / 128), k = floor(i / 32) mod 4 and l = i mod 32, is bits 2k..2k+1 of byte
 * 32n + l of the 64-byte field.
 * - Q2_K (84 bytes): scales[16] at 0, the 2-bit field at 16, d = f16(80), dmin = f16(82). Scale
 *   byte s holds the sub-block's scale in its low nibble and its minimum in its high nibble;
 *   x = round(round(d * scale) * q) - round(dmin * min).
 * - Q3_K (110 bytes): hmask[32] at 0, the 2-bit field at 32, 12 scale bytes at 96, d = f16(108).
 *   The high bit of value i is bit 4n + k of hmask[l]; q = low2 - (high bit ? 0 : 4), in -4..3.
 *   The 16 6-bit scales: scale s has low 4 bits from byte s mod 8 of the 12 (its low nibble for
 *   s < 8, its high nibble otherwise) and high 2 bits from bits 2 * floor(s / 4) .. + 1 of byte
 *   8 + s mod 4; x = round(d * (scale - 32)) * q.
 * - Q4_K (144 bytes): d = f16(0), dmin = f16(2), 12 bytes b of packed 6-bit scales and minima
 *   at 4, then 128 bytes of nibbles at 16. Sub-block s (of 32 values, s < 8): for s < 4,
 *   scale = b[s] & 63, min = b[s + 4] & 63; otherwise scale = (b[s + 4] & 15) | (b[s - 4] >> 6) << 4
 *   and min = (b[s + 4] >> 4) | (b[s] >> 6) << 4. Value i, with c = floor(i / 64) and l = i mod 32,
 *   is the low nibble of byte 32c + l when i mod 64 < 32, else its high nibble;
 *   x = round(round(d * scale) * q) - round(dmin * min).
 * - Q5_K (176 bytes): as Q4_K with the nibbles at 48 and a 32-byte field at 16 whose byte l,
 *   bit floor(i / 32), is the fifth bit of value i (q = nibble + 16 * bit).
 * - Q6_K (210 bytes): 128 bytes of low nibbles at 0, 64 bytes of 2-bit high parts at 128, 16 int8
 *   scales at 192, d = f16(208). Value i, with n, k and l as above: low nibble from byte
 *   64n + 32 * (k mod 2) + l (low nibble for k < 2, high otherwise), high 2 bits at 2k of byte
 *   128 + 32n + l; q = low + 16 * high - 32; x = round(d * scale[s]) * q.
 * - Q8_K (292 bytes; llama.cpp's activation type, no llama-quantize output uses it): d = float32
 *   at 0, 256 int8 q at 4, 16 int16 sums at 260 (unused here); x = d * q.
 */
import { bfloat16BitsToNumber, float16BitsToNumber } from "./float16.js";
import { ggmlTypeInfo, ggmlTypes } from "./gguf-types.js";

const round = Math.fround;

type BlockDecoder = (view: DataView, bytes: Uint8Array, start: number, out: Float32Array, at: number) => void;

/** Low nibble of value j (j < 16) and high nibble of value j + 16, at `start`: Q4_0/Q4_1/Q5_x. */
function nibble32(bytes: Uint8Array, start: number, index: number): number {
  return index < 16 ? bytes[start + index] & 0x0f : bytes[start + index - 16] >> 4;
}

/** The 2-bit field shared by Q2_K and Q3_K: value i at bits 2k of byte 32n + l (see the head). */
function twoBits(bytes: Uint8Array, start: number, index: number): number {
  const n = index >> 7;
  const k = (index >> 5) & 3;
  return (bytes[start + 32 * n + (index & 31)] >> (2 * k)) & 3;
}

/** Q4_K/Q5_K scale and minimum of 32-value sub-block s from the 12 packed bytes at `start`. */
function packedScaleAndMin(bytes: Uint8Array, start: number, subBlock: number): [number, number] {
  if (subBlock < 4) return [bytes[start + subBlock] & 63, bytes[start + subBlock + 4] & 63];
  const high = bytes[start + subBlock + 4];
  return [
    (high & 15) | ((bytes[start + subBlock - 4] >> 6) << 4),
    (high >> 4) | ((bytes[start + subBlock] >> 6) << 4),
  ];
}

/** Q3_K's 6-bit scale s from the 12 bytes at `start` (see the head), before subtracting 32. */
function q3Scale(bytes: Uint8Array, start: number, subBlock: number): number {
  const low = subBlock < 8 ? bytes[start + subBlock] & 15 : bytes[start + subBlock - 8] >> 4;
  const high = (bytes[start + 8 + (subBlock & 3)] >> (2 * (subBlock >> 2))) & 3;
  return low | (high << 4);
}

const decoders = new Map<number, BlockDecoder>([
  [
    ggmlTypes.Q8_0,
    (view, _bytes, start, out, at) => {
      const d = float16BitsToNumber(view.getUint16(start, true));
      for (let i = 0; i < 32; i++) out[at + i] = d * view.getInt8(start + 2 + i);
    },
  ],
  [
    ggmlTypes.Q4_0,
    (view, bytes, start, out, at) => {
      const d = float16BitsToNumber(view.getUint16(start, true));
      for (let i = 0; i < 32; i++) out[at + i] = d * (nibble32(bytes, start + 2, i) - 8);
    },
  ],
  [
    ggmlTypes.Q4_1,
    (view, bytes, start, out, at) => {
      const d = float16BitsToNumber(view.getUint16(start, true));
      const m = float16BitsToNumber(view.getUint16(start + 2, true));
      for (let i = 0; i < 32; i++) out[at + i] = round(d * nibble32(bytes, start + 4, i)) + m;
    },
  ],
  [
    ggmlTypes.Q5_0,
    (view, bytes, start, out, at) => {
      const d = float16BitsToNumber(view.getUint16(start, true));
      const high = view.getUint32(start + 2, true);
      for (let i = 0; i < 32; i++) {
        out[at + i] = d * ((nibble32(bytes, start + 6, i) | (((high >>> i) & 1) << 4)) - 16);
      }
    },
  ],
  [
    ggmlTypes.Q5_1,
    (view, bytes, start, out, at) => {
      const d = float16BitsToNumber(view.getUint16(start, true));
      const m = float16BitsToNumber(view.getUint16(start + 2, true));
      const high = view.getUint32(start + 4, true);
      for (let i = 0; i < 32; i++) {
        out[at + i] = round(d * (nibble32(bytes, start + 8, i) | (((high >>> i) & 1) << 4))) + m;
      }
    },
  ],
  [
    ggmlTypes.Q2_K,
    (view, bytes, start, out, at) => {
      const d = float16BitsToNumber(view.getUint16(start + 80, true));
      const dmin = float16BitsToNumber(view.getUint16(start + 82, true));
      for (let subBlock = 0; subBlock < 16; subBlock++) {
        const packed = bytes[start + subBlock];
        const scale = round(d * (packed & 15));
        const min = round(dmin * (packed >> 4));
        for (let i = 16 * subBlock; i < 16 * subBlock + 16; i++) {
          out[at + i] = round(scale * twoBits(bytes, start + 16, i)) - min;
        }
      }
    },
  ],
  [
    ggmlTypes.Q3_K,
    (view, bytes, start, out, at) => {
      const d = float16BitsToNumber(view.getUint16(start + 108, true));
      for (let subBlock = 0; subBlock < 16; subBlock++) {
        const scale = round(d * (q3Scale(bytes, start + 96, subBlock) - 32));
        for (let i = 16 * subBlock; i < 16 * subBlock + 16; i++) {
          const highBit = (bytes[start + (i & 31)] >> (4 * (i >> 7) + ((i >> 5) & 3))) & 1;
          out[at + i] = scale * (twoBits(bytes, start + 32, i) - (highBit ? 0 : 4));
        }
      }
    },
  ],
  [
    ggmlTypes.Q4_K,
    (view, bytes, start, out, at) => {
      const d = float16BitsToNumber(view.getUint16(start, true));
      const dmin = float16BitsToNumber(view.getUint16(start + 2, true));
      for (let subBlock = 0; subBlock < 8; subBlock++) {
        const [scaleBits, minBits] = packedScaleAndMin(bytes, start + 4, subBlock);
        const scale = round(d * scaleBits);
        const min = round(dmin * minBits);
        const field = start + 16 + 32 * (subBlock >> 1);
        const shift = 4 * (subBlock & 1);
        for (let l = 0; l < 32; l++) {
          out[at + 32 * subBlock + l] = round(scale * ((bytes[field + l] >> shift) & 15)) - min;
        }
      }
    },
  ],
  [
    ggmlTypes.Q5_K,
    (view, bytes, start, out, at) => {
      const d = float16BitsToNumber(view.getUint16(start, true));
      const dmin = float16BitsToNumber(view.getUint16(start + 2, true));
      for (let subBlock = 0; subBlock < 8; subBlock++) {
        const [scaleBits, minBits] = packedScaleAndMin(bytes, start + 4, subBlock);
        const scale = round(d * scaleBits);
        const min = round(dmin * minBits);
        const field = start + 48 + 32 * (subBlock >> 1);
        const shift = 4 * (subBlock & 1);
        for (let l = 0; l < 32; l++) {
          const q = ((bytes[field + l] >> shift) & 15) | (((bytes[start + 16 + l] >> subBlock) & 1) << 4);
          out[at + 32 * subBlock + l] = round(scale * q) - min;
        }
      }
    },
  ],
  [
    ggmlTypes.Q6_K,
    (view, bytes, start, out, at) => {
      const d = float16BitsToNumber(view.getUint16(start + 208, true));
      for (let i = 0; i < 256; i++) {
        const n = i >> 7;
        const k = (i >> 5) & 3;
        const l = i & 31;
        const lowByte = bytes[start + 64 * n + 32 * (k & 1) + l];
        const low = k < 2 ? lowByte & 15 : lowByte >> 4;
        const high = (bytes[start + 128 + 32 * n + l] >> (2 * k)) & 3;
        const scale = round(d * view.getInt8(start + 192 + (i >> 4)));
        out[at + i] = scale * ((low | (high << 4)) - 32);
      }
    },
  ],
  [
    ggmlTypes.Q8_K,
    (view, _bytes, start, out, at) => {
      const d = view.getFloat32(start, true);
      for (let i = 0; i < 256; i++) out[at + i] = d * view.getInt8(start + 4 + i);
    },
  ],
]);

export const dequantizableTypeIds: readonly number[] = [
  ggmlTypes.F32,
  ggmlTypes.F16,
  ggmlTypes.BF16,
  ...decoders.keys(),
];

/** The names of {@link dequantizableTypeIds}, for messages. */
export const dequantizableTypeNames: readonly string[] = dequantizableTypeIds.map(
  (id) => ggmlTypeInfo(id)?.name ?? String(id),
);

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Returns undefined for a type this package cannot dequantise; the caller names it in its error.
 * `bytes` must hold the whole tensor and `elementCount` be a multiple of the type's block size
 * (the GGUF reader checks both against the tensor's shape before reading).
 */
export function dequantize(
  typeId: number,
  bytes: Uint8Array,
  elementCount: number,
): Float32Array | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const result = new Float32Array(elementCount);
  switch (typeId) {
    case ggmlTypes.F32:
      if (hostIsLittleEndian) {
        new Uint8Array(result.buffer).set(bytes.subarray(0, elementCount * 4));
      } else {
        for (let index = 0; index < elementCount; index++) result[index] = view.getFloat32(index * 4, true);
      }
      return result;
    case ggmlTypes.F16:
      for (let index = 0; index < elementCount; index++) {
        result[index] = float16BitsToNumber(view.getUint16(index * 2, true));
      }
      return result;
    case ggmlTypes.BF16:
      for (let index = 0; index < elementCount; index++) {
        result[index] = bfloat16BitsToNumber(view.getUint16(index * 2, true));
      }
      return result;
  }
  const decode = decoders.get(typeId);
  const info = ggmlTypeInfo(typeId);
  if (decode === undefined || info === undefined) return undefined;
  for (let block = 0; block < elementCount / info.blockSize; block++) {
    decode(view, bytes, block * info.blockBytes, result, block * info.blockSize);
  }
  return result;
}
