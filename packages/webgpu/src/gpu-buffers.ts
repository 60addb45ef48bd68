/**
 * Small helpers around GPU buffers: uploads, read-backs, and error scopes that turn WebGPU's
 * asynchronous validation errors into exceptions at the call that caused them.
 */
import { WebGpuDeviceError } from "./device.js";

export const storageUsage = 0x80 | 0x08 | 0x04; // STORAGE | COPY_DST | COPY_SRC (numeric: no globals needed in Node)
export const uniformUsage = 0x40 | 0x08; // UNIFORM | COPY_DST
const mapReadUsage = 0x01 | 0x08; // MAP_READ | COPY_DST
const mapModeRead = 0x01;

/** Rounds up to 4 bytes: WebGPU copies and writes work in multiples of 4. */
export function alignedSize(bytes: number): number {
  return Math.max(4, Math.ceil(bytes / 4) * 4);
}

export function createStorageBuffer(device: GPUDevice, bytes: number, label?: string): GPUBuffer {
  return device.createBuffer({ size: alignedSize(bytes), usage: storageUsage, label });
}

export function uploadFloat32(
  device: GPUDevice,
  data: Float32Array | Float64Array,
  label?: string,
): GPUBuffer {
  const values = data instanceof Float32Array ? data : Float32Array.from(data);
  const buffer = createStorageBuffer(device, values.byteLength, label);
  device.queue.writeBuffer(buffer, 0, values.buffer, values.byteOffset, values.byteLength);
  return buffer;
}

export function uploadUint32(device: GPUDevice, data: Uint32Array | Int32Array, label?: string): GPUBuffer {
  const buffer = createStorageBuffer(device, data.byteLength, label);
  device.queue.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
  return buffer;
}

/** Records one compute pass with `record` and submits it on its own command buffer. */
export function submitComputePass(device: GPUDevice, record: (pass: GPUComputePassEncoder) => void): void {
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  record(pass);
  pass.end();
  device.queue.submit([encoder.finish()]);
}

/** Copies `bytes` from a storage buffer into a fresh Float32Array (waits for the GPU). */
export async function readFloat32(
  device: GPUDevice,
  source: GPUBuffer,
  bytes: number,
  offset = 0,
): Promise<Float32Array> {
  const size = alignedSize(bytes);
  const staging = device.createBuffer({ size, usage: mapReadUsage, label: "read-back" });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(source, offset, staging, 0, size);
  device.queue.submit([encoder.finish()]);
  try {
    await staging.mapAsync(mapModeRead);
  } catch (error) {
    staging.destroy();
    throw new WebGpuDeviceError(`reading results back failed: ${(error as Error).message}`);
  }
  const result = new Float32Array(staging.getMappedRange().slice(0, bytes));
  staging.unmap();
  staging.destroy();
  return result;
}

/**
 * Runs `create` inside validation and out-of-memory error scopes and throws what they caught, so a
 * bad shader or an oversized buffer fails here with its message instead of poisoning later work.
 */
export async function withErrorScopes<T>(device: GPUDevice, what: string, create: () => T): Promise<T> {
  device.pushErrorScope("out-of-memory");
  device.pushErrorScope("validation");
  const result = create();
  const validation = await device.popErrorScope();
  const memory = await device.popErrorScope();
  const error = validation ?? memory;
  if (error) throw new WebGpuDeviceError(`${what}: ${error.message}`);
  return result;
}
