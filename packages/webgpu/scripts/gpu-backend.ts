/**
 * The WebGPU backend the GPU scripts run (gpu-scale-benchmark.ts, gpu-long-greedy.ts) on the
 * device `requestWebGpuDevice` finds (SELF_EXTEND_WEBGPU_BACKEND picks Dawn's backend), and what
 * ran it, for the results file.
 */
import {
  createWebGpuBackend,
  defaultMatmulKernel,
  requestWebGpuDevice,
  type WebGpuBackend,
} from "../src/index.js";

export async function gpuWebGpuBackend(): Promise<{
  backend: WebGpuBackend;
  device: { adapter: string; float16: boolean; matmulKernel: string };
}> {
  const context = await requestWebGpuDevice();
  return {
    backend: createWebGpuBackend({ context }),
    device: {
      adapter: context.adapterDescription,
      float16: context.float16,
      matmulKernel: defaultMatmulKernel(context),
    },
  };
}
