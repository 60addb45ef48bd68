/**
 * The "tiled" matmul kernels (the default on GPUs: a coalesced matrix-vector kernel below 8 rows,
 * 16 x 16 workgroup tiles from 8 rows on) run here on the CPU implementation, where "per-output" is
 * the default. Shapes that are not multiples of the tile (embedding 40, heads of 12, feed-forward 36,
 * a vocabulary of 101 in row slabs), query/key/value biases (qwen2), and blocks of 9 rows (tiles)
 * and 5 rows (matrix-vector) before decoding token by token (matrix-vector): every logits row within
 * the adapter's tolerance of the reference backend, greedy tokens identical, and within float32
 * rounding of the per-output kernel, which adds the same products in another order.
 */
import {
  adapterTolerance,
  largestDifference,
  logSoftmaxRows,
  readDeclaration,
} from "@self-extend/conformance";
import { argmax, type SelfExtendConfig } from "@self-extend/core";
import { generateTinyModel, type TinyModelSpec } from "@self-extend/models/node";
import { createReferenceModel } from "@self-extend/reference";
import { describe, expect, it } from "vitest";
import { conformanceDeclaration, type MatmulKernel } from "../src/index.js";
import { useWebGpuBackend } from "./use-webgpu-backend.js";

const spec: TinyModelSpec = {
  name: "qwen2-h12-odd-shapes",
  architecture: "qwen2",
  layerCount: 2,
  headCount: 4,
  kvHeadCount: 2,
  headSize: 12,
  embeddingSize: 40,
  feedForwardSize: 36,
  vocabularySize: 101,
  trainedContext: 32,
  ropeBase: 10000,
  hasQkvBias: true,
};
const weights = generateTinyModel(spec, 5);
const selfExtend: SelfExtendConfig = { groupSize: 4, neighborWindow: 8 };
const prompt = Array.from({ length: 70 }, (_, index) => (index * 31 + 7) % spec.vocabularySize);
const greedyTokens = 12;
const contextSize = prompt.length + greedyTokens;

const webGpu = useWebGpuBackend();

/** Prompt logits (blocks of `blockSize`), then greedy decoding: every row, and the tokens. */
async function run(matmulKernel: MatmulKernel | "reference", blockSize: number) {
  const model =
    matmulKernel === "reference"
      ? createReferenceModel(weights)
      : await webGpu.backend.createModel(weights, { matmulKernel }).then((gpuModel) => {
          expect(gpuModel.matmulKernel).toBe(matmulKernel);
          return gpuModel;
        });
  const session = await model.createSession({
    selfExtend,
    contextSize,
    ...(matmulKernel === "reference" ? {} : { blockSize }),
  });
  try {
    const evaluation = await session.evaluate(prompt, { logits: "all" });
    const rows = [evaluation.logits];
    const tokens: number[] = [];
    let last = evaluation.logits.subarray((prompt.length - 1) * spec.vocabularySize);
    for (let step = 0; step < greedyTokens; step++) {
      const token = argmax(last, 0, spec.vocabularySize);
      tokens.push(token);
      last = await session.decode(token);
      rows.push(last);
    }
    const all = new Float32Array(rows.reduce((total, row) => total + row.length, 0));
    let offset = 0;
    for (const row of rows) {
      all.set(row, offset);
      offset += row.length;
    }
    return { logits: all, tokens };
  } finally {
    await session.dispose();
    await model.dispose();
  }
}

describe("tiled matmul kernels (the GPU default) on odd shapes", () => {
  it("the CPU implementation defaults to per-output", async () => {
    const model = await webGpu.backend.createModel(weights);
    expect(model.matmulKernel).toBe("per-output");
    await model.dispose();
  });

  it.each([9, 5])(
    "blocks of %i rows, then decoding: within the adapter's tolerance of the reference, the same greedy tokens, float32 rounding from per-output",
    async (blockSize) => {
      const tolerance = adapterTolerance(readDeclaration(conformanceDeclaration).tolerances!, {
        backend: "webgpu",
      });
      const reference = await run("reference", blockSize);
      const tiled = await run("tiled", blockSize);
      const perOutput = await run("per-output", blockSize);
      const V = spec.vocabularySize;
      const againstReference = largestDifference(
        logSoftmaxRows(tiled.logits, V),
        logSoftmaxRows(reference.logits, V),
      );
      console.info(
        `blocks of ${blockSize}: tiled vs reference ${againstReference.toExponential(2)} (log-probabilities), vs per-output ${largestDifference(tiled.logits, perOutput.logits).toExponential(2)} (logits)`,
      );
      expect(againstReference).toBeLessThanOrEqual(tolerance.atol);
      expect(tiled.tokens).toEqual(reference.tokens);
      expect(largestDifference(tiled.logits, perOutput.logits)).toBeLessThan(1e-4);
    },
    120_000,
  );

  it("refuses an unknown kernel in one line", async () => {
    await expect(
      webGpu.backend.createModel(weights, { matmulKernel: "blocked" as MatmulKernel }),
    ).rejects.toThrow('matmulKernel = "blocked" is invalid: must be "per-output" or "tiled"');
  });
});
