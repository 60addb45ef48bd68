/**
 * The llama-cpp backend the GPU scripts run (gpu-scale-benchmark.ts, gpu-long-greedy.ts):
 * node-llama-cpp's runtime for SELF_EXTEND_LLAMA_GPU = cuda (default), vulkan or false (CPU), from
 * a local build only (`build: "never"`: the GPU machine has no network), every layer offloaded
 * unless on the CPU; and what ran it, for the results file.
 */
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { attentionModes, createLlamaCppBackend, type LlamaCppBackend } from "../src/index.js";

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

/** Options of the Self-Extend session that the scale benchmark's `--mode` and `--prefill-chunk-size` set. */
// A type, not an interface: it must fit runScaleBenchmark's Record<string, unknown>.
export type ScaleSessionOptions = {
  readonly mode?: (typeof attentionModes)[number];
  readonly prefillChunkSize?: number;
};

/**
 * Takes this adapter's own flags out of a scale benchmark's arguments (`--mode exact|fast-prefill|
 * llama.cpp-compatible`, `--prefill-chunk-size N`), checked before anything is loaded; the rest go
 * to the shared parser.
 */
export function takeScaleSessionOptions(argumentsList: readonly string[]): {
  rest: string[];
  sessionOptions: ScaleSessionOptions;
} {
  const rest: string[] = [];
  let mode: ScaleSessionOptions["mode"];
  let prefillChunkSize: number | undefined;
  for (let index = 0; index < argumentsList.length; index++) {
    const argument = argumentsList[index];
    if (argument !== "--mode" && argument !== "--prefill-chunk-size") {
      rest.push(argument);
      continue;
    }
    const text = argumentsList[++index] ?? "";
    if (argument === "--mode") {
      const found = attentionModes.find((candidate) => candidate === text);
      if (found === undefined) {
        throw new RangeError(`--mode "${text}" is invalid: must be one of ${attentionModes.join(", ")}`);
      }
      mode = found;
    } else {
      const value = Number(text);
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new RangeError(`--prefill-chunk-size "${text}" is invalid: must be an integer >= 1`);
      }
      prefillChunkSize = value;
    }
  }
  if (prefillChunkSize !== undefined && mode !== "fast-prefill") {
    throw new RangeError(
      `--prefill-chunk-size ${prefillChunkSize} is invalid without --mode fast-prefill: only fast-prefill chunks the prompt`,
    );
  }
  return {
    rest,
    sessionOptions: {
      ...(mode === undefined ? {} : { mode }),
      ...(prefillChunkSize === undefined ? {} : { prefillChunkSize }),
    },
  };
}
