/**
 * A user's ONNX export, rewritten with Self-Extend, against the same export run unmodified in
 * onnxruntime-node (its own inputs and KV cache; plain attention, which it runs past its trained
 * context as exported): prefill and decode time ratios in one run (issue 18).
 *
 *   pnpm tsx --conditions=source bench/imported-benchmark.ts [export folder] [multiple of L] [decoded tokens]
 *
 * Default: the Optimum Llama test export at 4x its trained context. Exports whose RoPE is a cos/sin
 * cache of L rows (onnxruntime-genai) cannot run unmodified past L, so only the rewritten graphs run.
 */
import { join } from "node:path";
import { planSelfExtend } from "@self-extend/core";
import * as ort from "onnxruntime-node";
import { loadImportedOnnxModel } from "../src/index.js";
import { runUnmodifiedExport } from "../test/imported/unmodified-export.js";

const [folderArgument, multipleText = "4", decodeText = "32"] = process.argv.slice(2);
const folder = folderArgument ?? join(import.meta.dirname, "../test/fixtures/imported/optimum/llama");
const repeats = 3;
const model = await loadImportedOnnxModel(folder, { threads: 1 });
const { trainedContext } = model.info;
const decodeTokens = Number(decodeText);
const promptLength = Number(multipleText) * trainedContext - decodeTokens;
const contextSize = promptLength + decodeTokens;
const prompt = Array.from(
  { length: promptLength },
  (_, index) => 3 + ((index * 7919) % (model.info.vocabularySize - 3)),
);
const plan = planSelfExtend({ trainedContext, targetContext: contextSize });

async function ours(selfExtend: { groupSize: number; neighborWindow: number }) {
  const session = await model.createSession({ selfExtend, contextSize, prefillChunkSize: promptLength });
  let start = performance.now();
  let logits = (await session.evaluate(prompt, { logits: "last" })).logits;
  const prefill = performance.now() - start;
  start = performance.now();
  for (let index = 0; index < decodeTokens - 1; index++) {
    let best = 0;
    for (let token = 1; token < logits.length; token++) if (logits[token] > logits[best]) best = token;
    logits = await session.decode(best);
  }
  const decode = performance.now() - start;
  await session.dispose();
  return { prefill, decode };
}

const fastest = {
  unmodified: { prefill: Infinity, decode: Infinity },
  plain: { prefill: Infinity, decode: Infinity },
  selfExtend: { prefill: Infinity, decode: Infinity },
};
let warm = false;
const keep = (key: keyof typeof fastest, run: { prefill: number; decode: number }) => {
  if (!warm) return;
  fastest[key] = {
    prefill: Math.min(fastest[key].prefill, run.prefill),
    decode: Math.min(fastest[key].decode, run.decode),
  };
};
// The same session options as the model's own sessions: one thread, every graph optimisation.
const unmodified = await ort.InferenceSession.create(model.modelPath, {
  graphOptimizationLevel: "all",
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
});
let unmodifiedRuns = true;
// Repeat 0 warms every session up (ONNX Runtime's first run allocates); the fastest of the rest counts.
for (let repeat = 0; repeat <= repeats; repeat++) {
  if (unmodifiedRuns) {
    try {
      const run = await runUnmodifiedExport(unmodified, model.info, prompt, decodeTokens);
      keep("unmodified", { prefill: run.prefillMilliseconds, decode: run.decodeMilliseconds });
    } catch (error) {
      unmodifiedRuns = false;
      console.log(
        `the unmodified export does not run at ${contextSize} tokens: ${(error as Error).message.split("\n")[0]}`,
      );
    }
  }
  keep("plain", await ours({ groupSize: 1, neighborWindow: trainedContext }));
  keep("selfExtend", await ours(plan.config));
  warm = true;
}

console.log(
  `${model.info.name}: L = ${trainedContext}, ${promptLength} prompt tokens + ${decodeTokens - 1} decoded (${Number(multipleText)}x L), Self-Extend G${plan.config.groupSize}/W${plan.config.neighborWindow}, 1 thread, fastest of ${repeats}`,
);
console.log("graph | prefill tok/s | decode tok/s | prefill time / unmodified | decode time / unmodified");
for (const [name, key] of [
  ["unmodified export", "unmodified"],
  ["rewritten, G = 1", "plain"],
  ["rewritten, Self-Extend", "selfExtend"],
] as const) {
  const run = fastest[key];
  if (!Number.isFinite(run.prefill)) continue;
  const ratio = (value: number, base: number) => (Number.isFinite(base) ? (value / base).toFixed(2) : "-");
  console.log(
    `${name} | ${(promptLength / (run.prefill / 1000)).toFixed(0)} | ${((decodeTokens - 1) / (run.decode / 1000)).toFixed(1)} | ${ratio(run.prefill, fastest.unmodified.prefill)} | ${ratio(run.decode, fastest.unmodified.decode)}`,
  );
}
await unmodified.release();
await model.dispose();
