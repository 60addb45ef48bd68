export {
  type KernelLimits,
  type NodeWebGpuBackend,
  type RequestWebGpuDeviceOptions,
  requestWebGpuDevice,
  type WebGpuContext,
  WebGpuDeviceError,
  WebGpuUnavailableError,
} from "./device.js";
export { createGpuRopeTable, type GpuRopeTable } from "./rope-table.js";
export {
  type AttentionBuffers,
  type AttentionCall,
  type AttentionKernelMode,
  type AttentionTiles,
  chooseAttentionTiles,
  largestRotatedPosition,
  LogSumExpMergeKernel,
  SelfExtendAttentionKernel,
  type SelfExtendAttentionKernelOptions,
} from "./self-extend-attention-kernel.js";
export { readFloat32, uploadFloat32 } from "./gpu-buffers.js";
