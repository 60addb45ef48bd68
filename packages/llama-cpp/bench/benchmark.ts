/**
 * Prefill and decode speed of every mode at 1x, 2x and 4x the trained context, against plain
 * node-llama-cpp (its public API, same context settings) in the same run.
 *
 *     pnpm bench [-- --model path.gguf] [--threads 1] [--decode 64]
 *
 * Default model: stories260K (L = 512) imported from the shared folder into a temporary GGUF.
 * Self-Extend uses G = 8, W = 256 at every size (usable up to 2304 tokens). Every case runs
 * `--repeat` times (default 3) and the fastest run is kept: on a shared machine the slow runs
 * measure the neighbours.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { AttentionMode } from "@self-extend/core";
import { argmax } from "@self-extend/core";
import { importLlama2c } from "@self-extend/models/node";
import { sharedModelPaths } from "@self-extend/test-fixtures";
import type { Token } from "node-llama-cpp";
import { attentionModes, createSelfExtendContext, getCpuLlama } from "../src/index.js";

const { values } = parseArgs({
  options: {
    model: { type: "string" },
    threads: { type: "string", default: "1" },
    decode: { type: "string", default: "64" },
    group: { type: "string", default: "8" },
    window: { type: "string", default: "256" },
    repeat: { type: "string", default: "3" },
  },
});
const threads = Number(values.threads);
const decodeCount = Number(values.decode);
const repeats = Number(values.repeat);
const selfExtend = { groupSize: Number(values.group), neighborWindow: Number(values.window) };

const folder = mkdtempSync(join(tmpdir(), "self-extend-bench-"));
try {
  let modelPath = values.model;
  if (modelPath === undefined) {
    modelPath = join(folder, "stories260K.gguf");
    importLlama2c({
      checkpointPath: sharedModelPaths.stories260K,
      tokenizerPath: sharedModelPaths.tokenizer,
      outPath: modelPath,
    });
  }
  const llama = await getCpuLlama();
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  const trained = model.trainContextSize;
  const vocabulary = model.tokens.bos ?? 1;
  console.log(
    `model ${modelPath.split("/").at(-1)} (L = ${trained}), G = ${selfExtend.groupSize}, W = ${selfExtend.neighborWindow}, threads ${threads}, ${decodeCount} decoded tokens, best of ${repeats}, KV F32/F32, flash attention off`,
  );
  console.log("| context | mode | prefill tok/s | decode tok/s | prefill vs plain | decode vs plain |");
  console.log("|---|---|---|---|---|---|");
  for (const multiple of [1, 2, 4]) {
    const contextSize = multiple * trained;
    const promptLength = contextSize - decodeCount;
    let state = 11;
    const prompt = [
      Number(vocabulary),
      ...Array.from({ length: promptLength - 1 }, () => {
        state = (state * 1103515245 + 12345) % 2147483648;
        return 3 + (state % 400);
      }),
    ];

    // Plain node-llama-cpp through its public API, same settings.
    let start = 0;
    let plainPrefill = 0;
    let plainDecode = 0;
    for (let run = 0; run < repeats; run++) {
      const plainContext = await model.createContext({
        contextSize,
        sequences: 1,
        batchSize: Math.min(contextSize, 512),
        threads,
        flashAttention: false,
        experimentalKvCacheKeyType: "F32",
        experimentalKvCacheValueType: "F32",
      });
      const sequence = plainContext.getSequence();
      start = performance.now();
      await sequence.evaluateWithoutGeneratingNewTokens(prompt as Token[]);
      plainPrefill = Math.max(plainPrefill, promptLength / ((performance.now() - start) / 1000));
      start = performance.now();
      let produced = 0;
      for await (const _token of sequence.evaluate([prompt.at(-1) as Token], { temperature: 0 })) {
        if (++produced === decodeCount) break;
      }
      plainDecode = Math.max(plainDecode, decodeCount / ((performance.now() - start) / 1000));
      await plainContext.dispose();
    }
    console.log(
      `| ${multiple}x (${contextSize}) | plain node-llama-cpp | ${plainPrefill.toFixed(0)} | ${plainDecode.toFixed(0)} | 1 | 1 |`,
    );

    for (const mode of attentionModes as AttentionMode[]) {
      let prefill = 0;
      let decode = 0;
      for (let run = 0; run < repeats; run++) {
        const context = await createSelfExtendContext({ model, ...selfExtend, contextSize, mode, threads });
        try {
          start = performance.now();
          const evaluation = await context.evaluate(prompt, { logits: "last" });
          prefill = Math.max(prefill, promptLength / ((performance.now() - start) / 1000));
          let row = evaluation.logits;
          start = performance.now();
          for (let step = 0; step < decodeCount; step++) row = await context.decode(argmax(row));
          decode = Math.max(decode, decodeCount / ((performance.now() - start) / 1000));
        } finally {
          await context.dispose();
        }
      }
      console.log(
        `| ${multiple}x (${contextSize}) | ${mode} | ${prefill.toFixed(0)} | ${decode.toFixed(0)} | ${(prefill / plainPrefill).toFixed(3)} | ${(decode / plainDecode).toFixed(3)} |`,
      );
    }
  }
  await model.dispose();
} finally {
  rmSync(folder, { recursive: true, force: true });
}
