/**
 * Issue 14's cost at real scale through the ONNX Runtime adapter: the model of the WebGPU and
 * llama.cpp adapters' GPU scale benchmarks (@self-extend/models' writeGpuScaleModel: Llama-3.2-1B's
 * layout, random weights, float16 in the file) with trained context L, run with Self-Extend and
 * with plain attention in one run (@self-extend/evaluation's runScaleBenchmark, shared with those
 * scripts), on onnxruntime-node's CPU provider with a thread per core (the npm package's CUDA
 * provider is a download its install step makes, which the GPU machine cannot).
 *
 * Bundle it with esbuild (`--external:onnxruntime-node`) and carry Node, the bundle and
 * onnxruntime-node (with onnxruntime-common) to a machine with many cores, as for
 * gpu-long-greedy.ts.
 *
 *   node scale-benchmark.mjs <folder for the model> [trained context] [multiples] [json out] [--decode N] [--repeats N]
 *
 * SELF_EXTEND_SCALE_SMOKE=1 shrinks the model to 1 layer and a 1024-token vocabulary, to check the
 * script before spending the machine's time; the export cache is SELF_EXTEND_ONNX_CACHE as for the
 * adapter.
 */
import { availableParallelism } from "node:os";
import { parseScaleBenchmarkArguments, runScaleBenchmark, runScriptMain } from "@self-extend/evaluation";
import { writeGpuScaleModel } from "@self-extend/models/node";
import { createOnnxRuntimeBackend } from "../src/index.js";

await runScriptMain("scale-benchmark", async () => {
  const { folder, trainedContext, ...run } = parseScaleBenchmarkArguments(process.argv.slice(2));
  const modelPath = writeGpuScaleModel(folder, trainedContext, process.env.SELF_EXTEND_SCALE_SMOKE === "1");
  const threads = availableParallelism();
  const backend = createOnnxRuntimeBackend({ threads });
  const device = { executionProvider: "cpu", threads };
  await runScaleBenchmark({ label: "onnxruntime", backend, modelPath, device, ...run });
});
