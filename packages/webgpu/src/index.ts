export {
  type KernelLimits,
  type NodeWebGpuBackend,
  type RequestWebGpuDeviceOptions,
  requestWebGpuDevice,
  type WebGpuContext,
  WebGpuDeviceError,
  WebGpuUnavailableError,
} from "./device.js";
export {
  ForwardPassKernels,
  GpuForwardPass,
  type GpuModelWeights,
  toFloat16Bits,
  uploadLlamaWeights,
} from "./forward-pass.js";
export type { WeightPrecision } from "./forward-pass.wgsl.js";
export { readFloat32, uploadFloat32 } from "./gpu-buffers.js";
export {
  llamaWeightsFromGgufBytes,
  type ModelBytesSource,
  type ModelUrlSource,
  readModelWeights,
  type WebGpuModelSource,
} from "./model-source.js";
export { createGpuRopeTable, type GpuRopeTable } from "./rope-table.js";
export {
  type AttentionBuffers,
  type AttentionCall,
  type AttentionKernelMode,
  type AttentionTiles,
  chooseAttentionTiles,
  defaultTargetWorkgroups,
  isCpuAdapter,
  type KeySplitPlan,
  LogSumExpMergeKernel,
  largestRotatedPosition,
  minimumTilesPerSplit,
  SelfExtendAttentionKernel,
  type SelfExtendAttentionKernelOptions,
} from "./self-extend-attention-kernel.js";
export { TwoPassSelfExtendAttention } from "./two-pass-attention.js";
export { createWebGpuBackend, type WebGpuBackend, type WebGpuBackendOptions } from "./webgpu-backend.js";
export { webGpuCapabilities } from "./webgpu-capabilities.js";
export { conformanceDeclaration } from "./webgpu-conformance.js";
export { WebGpuModel, type WebGpuModelOptions } from "./webgpu-model.js";
export { defaultBlockSize, WebGpuSession, type WebGpuSessionOptions } from "./webgpu-session.js";
