/**
 * The cost of Self-Extend at real scale on a real GPU (issue 14): a model with Llama-3.2-1B's
 * layout (16 layers, 32 query heads and 8 key/value heads of 64, feed-forward 8192, a vocabulary
 * of 128256, tied embeddings, RoPE base 500000; random weights, float16 in the file, a synthetic
 * SentencePiece vocabulary of that size) run through the WebGPU adapter with Self-Extend and with
 * plain attention, in one run (@self-extend/evaluation's runSpeedBenchmark, the loop of
 * `self-extend bench`).
 *
 * Written for a GPU machine without this repository's node_modules: bundle it with esbuild
 * (`webgpu` left external) and carry Node, the bundle and dawn.node there, as for
 * real-gpu-check.ts (README, "Real GPU").
 *
 *   SELF_EXTEND_WEBGPU_BACKEND=vulkan node gpu-scale-benchmark.mjs <folder for the model> [trained context] [multiples] [json out]
 *
 * SELF_EXTEND_SCALE_SMOKE=1 shrinks the model to 1 layer and a 1024-token vocabulary, to check the
 * script on a CPU implementation before spending GPU time.
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
import { createWebGpuBackend, requestWebGpuDevice } from "../src/index.js";

const [folder, trainedText = "4096", multiplesText = "1,4", jsonPath] = process.argv.slice(2);
if (folder === undefined) {
  throw new Error("usage: gpu-scale-benchmark <model folder> [trained context] [multiples] [json out]");
}
const trainedContext = Number(trainedText);
const multiples = multiplesText.split(",").map(Number);

const smoke = process.env.SELF_EXTEND_SCALE_SMOKE === "1";
const modelPath = writeGpuScaleModel(folder, trainedContext, smoke);

const context = await requestWebGpuDevice();
console.log(`adapter: ${context.adapterDescription}; shader-f16: ${context.float16}`);
const backend = createWebGpuBackend();
let start = performance.now();
const model = await backend.loadModel({ path: modelPath });
console.log(`loaded in ${((performance.now() - start) / 1000).toFixed(1)} s: ${JSON.stringify(model.info)}`);
// Self-Extend for the longest context, as core's planner chooses it (the CLI's choice too).
const longest = Math.max(...multiples) * trainedContext;
const plan = planSelfExtend({ trainedContext, targetContext: longest + 16 });
const selfExtend = plan.config;
const { groupSize, neighborWindow } = selfExtend;
console.log(`Self-Extend G = ${groupSize}, W = ${neighborWindow}, 16 decoded tokens, one run each`);
console.log(speedBenchmarkHeader);
const completedRows: SpeedBenchmarkRow[] = [];
const writeRows = (): void => {
  if (jsonPath === undefined) return;
  writeFileSync(
    jsonPath,
    JSON.stringify(
      { adapter: context.adapterDescription, info: model.info, selfExtend, rows: completedRows },
      null,
      2,
    ),
  );
};
start = performance.now();
await runSpeedBenchmark(model, {
  selfExtend,
  multiples,
  decodeTokens: 16,
  repeats: 1,
  onRow: (row) => {
    console.log(speedBenchmarkLine("webgpu", row));
    completedRows.push(row);
    // Written after every row, so a run cut short by the GPU machine's time limit keeps its numbers.
    writeRows();
  },
});
console.log(`benchmark took ${((performance.now() - start) / 1000).toFixed(1)} s`);
await model.dispose();
