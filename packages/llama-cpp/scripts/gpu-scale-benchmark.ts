/**
 * The cost of Self-Extend at real scale through the llama-cpp adapter on a GPU (issue 14): the
 * scale benchmark's model (@self-extend/models' gpuScaleModelSpec: Llama-3.2-1B's layout, random
 * weights, float16 in the file) loaded with every layer offloaded to node-llama-cpp's CUDA (or
 * Vulkan) runtime, Self-Extend (exact mode) against the same adapter at G = 1 in one run
 * (@self-extend/evaluation's runScaleBenchmark, shared with the WebGPU adapter's script).
 *
 * Written for a GPU machine without this repository's node_modules: bundle it with esbuild
 * (`--external:node-llama-cpp`) and carry Node, the bundle and node-llama-cpp with its
 * dependencies there, with a GPU build of node-llama-cpp's bundled llama.cpp in its
 * `bins/linux-x64-cuda` folder (README, "GPU").
 *
 *   node gpu-scale-benchmark.mjs <folder for the model> [trained context] [multiples] [json out] [--decode N] [--repeats N]
 *     [--mode exact|fast-prefill|llama.cpp-compatible] [--prefill-chunk-size N]
 *
 * `--mode` and `--prefill-chunk-size` apply to the Self-Extend session only (default: exact mode);
 * the plain session is the same adapter at G = 1 in its default mode.
 *
 * SELF_EXTEND_LLAMA_GPU = cuda (default), vulkan or false; SELF_EXTEND_SCALE_SMOKE=1 shrinks the
 * model to 1 layer and a 1024-token vocabulary, to try the script on a CPU first.
 */
import { parseScaleBenchmarkArguments, runScaleBenchmark, runScriptMain } from "@self-extend/evaluation";
import { writeGpuScaleModel } from "@self-extend/models/node";
import { gpuLlamaCppBackend, takeScaleSessionOptions } from "./gpu-backend.js";

await runScriptMain("gpu-scale-benchmark", async () => {
  const { rest, sessionOptions } = takeScaleSessionOptions(process.argv.slice(2));
  const { folder, trainedContext, ...run } = parseScaleBenchmarkArguments(rest);
  const modelPath = writeGpuScaleModel(folder, trainedContext, process.env.SELF_EXTEND_SCALE_SMOKE === "1");

  const { backend, device } = await gpuLlamaCppBackend();
  await runScaleBenchmark({
    label: "llama-cpp",
    backend,
    modelPath,
    device,
    selfExtendSessionOptions: sessionOptions,
    ...run,
  });
});
