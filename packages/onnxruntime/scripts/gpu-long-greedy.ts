/**
 * Issue 16's full-shape proof through the ONNX Runtime adapter (onnxruntime-node on the CPU; the
 * npm package's CUDA provider is a download its install step makes, which the GPU machine cannot):
 * Llama-3.2-1B's layout at full depth (16 layers, random weights, float32;
 * @self-extend/models' writeFullDepthRealShapeModel) with trained context L, a prompt of
 * multiple x L tokens with Self-Extend as the planner picks it, then greedy decoding. The other
 * adapters' scripts of the same name write the same model and prompt; compare the JSON files with
 * packages/evaluation/scripts/compare-long-greedy.ts.
 *
 * Bundle it with esbuild (`--external:onnxruntime-node`) and carry Node, the bundle and
 * onnxruntime-node (with onnxruntime-common) to the GPU machine.
 *
 *   node gpu-long-greedy.mjs <model folder> <json out> [trained context] [multiple] [decoded tokens]
 *
 * SELF_EXTEND_GREEDY_MODEL=<gguf> runs an existing file instead (to try the script with a small
 * model first); the export cache is SELF_EXTEND_ONNX_CACHE as for the adapter.
 */
import { availableParallelism } from "node:os";
import { runLongGreedyMain } from "@self-extend/evaluation";
import { writeFullDepthRealShapeModel } from "@self-extend/models/node";
import { createOnnxRuntimeBackend } from "../src/index.js";

await runLongGreedyMain({
  label: "onnxruntime",
  writeModel: (folder, trainedContext) =>
    writeFullDepthRealShapeModel(folder, "llama-3.2-1b-widths", trainedContext),
  makeBackend: async () => {
    const threads = availableParallelism();
    return { backend: createOnnxRuntimeBackend({ threads }), device: { executionProvider: "cpu", threads } };
  },
});
