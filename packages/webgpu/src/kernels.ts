/// <reference types="@webgpu/types" preserve="true" />
/**
 * @self-extend/webgpu/kernels: the building blocks under the backend, for benchmarks and for
 * people writing their own model code on WebGPU: the fused Self-Extend attention kernel, the
 * two-pass baseline, the forward-pass kernels, the RoPE table and buffer helpers. The main entry
 * (`@self-extend/webgpu`) is the backend, its model and session, and device selection.
 */
export {
  ForwardPassKernels,
  GpuForwardPass,
  type GpuModelWeights,
  type GpuRowSlab,
  toFloat16Bits,
  uploadLlamaWeights,
} from "./forward-pass.js";
export { readFloat32, uploadFloat32 } from "./gpu-buffers.js";
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
  type SingleQueryKernel,
} from "./self-extend-attention-kernel.js";
export { TwoPassSelfExtendAttention } from "./two-pass-attention.js";
