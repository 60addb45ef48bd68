/**
 * The llama-cpp backend the GPU scripts run (gpu-scale-benchmark.ts, gpu-long-greedy.ts):
 * node-llama-cpp's runtime for SELF_EXTEND_LLAMA_GPU = cuda (default), vulkan or false (CPU), from
 * a local build only (`build: "never"`: the GPU machine has no network), every layer offloaded
 * unless on the CPU; and what ran it, for the results file.
 */
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { createLlamaCppBackend, type LlamaCppBackend } from "../src/index.js";

export async function gpuLlamaCppBackend(): Promise<{
  backend: LlamaCppBackend;
  device: { gpu: string | false; devices: string[] };
}> {
  const setting = process.env.SELF_EXTEND_LLAMA_GPU ?? "cuda";
  if (setting !== "cuda" && setting !== "vulkan" && setting !== "false") {
    throw new RangeError(`SELF_EXTEND_LLAMA_GPU "${setting}" is invalid: must be cuda, vulkan or false`);
  }
  const gpu = setting === "false" ? false : setting;
  const llama = await getLlama({ gpu, build: "never", logLevel: LlamaLogLevel.error });
  return {
    backend: createLlamaCppBackend(gpu === false ? { llama } : { llama, gpuLayers: "max" }),
    device: { gpu: llama.gpu, devices: gpu === false ? [] : await llama.getGpuDeviceNames() },
  };
}
