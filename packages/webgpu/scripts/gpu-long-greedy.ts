/**
 * Issue 16's full-shape proof through the WebGPU adapter: Llama-3.2-1B's layout at full depth
 * (16 layers, random weights, float32; @self-extend/models' writeFullDepthRealShapeModel) with
 * trained context L, a prompt of multiple x L tokens with Self-Extend as the planner picks it, then
 * greedy decoding. The other adapters' scripts of the same name write the same model and prompt;
 * compare the JSON files with packages/evaluation/scripts/compare-long-greedy.ts.
 *
 * Carried to the GPU machine as real-gpu-check.ts is (README, "Real GPU").
 *
 *   node gpu-long-greedy.mjs <model folder> <json out> [trained context] [multiple] [decoded tokens]
 *
 * SELF_EXTEND_GREEDY_MODEL=<gguf> runs an existing file instead (to try the script on a CPU
 * implementation with a small model first).
 */
import { runLongGreedyMain } from "@self-extend/evaluation";
import { writeFullDepthRealShapeModel } from "@self-extend/models/node";
import { gpuWebGpuBackend } from "./gpu-backend.js";

await runLongGreedyMain({
  label: "webgpu",
  writeModel: (folder, trainedContext) =>
    writeFullDepthRealShapeModel(folder, "llama-3.2-1b-widths", trainedContext),
  makeBackend: gpuWebGpuBackend,
});
