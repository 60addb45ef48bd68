/**
 * The accuracy cost of float16 weights: the same prompt and teacher-forced greedy continuation
 * through the reference (float64), the WebGPU float32 path and the float16 path, on an adapter
 * with shader-f16 (lavapipe from scripts/install-ci-dependencies.sh by default). Prints the
 * largest |logit difference| and argmax agreement for the demo model and stories260K.
 *
 *   npx tsx --conditions source packages/webgpu/scripts/measure-float16.ts [--tokens 64]
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { argmax, type SelfExtendConfig, type SelfExtendModelV1 } from "@self-extend/core";
import { createTokenizer, readGguf, readLlama2cTokenizer, tokenizerFromGguf } from "@self-extend/models/node";
import { createReferenceBackend } from "@self-extend/reference";
import { repositoryRoot, sharedModelPaths } from "@self-extend/test-fixtures";
import { createWebGpuBackend, requestWebGpuDevice } from "../src/index.js";

const tokensIndex = process.argv.indexOf("--tokens");
const steps = tokensIndex >= 0 ? Number(process.argv[tokensIndex + 1]) : 64;
process.env.VK_DRIVER_FILES ??= fileURLToPath(new URL("../.cache/lavapipe/lvp_icd.json", import.meta.url));
const context = await requestWebGpuDevice({ nodeBackends: ["vulkan"] });
if (!context.float16) throw new Error(`${context.adapterDescription} has no shader-f16`);
console.log(context.adapterDescription);
const backend = createWebGpuBackend({ context });
const text = readFileSync(sharedModelPaths.validationText, "utf8").slice(0, 40000);
const demoPath = join(repositoryRoot(), "packages", "demo-model", "demo-model.gguf");
const gguf = readGguf(demoPath);
const demoTokenizer = tokenizerFromGguf(gguf);
gguf.close();

const cases: { name: string; path: string; prompt: number[]; config: SelfExtendConfig }[] = [
  {
    name: "demo model",
    path: demoPath,
    prompt: demoTokenizer.encode(text, { addBos: true }).slice(0, 768),
    config: { groupSize: 6, neighborWindow: 36 },
  },
  {
    name: "stories260K",
    path: sharedModelPaths.stories260K,
    prompt: createTokenizer(readLlama2cTokenizer(sharedModelPaths.tokenizer))
      .encode(text, { addBos: true })
      .slice(0, 1536),
    config: { groupSize: 8, neighborWindow: 256 },
  },
];

async function rows(model: SelfExtendModelV1, prompt: number[], forced: number[], config: SelfExtendConfig) {
  const session = await model.createSession({
    selfExtend: config,
    contextSize: prompt.length + forced.length,
  });
  const evaluation = await session.evaluate(prompt, { logits: "all" });
  const size = evaluation.vocabularySize;
  const result: Float32Array[] = [];
  for (let row = 0; row < prompt.length; row++)
    result.push(evaluation.logits.slice(row * size, (row + 1) * size));
  for (const token of forced.slice(0, -1)) result.push(await session.decode(token));
  await session.dispose();
  return result;
}

function compare(a: Float32Array[], b: Float32Array[], promptLength: number) {
  let prompt = 0;
  let decode = 0;
  let agree = 0;
  a.forEach((row, index) => {
    let largest = 0;
    for (let i = 0; i < row.length; i++) largest = Math.max(largest, Math.abs(row[i] - b[index][i]));
    if (index < promptLength - 1) prompt = Math.max(prompt, largest);
    else decode = Math.max(decode, largest);
    if (argmax(row) === argmax(b[index])) agree++;
  });
  return `prompt ${prompt.toExponential(2)}, decode ${decode.toExponential(2)}, argmax ${agree}/${a.length}`;
}

for (const { name, path, prompt, config } of cases) {
  const reference = await createReferenceBackend().loadModel({ path });
  const session = await reference.createSession({ selfExtend: config, contextSize: prompt.length + steps });
  let logits = (await session.evaluate(prompt)).logits;
  const greedy: number[] = [];
  for (let step = 0; step < steps; step++) {
    greedy.push(argmax(logits));
    if (step < steps - 1) logits = await session.decode(greedy[step]);
  }
  await session.dispose();
  const model32 = await backend.loadModel({ path });
  const model16 = await backend.loadModel({ path }, { weightPrecision: "float16" });
  const [expected, f32, f16] = [
    await rows(reference, prompt, greedy, config),
    await rows(model32, prompt, greedy, config),
    await rows(model16, prompt, greedy, config),
  ];
  // Free greedy generation on the float16 path: where it first leaves the reference's tokens.
  const own = await model16.createSession({ selfExtend: config, contextSize: prompt.length + steps });
  logits = (await own.evaluate(prompt)).logits;
  let firstDivergence: number | string = "none";
  for (let step = 0; step < steps; step++) {
    const token = argmax(logits);
    if (token !== greedy[step]) {
      firstDivergence = step;
      break;
    }
    if (step < steps - 1) logits = await own.decode(token);
  }
  await own.dispose();
  console.log(
    `${name}: ${prompt.length}-token prompt, G = ${config.groupSize}, W = ${config.neighborWindow}, ${steps} tokens; ` +
      `weights ${model32.weightPrecision} -> ${model16.weightPrecision}\n` +
      `  float16 vs reference: ${compare(f16, expected, prompt.length)}\n` +
      `  float32 vs reference: ${compare(f32, expected, prompt.length)}\n` +
      `  float16 vs float32:   ${compare(f16, f32, prompt.length)}\n` +
      `  float16 free greedy: first token different from the reference: ${firstDivergence}`,
  );
  await model32.dispose();
  await model16.dispose();
}
context.destroy();
