/**
 * Prefill and decode speed of the Self-Extend export against the plain export on stories260K
 * (trained context L = 512) at 1x, 2x and 4x L, in one run so the ratios share the machine's state.
 *
 *   pnpm bench            (from packages/onnxruntime)
 *
 * Prefill: a prompt of N - 64 tokens in chunks of 128. Decode: the next 64 tokens one at a time, so
 * the last decode attends to N keys. Plain attention past L is garbage text but the same work, which
 * is what a speed baseline needs. Each number is the best of BENCH_REPEATS (default 3) interleaved runs. One intra-op thread keeps numbers comparable on shared machines.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sharedModelPaths } from "@self-extend/test-fixtures";
import { createOnnxRuntimeBackend } from "../src/index.js";

const decodeTokens = 64;
const repeats = Number(process.env.BENCH_REPEATS ?? 3);
const trainedContext = 512;
const selfExtend = { groupSize: 8, neighborWindow: 256 };
const threads = Number(process.env.BENCH_THREADS ?? 1);

const cacheFolder = mkdtempSync(join(tmpdir(), "onnxruntime-bench-"));
try {
  const model = await createOnnxRuntimeBackend({ cacheFolder, threads }).loadModel({
    path: sharedModelPaths.stories260K,
  });
  const vocabularySize = model.info.vocabularySize;
  const measure = async (config: typeof selfExtend, contextSize: number) => {
    const session = await model.createSession({ selfExtend: config, contextSize, prefillChunkSize: 128 });
    const prompt = Array.from(
      { length: contextSize - decodeTokens },
      (_, index) => 1 + ((index * 37) % (vocabularySize - 1)),
    );
    await session.evaluate(prompt.slice(0, 64)); // warm-up: first runs allocate ORT's arenas
    await session.reset();
    let start = performance.now();
    await session.evaluate(prompt);
    const prefill = (prompt.length / (performance.now() - start)) * 1000;
    start = performance.now();
    for (let step = 0; step < decodeTokens; step++) await session.decode(1 + (step % (vocabularySize - 1)));
    const decode = (decodeTokens / (performance.now() - start)) * 1000;
    await session.dispose();
    return { prefill, decode };
  };
  console.log(
    `stories260K, L = ${trainedContext}, Self-Extend G${selfExtend.groupSize}/W${selfExtend.neighborWindow}, threads = ${threads}, best of ${repeats}`,
  );
  console.log(
    "context | plain prefill tok/s | SE prefill tok/s | SE/plain | plain decode tok/s | SE decode tok/s | SE/plain",
  );
  for (const multiple of [1, 2, 4]) {
    const contextSize = multiple * trainedContext;
    // Interleaved repeats, best of each: other processes on a shared machine only ever slow a run.
    const best = (a: { prefill: number; decode: number }, b: { prefill: number; decode: number }) => ({
      prefill: Math.max(a.prefill, b.prefill),
      decode: Math.max(a.decode, b.decode),
    });
    let plain = { prefill: 0, decode: 0 };
    let extended = { prefill: 0, decode: 0 };
    for (let repeat = 0; repeat < repeats; repeat++) {
      plain = best(plain, await measure({ groupSize: 1, neighborWindow: 1 }, contextSize));
      extended = best(extended, await measure(selfExtend, contextSize));
    }
    console.log(
      [
        `${multiple}x (${contextSize})`,
        plain.prefill.toFixed(0),
        extended.prefill.toFixed(0),
        (extended.prefill / plain.prefill).toFixed(2),
        plain.decode.toFixed(0),
        extended.decode.toFixed(0),
        (extended.decode / plain.decode).toFixed(2),
      ].join(" | "),
    );
  }
  await model.dispose();
} finally {
  rmSync(cacheFolder, { recursive: true, force: true });
}
