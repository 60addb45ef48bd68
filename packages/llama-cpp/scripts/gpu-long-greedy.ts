/**
 * Issue 16's full-shape proof through the llama-cpp adapter: Llama-3.2-1B's layout at full depth
 * (16 layers, random weights, float32; @self-extend/models' writeFullDepthRealShapeModel) with
 * trained context L, a prompt of multiple x L tokens with Self-Extend as the planner picks it, then
 * greedy decoding, every layer offloaded to node-llama-cpp's CUDA (or Vulkan) runtime. The other
 * adapters' scripts of the same name write the same model and prompt; compare the JSON files with
 * packages/evaluation/scripts/compare-long-greedy.ts.
 *
 * Carried to the GPU machine as gpu-scale-benchmark.ts is (README, "GPU (CUDA)").
 *
 *   node gpu-long-greedy.mjs <model folder> <json out> [trained context] [multiple] [decoded tokens]
 *
 * SELF_EXTEND_LLAMA_GPU = cuda (default), vulkan or false; SELF_EXTEND_GREEDY_MODEL=<gguf> runs an
 * existing file instead (to try the script on a CPU with a small model first).
 */
import { runLongGreedyMain } from "@self-extend/evaluation";
import { writeFullDepthRealShapeModel } from "@self-extend/models/node";
import { gpuLlamaCppBackend } from "./gpu-backend.js";

await runLongGreedyMain({
  label: "llama-cpp",
  writeModel: (folder, trainedContext) =>
    writeFullDepthRealShapeModel(folder, "llama-3.2-1b-widths", trainedContext),
  makeBackend: gpuLlamaCppBackend,
});
