/**
 * The WebGPU backend the GPU scripts run (gpu-scale-benchmark.ts, gpu-long-greedy.ts) on the
 * device `requestWebGpuDevice` finds (SELF_EXTEND_WEBGPU_BACKEND picks Dawn's backend), and what
 * ran it, for the results file. SELF_EXTEND_WEBGPU_GROUP_KEYS=derived|cached overrides the
 * device's default way of getting group-level keys (WebGpuModelOptions.groupKeys).
 */
import {
  createWebGpuBackend,
  defaultGroupKeySource,
  defaultMatmulKernel,
  type GroupKeySource,
  requestWebGpuDevice,
  type WebGpuBackend,
} from "../src/index.js";

export async function gpuWebGpuBackend(): Promise<{
  backend: WebGpuBackend;
  device: { adapter: string; float16: boolean; matmulKernel: string; groupKeys: GroupKeySource };
}> {
  const asked = process.env.SELF_EXTEND_WEBGPU_GROUP_KEYS;
  if (asked !== undefined && asked !== "derived" && asked !== "cached") {
    throw new RangeError(`SELF_EXTEND_WEBGPU_GROUP_KEYS "${asked}" is invalid: must be derived or cached`);
  }
  const context = await requestWebGpuDevice();
  const groupKeys = asked ?? defaultGroupKeySource(context);
  return {
    backend: createWebGpuBackend({ context, groupKeys }),
    device: {
      adapter: context.adapterDescription,
      float16: context.float16,
      matmulKernel: defaultMatmulKernel(context),
      groupKeys,
    },
  };
}
