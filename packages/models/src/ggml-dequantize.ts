/**
 * Turns the stored bytes of a ggml tensor back into float32. Block layouts (ggml-common.h):
 * - Q8_0: 32 values per 34-byte block: F16 scale d, then 32 int8 q; x = d * q.
 * - Q4_0: 32 values per 18-byte block: F16 scale d, then 16 bytes; byte j holds value j in its
 *   low nibble and value j + 16 in its high nibble; x = d * (nibble - 8).
 */
import { bfloat16BitsToNumber, float16BitsToNumber } from "./float16.js";
import { ggmlTypes } from "./gguf-types.js";

export const dequantizableTypeIds: readonly number[] = [
  ggmlTypes.F32,
  ggmlTypes.F16,
  ggmlTypes.BF16,
  ggmlTypes.Q8_0,
  ggmlTypes.Q4_0,
];

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Returns undefined for a type this package cannot dequantise; the caller names it in its error. */
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
    case ggmlTypes.Q8_0:
      for (let block = 0; block < elementCount / 32; block++) {
        const start = block * 34;
        const scale = float16BitsToNumber(view.getUint16(start, true));
        for (let index = 0; index < 32; index++) {
          result[block * 32 + index] = scale * view.getInt8(start + 2 + index);
        }
      }
      return result;
    case ggmlTypes.Q4_0:
      for (let block = 0; block < elementCount / 32; block++) {
        const start = block * 18;
        const scale = float16BitsToNumber(view.getUint16(start, true));
        for (let index = 0; index < 16; index++) {
          const packed = bytes[start + 2 + index];
          result[block * 32 + index] = scale * ((packed & 0x0f) - 8);
          result[block * 32 + index + 16] = scale * ((packed >> 4) - 8);
        }
      }
      return result;
    default:
      return undefined;
  }
}
