/// <reference types="@webgpu/types" preserve="true" />
/**
 * @self-extend/webgpu: the WebGPU backend (spec v1), its model and session, device selection and
 * its conformance declaration. Kernels and the forward pass are in `@self-extend/webgpu/kernels`.
 */

export {
  type ChatMessage,
  type ChatPromptOptions,
  type ChatResponse,
  type ChatStopReason,
  createSelfExtendChatSession,
  SelfExtendChatSession,
  type SelfExtendChatSessionOptions,
} from "./chat-session.js";
export {
  type KernelLimits,
  type NodeWebGpuBackend,
  type RequestWebGpuDeviceOptions,
  requestWebGpuDevice,
  type WebGpuContext,
  WebGpuDeviceError,
  WebGpuUnavailableError,
} from "./device.js";
export type { MatmulKernel, WeightPrecision } from "./forward-pass.wgsl.js";
export {
  llamaWeightsFromGgufBytes,
  type ModelBytesSource,
  type ModelUrlSource,
  readModelWeights,
  type WebGpuModelSource,
} from "./model-source.js";
export { createWebGpuBackend, type WebGpuBackend, type WebGpuBackendOptions } from "./webgpu-backend.js";
export { webGpuCapabilities } from "./webgpu-capabilities.js";
export { conformanceDeclaration } from "./webgpu-conformance.js";
export {
  defaultGroupKeySource,
  defaultMatmulKernel,
  type GroupKeySource,
  WebGpuModel,
  type WebGpuModelOptions,
} from "./webgpu-model.js";
export { defaultBlockSize, WebGpuSession, type WebGpuSessionOptions } from "./webgpu-session.js";
