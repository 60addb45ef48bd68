/**
 * Prefill and decode speed of the Self-Extend export against the plain export of the same model at
 * 1x, 2x, 4x and 8x the trained context, in one run so the ratios share the machine's state
 * (@self-extend/evaluation's runSpeedBenchmark, the loop `self-extend bench` runs on every adapter).
 *
 *   pnpm bench            (from packages/onnxruntime; BENCH_THREADS, BENCH_REPEATS)
 *
 * Model: stories260K (L = 512), Self-Extend G = 16, W = 256 (usable up to 4352 tokens). One intra-op
 * thread by default keeps numbers comparable on shared machines.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runSpeedBenchmark, speedBenchmarkHeader, speedBenchmarkLine } from "@self-extend/evaluation";
import { sharedModelPaths } from "@self-extend/test-fixtures";
import { createOnnxRuntimeBackend } from "../src/index.js";

const repeats = Number(process.env.BENCH_REPEATS ?? 10);
const threads = Number(process.env.BENCH_THREADS ?? 1);
const selfExtend = { groupSize: 16, neighborWindow: 256 };

const cacheFolder = mkdtempSync(join(tmpdir(), "onnxruntime-bench-"));
try {
  const model = await createOnnxRuntimeBackend({ cacheFolder, threads }).loadModel({
    path: sharedModelPaths.stories260K,
  });
  console.log(
    `stories260K, L = ${model.info.trainedContext}, Self-Extend G${selfExtend.groupSize}/W${selfExtend.neighborWindow}, threads = ${threads}, 32 decoded tokens, ${repeats} runs side by side`,
  );
  console.log(speedBenchmarkHeader);
  await runSpeedBenchmark(model, {
    selfExtend,
    multiples: [1, 2, 4, 8],
    repeats,
    onRow: (row) => console.log(speedBenchmarkLine("onnxruntime", row)),
  });
  await model.dispose();
} finally {
  rmSync(cacheFolder, { recursive: true, force: true });
}
