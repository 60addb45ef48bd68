/**
 * The cost of Self-Extend at real scale through the llama-cpp adapter on a GPU (issue 14): the
 * WebGPU scale benchmark's model (@self-extend/models' gpuScaleModelSpec: Llama-3.2-1B's layout,
 * random weights, float16 in the file) loaded with every layer offloaded to node-llama-cpp's CUDA
 * (or Vulkan) runtime, run with Self-Extend (exact mode) and with plain attention (the same adapter
 * at G = 1) in one run: @self-extend/evaluation's runSpeedBenchmark, the loop of `self-extend bench`.
 *
 * Written for a GPU machine without this repository's node_modules: bundle it with esbuild
 * (`--external:node-llama-cpp`) and carry Node, the bundle and node-llama-cpp with its
 * dependencies there, with a GPU build of node-llama-cpp's bundled llama.cpp in its
 * `bins/linux-x64-cuda` folder (README, "GPU").
 *
 *   node gpu-scale-benchmark.mjs <folder for the model> [trained context] [multiples] [json out]
 *
 * SELF_EXTEND_LLAMA_GPU = cuda (default), vulkan or false; SELF_EXTEND_SCALE_SMOKE=1 shrinks the
 * model to 1 layer and a 1024-token vocabulary, to try the script on a CPU first.
 */
import { writeFileSync } from "node:fs";
import { planSelfExtend } from "@self-extend/core";
import {
  runSpeedBenchmark,
  type SpeedBenchmarkRow,
  speedBenchmarkHeader,
  speedBenchmarkLine,
} from "@self-extend/evaluation";
import { writeGpuScaleModel } from "@self-extend/models/node";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { createLlamaCppBackend } from "../src/index.js";

const [folder, trainedText = "4096", multiplesText = "1,4", jsonPath] = process.argv.slice(2);
if (folder === undefined) {
  throw new Error("usage: gpu-scale-benchmark <model folder> [trained context] [multiples] [json out]");
}
const trainedContext = Number(trainedText);
const multiples = multiplesText.split(",").map(Number);
const smoke = process.env.SELF_EXTEND_SCALE_SMOKE === "1";
const gpuSetting = process.env.SELF_EXTEND_LLAMA_GPU ?? "cuda";
const gpu = gpuSetting === "false" ? false : (gpuSetting as "cuda" | "vulkan");

const modelPath = writeGpuScaleModel(folder, trainedContext, smoke);

const llama = await getLlama({ gpu, build: "never", logLevel: LlamaLogLevel.error });
const devices = gpu === false ? [] : await llama.getGpuDeviceNames();
console.log(`node-llama-cpp runtime: gpu ${llama.gpu}, devices ${JSON.stringify(devices)}`);
const backend = createLlamaCppBackend(gpu === false ? { llama } : { llama, gpuLayers: "max" });
let start = performance.now();
const model = await backend.loadModel({ path: modelPath });
console.log(`loaded in ${((performance.now() - start) / 1000).toFixed(1)} s: ${JSON.stringify(model.info)}`);
// Self-Extend for the longest context, as core's planner chooses it (the CLI's choice too).
const longest = Math.max(...multiples) * trainedContext;
const selfExtend = planSelfExtend({ trainedContext, targetContext: longest + 16 }).config;
console.log(
  `Self-Extend G = ${selfExtend.groupSize}, W = ${selfExtend.neighborWindow}, exact mode, 16 decoded tokens, one run each`,
);
console.log(speedBenchmarkHeader);
const completedRows: SpeedBenchmarkRow[] = [];
start = performance.now();
await runSpeedBenchmark(model, {
  selfExtend,
  multiples,
  decodeTokens: 16,
  repeats: 1,
  onRow: (row) => {
    console.log(speedBenchmarkLine("llama-cpp", row));
    completedRows.push(row);
    // Written after every row, so a run cut short by the GPU machine's time limit keeps its numbers.
    if (jsonPath !== undefined) {
      writeFileSync(
        jsonPath,
        JSON.stringify(
          { gpu: llama.gpu, devices, info: model.info, selfExtend, rows: completedRows },
          null,
          2,
        ),
      );
    }
  },
});
console.log(`benchmark took ${((performance.now() - start) / 1000).toFixed(1)} s`);
await model.dispose();
