/**
 * The WebGPU adapter on a real GPU, in one run: which adapter Dawn picked, the demo model through
 * the full forward pass against the float64 reference (a prompt of 3x its trained context, then
 * 256 greedy tokens; float32 weights, and float16 where the device has shader-f16), and then
 * scripts/benchmark-attention.ts. Written for a GPU machine without this repository's
 * node_modules: bundle it and the benchmark with esbuild (`webgpu` left external) and carry
 * Node, the bundles and dawn.node there (see the README's "Real GPU" section).
 *
 *   SELF_EXTEND_WEBGPU_BACKEND=vulkan node real-gpu-check.mjs <demo-model.gguf>
 */
import { argmax, type SelfExtendConfig, type SelfExtendModelV1 } from "@self-extend/core";
import { createReferenceBackend } from "@self-extend/reference";
import { createWebGpuBackend, defaultMatmulKernel, requestWebGpuDevice } from "../src/index.js";
import { createGpuRopeTable, SelfExtendAttentionKernel } from "../src/kernels.js";
import {
  attentionInputs,
  expectedAttention,
  largestOutputDifference,
  uploadAttentionInputs,
} from "../test/browser/attention-inputs.js";

const modelPath = process.argv[2];
if (modelPath === undefined) throw new Error("usage: real-gpu-check <demo-model.gguf>");

const context = await requestWebGpuDevice();
console.log(`adapter: ${context.adapterDescription}; shader-f16: ${context.float16}`);
console.log(
  `limits: ${JSON.stringify(context.limits)}; subgroup sizes: ${JSON.stringify(context.subgroupSizes ?? null)}`,
);

// The kernel alone against core's float64 reference attention, with the device's default key
// splits: a 64-query block at 16384 keys (GQA 4:1, head size 64), and decodes at 16384 keys on
// every single-query kernel the device can run, at head size 64 (interleaved) and at Llama 3's 128
// (32 heads over 8, half-split), so the subgroup kernel runs with a GPU's wide subgroups.
const kernelChecks = [
  { queryCount: 64, shape: { headCount: 8, kvHeadCount: 2, headSize: 64 }, layout: "interleaved" as const },
  ...(["subgroup", "key-parallel"] as const).flatMap((singleQueryKernel) => [
    {
      queryCount: 1,
      shape: { headCount: 8, kvHeadCount: 2, headSize: 64 },
      layout: "interleaved" as const,
      singleQueryKernel,
    },
    {
      queryCount: 1,
      shape: { headCount: 32, kvHeadCount: 8, headSize: 128 },
      layout: "half-split" as const,
      singleQueryKernel,
    },
  ]),
];
for (const { queryCount, shape, layout, ...check } of kernelChecks) {
  const singleQueryKernel = "singleQueryKernel" in check ? check.singleQueryKernel : undefined;
  if (singleQueryKernel === "subgroup" && context.subgroupSizes === undefined) {
    console.log("kernel vs referenceAttention: no subgroups on this device, so no subgroup kernel");
    continue;
  }
  const kernelConfig: SelfExtendConfig = { groupSize: 8, neighborWindow: 256 };
  const keyCount = 16384;
  const inputs = attentionInputs({ shape, config: kernelConfig, layout, keyCount, queryCount });
  const expectedOutput = expectedAttention(inputs);
  const kernel = await SelfExtendAttentionKernel.create(context, {
    shape,
    config: kernelConfig,
    rope: { layout },
    contextSize: keyCount,
    ropeTable: createGpuRopeTable(context.device, inputs.ropeOptions, inputs.table.positionCount),
    singleQueryKernel,
  });
  const call = { queryStart: keyCount - queryCount, queryCount, keyCount };
  const buffers = uploadAttentionInputs(context.device, inputs);
  kernel.run(buffers, call);
  const largest = await largestOutputDifference(context.device, buffers.output, expectedOutput);
  context.assertHealthy();
  const kind =
    queryCount === 1
      ? `, ${kernel.singleQueryKernel} kernel${kernel.subgroupLanes === undefined ? "" : ` (${kernel.subgroupLanes} lanes per key row)`}`
      : "";
  console.log(
    `kernel vs referenceAttention, ${queryCount} queries at ${keyCount} keys, heads ${shape.headCount}/${shape.kvHeadCount} x ${shape.headSize} ${layout}${kind}, ${kernel.planKeySplits(call).splitCount} key splits: max |difference| ${largest.toExponential(3)}`,
  );
  kernel.destroy();
}

const reference = await createReferenceBackend().loadModel({ path: modelPath });
const trainedContext = reference.info.trainedContext;
const vocabularySize = reference.info.vocabularySize;
const generated = 256;
// Deterministic tokens (an LCG), as the conformance suite's prompts.
let state = 24;
const prompt = Array.from({ length: 3 * trainedContext }, () => {
  state = (Math.imul(state, 1103515245) + 12345) >>> 0;
  return state % vocabularySize;
});
const config: SelfExtendConfig = { groupSize: 8, neighborWindow: trainedContext / 4 };
const contextSize = prompt.length + generated;

async function greedy(
  model: SelfExtendModelV1,
): Promise<{ tokens: number[]; rows: Float32Array[]; seconds: number }> {
  const session = await model.createSession({ selfExtend: config, contextSize });
  const started = performance.now();
  const evaluation = await session.evaluate(prompt, { logits: "last" });
  let row = evaluation.logits;
  const tokens: number[] = [];
  const rows: Float32Array[] = [row];
  for (let step = 0; step < generated; step++) {
    const token = argmax(row);
    tokens.push(token);
    if (step === generated - 1) break;
    row = await session.decode(token);
    rows.push(row);
  }
  const seconds = (performance.now() - started) / 1000;
  await session.dispose();
  return { tokens, rows, seconds };
}

const expected = await greedy(reference);
console.log(
  `reference (float64, CPU): ${prompt.length}-token prompt + ${generated} greedy tokens, G=${config.groupSize} W=${config.neighborWindow}, ${expected.seconds.toFixed(1)} s`,
);
const backend = createWebGpuBackend({ context });
const runs = [
  ...(context.float16 ? (["float32", "float16"] as const) : (["float32"] as const)).map(
    (weightPrecision) => ({
      weightPrecision,
      matmulKernel: defaultMatmulKernel(context),
    }),
  ),
  // The other matmul kind too, on float32 weights: both must give the reference's tokens.
  {
    weightPrecision: "float32" as const,
    matmulKernel: defaultMatmulKernel(context) === "tiled" ? ("per-output" as const) : ("tiled" as const),
  },
];
for (const { weightPrecision, matmulKernel } of runs) {
  const model = await backend.loadModel({ path: modelPath }, { weightPrecision, matmulKernel });
  const actual = await greedy(model);
  await model.dispose();
  let largest = 0;
  actual.rows.forEach((row, index) => {
    for (let v = 0; v < row.length; v++)
      largest = Math.max(largest, Math.abs(row[v] - expected.rows[index][v]));
  });
  const divergence = actual.tokens.findIndex((token, index) => token !== expected.tokens[index]);
  console.log(
    `webgpu ${weightPrecision} weights, ${matmulKernel} matmuls: greedy tokens ${divergence < 0 ? "identical" : `diverge at ${divergence}`}, max |logit diff| over ${actual.rows.length} rows ${largest.toExponential(3)}, ${actual.seconds.toFixed(2)} s`,
  );
}
