/**
 * NumPy `.npy` (format 1.0) for a float32 matrix, so logits can be compared in NumPy or PyTorch
 * with `np.load`. Written to a temporary name and renamed, so a failure leaves no partial file.
 */
import { renameSync, rmSync, writeFileSync } from "node:fs";

export function encodeNpyFloat32(data: Float32Array, shape: readonly number[]): Uint8Array {
  const count = shape.reduce((total, size) => total * size, 1);
  if (count !== data.length)
    throw new RangeError(`shape ${shape.join("x")} holds ${count} values, data has ${data.length}`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64, ending in \n.
  const unpadded = 10 + header.length + 1;
  header += `${" ".repeat((64 - (unpadded % 64)) % 64)}\n`;
  const bytes = new Uint8Array(10 + header.length + data.byteLength);
  bytes.set([0x93, ...Buffer.from("NUMPY", "latin1"), 1, 0]);
  new DataView(bytes.buffer).setUint16(8, header.length, true);
  bytes.set(Buffer.from(header, "latin1"), 10);
  // .npy is little-endian ('<f4'); so is every platform Node runs on that we support.
  bytes.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return bytes;
}

export function writeNpyFloat32(path: string, data: Float32Array, shape: readonly number[]): void {
  const partial = `${path}.partial-${process.pid}`;
  try {
    writeFileSync(partial, encodeNpyFloat32(data, shape));
    renameSync(partial, path);
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  }
}
