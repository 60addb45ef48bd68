/**
 * The cost of Self-Extend at real scale on a real GPU (issue 14): a model with Llama-3.2-1B's
 * layout (16 layers, 32 query heads and 8 key/value heads of 64, feed-forward 8192, a vocabulary
 * of 128256, tied embeddings, RoPE base 500000; random weights, float16 in the file, a synthetic
 * SentencePiece vocabulary of that size) run through the WebGPU adapter with Self-Extend and with
 * plain attention, in one run (@self-extend/evaluation's runScaleBenchmark, shared with the
 * llama-cpp adapter's script).
 *
 * Written for a GPU machine without this repository's node_modules: bundle it with esbuild
 * (`webgpu` left external) and carry Node, the bundle and dawn.node there, as for
 * real-gpu-check.ts (README, "Real GPU").
 *
 *   SELF_EXTEND_WEBGPU_BACKEND=vulkan node gpu-scale-benchmark.mjs <folder for the model> [trained context] [multiples] [json out] [--decode N] [--repeats N]
 *
 * SELF_EXTEND_WEBGPU_GROUP_KEYS=derived|cached picks how Self-Extend gets group-level keys (the
 * device's default otherwise: derived on GPUs; WebGpuModelOptions.groupKeys).
 *
 * SELF_EXTEND_SCALE_SMOKE=1 shrinks the model to 1 layer and a 1024-token vocabulary, to check the
 * script on a CPU implementation before spending GPU time.
 */
import { parseScaleBenchmarkArguments, runScaleBenchmark, runScriptMain } from "@self-extend/evaluation";
import { writeGpuScaleModel } from "@self-extend/models/node";
import { gpuWebGpuBackend } from "./gpu-backend.js";

await runScriptMain("gpu-scale-benchmark", async () => {
  const { folder, trainedContext, ...run } = parseScaleBenchmarkArguments(process.argv.slice(2));
  // The device (and SELF_EXTEND_WEBGPU_GROUP_KEYS) before the model: writing it takes minutes.
  const { backend, device } = await gpuWebGpuBackend();
  const modelPath = writeGpuScaleModel(folder, trainedContext, process.env.SELF_EXTEND_SCALE_SMOKE === "1");

  await runScaleBenchmark({ label: "webgpu", backend, modelPath, device, ...run });
});
