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

/** A buffer that storage buffers are copied into to be read on the CPU. */
export function createReadBackBuffer(device: GPUDevice, bytes: number): GPUBuffer {
  return device.createBuffer({ size: alignedSize(bytes), usage: mapReadUsage, label: "read-back" });
}

/**
 * Copies `bytes` from a storage buffer into a fresh Float32Array (waits for the GPU), through
 * `staging` when it is given and large enough (a caller that reads every step keeps one, since
 * allocating mappable memory per read costs more than the read), else through a buffer of its own.
 */
export async function readFloat32(
  device: GPUDevice,
  source: GPUBuffer,
  bytes: number,
  offset = 0,
  staging?: GPUBuffer,
): Promise<Float32Array> {
  const size = alignedSize(bytes);
  const reused = staging !== undefined && staging.size >= size;
  const target = reused ? staging : createReadBackBuffer(device, size);
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(source, offset, target, 0, size);
  device.queue.submit([encoder.finish()]);
  try {
    await target.mapAsync(mapModeRead, 0, size);
  } catch (error) {
    if (!reused) target.destroy();
    throw new WebGpuDeviceError(`reading results back failed: ${(error as Error).message}`);
  }
  const result = new Float32Array(target.getMappedRange(0, size).slice(0, bytes));
  target.unmap();
  if (!reused) target.destroy();
  return result;
}

/**
 * Bind groups by pipeline and buffers, so work recorded again and again (every layer of every
 * decode step binds the same buffers) creates each bind group once. Buffers are told apart by
 * identity; past `limit` entries the cache starts over, so bind groups of buffers that are gone do
 * not pile up.
 */
export class BindGroupCache {
  private readonly groups = new Map<string, GPUBindGroup>();
  private readonly layouts = new Map<GPUComputePipeline, GPUBindGroupLayout>();
  private readonly identities = new WeakMap<object, number>();
  private nextIdentity = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly limit = 4096,
  ) {}

  private identity(item: object): number {
    let value = this.identities.get(item);
    if (value === undefined) {
      value = this.nextIdentity++;
      this.identities.set(item, value);
    }
    return value;
  }

  /** The bind group binding `buffers` to bindings 0, 1, ... of `pipeline`'s group 0. */
  get(pipeline: GPUComputePipeline, buffers: readonly GPUBuffer[]): GPUBindGroup {
    const key = [pipeline, ...buffers].map((item) => this.identity(item)).join(",");
    const cached = this.groups.get(key);
    if (cached !== undefined) return cached;
    if (this.groups.size >= this.limit) this.groups.clear();
    let layout = this.layouts.get(pipeline);
    if (layout === undefined) {
      layout = pipeline.getBindGroupLayout(0);
      this.layouts.set(pipeline, layout);
    }
    const group = this.device.createBindGroup({
      layout,
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    this.groups.set(key, group);
    return group;
  }

  clear(): void {
    this.groups.clear();
  }
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
