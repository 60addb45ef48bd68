/**
 * Issue 14's yardstick for whole-model decoding: the same GPU running a 1B-shape model with plain
 * attention in onnxruntime-web (the runtime under transformers.js), measured the way
 * gpu-scale-benchmark.ts measures this adapter. Per context N: a prompt of N - D tokens (the same
 * deterministic tokens @self-extend/evaluation's speed benchmark uses), evaluated in blocks, then D
 * tokens decoded one at a time, each returning its logits to the CPU.
 *
 *   SELF_EXTEND_WEBGPU_BACKEND=vulkan node onnxruntime-web-benchmark.mjs <export folder> <contexts> [json out] [--decode D] [--block B] [--repeats R]
 *
 * <export folder>: an onnxruntime-genai builder or Optimum export (tools/onnx-exports). <contexts>:
 * token counts separated by commas, e.g. 4096,16384,32768. Blocks of B prompt tokens (default 512)
 * keep onnxruntime-web's attention buffers (heads x B x N scores) inside WebGPU's buffer limits. R
 * runs per context, the fastest kept (default 1).
 *
 * Written for a GPU machine without this repository's node_modules: bundle it with esbuild
 * (`webgpu` left external) and carry onnxruntime-web's
 * dist/ort-wasm-simd-threaded.asyncify.{mjs,wasm} beside the bundle, as the README's "Real GPU" section says.
 */
import { writeFileSync } from "node:fs";
import { deterministicPromptTokens, runScriptMain } from "@self-extend/evaluation";
import { OnnxRuntimeWebDecoder } from "./onnxruntime-web.js";

const usage =
  "onnxruntime-web-benchmark <export folder> <contexts, e.g. 4096,16384> [json out] [--decode D] [--block B] [--repeats R]";

interface Row {
  readonly context: number;
  readonly promptTokens: number;
  readonly prefillTokensPerSecond: number;
  readonly decodeTokensPerSecond: number;
  readonly kvMegabytes: number;
}

await runScriptMain("onnxruntime-web-benchmark", async () => {
  const { folder, contexts, jsonPath, decodeTokens, blockSize, repeats } = parseArguments(
    process.argv.slice(2),
  );
  let start = performance.now();
  const decoder = await OnnxRuntimeWebDecoder.create(folder);
  const { layout } = decoder;
  console.log(
    `onnxruntime-web ${decoder.runtimeVersion}, WebGPU; ${folder}: ${layout.layerCount} layers, ${layout.kvHeadCount} key/value heads of ${layout.headSize}; session in ${((performance.now() - start) / 1000).toFixed(1)} s`,
  );
  for (const context of contexts) {
    if (layout.contextLimit !== undefined && context > layout.contextLimit) {
      throw new RangeError(`context ${context} is past the export's ${layout.contextLimit} positions`);
    }
  }
  console.log(
    `plain attention, prompt in blocks of ${blockSize}, ${decodeTokens} decoded tokens, fastest of ${repeats}`,
  );
  console.log("runtime | context | prompt tokens | prefill tok/s | decode tok/s | KV MB");
  const rows: Row[] = [];
  for (const context of contexts) {
    const prompt = deterministicPromptTokens(context - decodeTokens, layout.vocabularySize, 11);
    let best: Row | undefined;
    for (let repeat = 0; repeat < repeats; repeat++) {
      decoder.reset();
      start = performance.now();
      await decoder.prefill(prompt, blockSize);
      const prefillSeconds = (performance.now() - start) / 1000;
      start = performance.now();
      for (let step = 0; step < decodeTokens; step++) await decoder.evaluate([prompt[step % prompt.length]]);
      const decodeSeconds = (performance.now() - start) / 1000;
      const row: Row = {
        context,
        promptTokens: prompt.length,
        prefillTokensPerSecond: Math.max(best?.prefillTokensPerSecond ?? 0, prompt.length / prefillSeconds),
        decodeTokensPerSecond: Math.max(best?.decodeTokensPerSecond ?? 0, decodeTokens / decodeSeconds),
        // float32 keys and values, as the export's cache inputs are.
        kvMegabytes: (2 * layout.layerCount * layout.kvHeadCount * layout.headSize * context * 4) / 1e6,
      };
      best = row;
    }
    if (best === undefined) throw new Error("no run");
    rows.push(best);
    console.log(
      [
        "onnxruntime-web",
        best.context,
        best.promptTokens,
        best.prefillTokensPerSecond.toFixed(0),
        best.decodeTokensPerSecond.toFixed(1),
        best.kvMegabytes.toFixed(2),
      ].join(" | "),
    );
    // Written after every row, so a run cut short by a machine's time limit keeps what it measured.
    if (jsonPath !== undefined) {
      writeFileSync(
        jsonPath,
        `${JSON.stringify({ runtime: "onnxruntime-web", version: decoder.runtimeVersion, folder, blockSize, decodeTokens, repeats, rows }, null, 2)}\n`,
      );
    }
  }
  decoder.reset();
  await decoder.release();
});

function parseArguments(argumentsList: readonly string[]) {
  const positional: string[] = [];
  const counts = { decode: 16, block: 512, repeats: 1 };
  for (let index = 0; index < argumentsList.length; index++) {
    const argument = argumentsList[index];
    const name = argument.startsWith("--") ? argument.slice(2) : undefined;
    if (name === undefined) {
      positional.push(argument);
      continue;
    }
    if (!(name in counts)) throw new RangeError(`unknown option ${argument}; usage: ${usage}`);
    const text = argumentsList[++index];
    const value = Number(text);
    if (text === undefined || !Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`${argument} "${text ?? ""}" is invalid: must be an integer >= 1`);
    }
    counts[name as keyof typeof counts] = value;
  }
  const [folder, contextsText, jsonPath] = positional;
  if (folder === undefined || contextsText === undefined) throw new RangeError(`usage: ${usage}`);
  const contexts = contextsText.split(",").map(Number);
  if (contexts.some((context) => !Number.isSafeInteger(context) || context <= counts.decode)) {
    throw new RangeError(
      `contexts "${contextsText}" are invalid: must be integers above the ${counts.decode} decoded tokens, separated by commas`,
    );
  }
  return {
    folder,
    contexts,
    jsonPath,
    decodeTokens: counts.decode,
    blockSize: counts.block,
    repeats: counts.repeats,
  };
}
