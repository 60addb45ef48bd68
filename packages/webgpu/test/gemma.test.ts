/**
 * Gemma and Gemma 2 on this adapter against the reference backend (the oracle, itself checked
 * against Hugging Face and llama.cpp), on tiny generated models written as GGUF files: Gemma's
 * scaled embeddings and GeGLU; Gemma 2's score scale and soft-cap, post-norms, final soft-cap and
 * local sliding-window layers. The caps are small so they change the numbers, the window is far
 * shorter than the 3.5 L prompt, and Self-Extend runs with W below and above the window (local
 * layers stay plain at exact positions either way), and plain (G = 1). The prompt is evaluated in
 * blocks that do not divide it, then decoded token by token: every logits row within the adapter's
 * tolerance (log-probabilities), every greedy token identical.
 */
import { join } from "node:path";
import {
  adapterTolerance,
  largestDifference,
  logSoftmaxRows,
  readDeclaration,
} from "@self-extend/conformance";
import { argmax, type SelfExtendConfig } from "@self-extend/core";
import {
  generateTinyModel,
  loadLlamaWeights,
  type TinyModelSpec,
  writeLlamaGguf,
} from "@self-extend/models/node";
import { createReferenceBackend } from "@self-extend/reference";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { conformanceDeclaration } from "../src/index.js";
import { useWebGpuBackend } from "./use-webgpu-backend.js";

const temporaryFolder = useTemporaryFolder("webgpu-gemma-");
const trainedContext = 32;
// The raw logits of these weights reach about 68 (median 5): the cap squashes the top ones, which
// decide the greedy tokens, without flattening them into ties.
const finalLogitSoftCap = 30;
const slidingWindowSize = 12;

const gemma: TinyModelSpec = {
  name: "gemma-h16-mqa",
  architecture: "gemma",
  layerCount: 2,
  headCount: 4,
  kvHeadCount: 1,
  headSize: 16,
  feedForwardSize: 96,
  vocabularySize: 128,
  trainedContext,
  ropeBase: 10000,
  hasQkvBias: false,
  tiedEmbeddings: true,
};

// Three layers with llama.cpp's pattern 2: local, global, local.
const gemma2: TinyModelSpec = {
  ...gemma,
  name: "gemma2-h16-gqa2",
  architecture: "gemma2",
  layerCount: 3,
  kvHeadCount: 2,
  gemma2: {
    attentionLogitSoftCap: 1,
    finalLogitSoftCap,
    slidingWindowSize,
    slidingWindowPattern: 2,
  },
};

const prompt = Array.from({ length: 3.5 * trainedContext }, (_, index) => (index * 37 + 5) % 128);
const greedyTokens = 16;
const contextSize = prompt.length + greedyTokens;
// Blocks of 40 split the prompt at 40 and 80: neither a key tile nor a window boundary.
const blockSize = 40;

/** The model as a GGUF file in this test's temporary folder (removed after the test). */
function writeModel(spec: TinyModelSpec): string {
  const path = join(temporaryFolder(), `${spec.name}.gguf`);
  writeLlamaGguf(path, generateTinyModel(spec, 11));
  return path;
}

const webGpu = useWebGpuBackend();

const cases: { spec: TinyModelSpec; selfExtend: SelfExtendConfig; label: string }[] = [
  { spec: gemma, selfExtend: { groupSize: 8, neighborWindow: 8 }, label: "Self-Extend G = 8, W = 8" },
  { spec: gemma, selfExtend: { groupSize: 1, neighborWindow: 8 }, label: "plain (G = 1)" },
  {
    spec: gemma2,
    selfExtend: { groupSize: 8, neighborWindow: 8 },
    label: "Self-Extend G = 8, W = 8 below the window",
  },
  {
    spec: gemma2,
    selfExtend: { groupSize: 8, neighborWindow: 16 },
    label: "Self-Extend G = 8, W = 16 above the window",
  },
  { spec: gemma2, selfExtend: { groupSize: 1, neighborWindow: 8 }, label: "plain (G = 1)" },
];

describe("Gemma and Gemma 2 on webgpu", () => {
  it("writes files whose descriptions use every Gemma feature", () => {
    const first = loadLlamaWeights(writeModel(gemma)).description;
    expect(first.embeddingScale).toBe(Math.fround(Math.sqrt(64)));
    expect(first.feedForwardActivation).toBe("gelu-tanh");
    const second = loadLlamaWeights(writeModel(gemma2)).description;
    expect(second.attentionLogitSoftCap).toBe(1);
    expect(second.finalLogitSoftCap).toBe(finalLogitSoftCap);
    expect(second.hasPostNorms).toBe(true);
    expect(second.slidingWindow).toEqual({ size: slidingWindowSize, localLayers: [true, false, true] });
    expect(slidingWindowSize).toBeLessThan(prompt.length);
  });

  it.each(cases)(
    "$spec.architecture, $label: 3.5 L prompt logits and greedy tokens match the reference",
    async ({ spec, selfExtend }) => {
      const tolerance = adapterTolerance(readDeclaration(conformanceDeclaration).tolerances!, {
        backend: "webgpu",
      });
      const path = writeModel(spec);
      const gpuModel = await webGpu.backend.loadModel({ path });
      const referenceModel = await createReferenceBackend().loadModel({ path });
      const gpu = await gpuModel.createSession({ selfExtend, contextSize, blockSize });
      const reference = await referenceModel.createSession({ selfExtend, contextSize });
      try {
        const { vocabularySize } = spec;
        const gpuPrompt = await gpu.evaluate(prompt, { logits: "all" });
        const referencePrompt = await reference.evaluate(prompt, { logits: "all" });
        expect(gpuPrompt.logits.length).toBe(prompt.length * vocabularySize);
        if (spec.architecture === "gemma2") {
          // The final soft-cap bites: the largest logit sits in tanh's flat part, just below the cap.
          const largest = Math.max(...referencePrompt.logits.map(Math.abs));
          expect(largest).toBeGreaterThan(0.75 * finalLogitSoftCap);
          expect(largest).toBeLessThan(finalLogitSoftCap);
        }
        const logProbabilityDifference = (a: Float32Array, b: Float32Array) =>
          largestDifference(logSoftmaxRows(a, vocabularySize), logSoftmaxRows(b, vocabularySize));
        let difference = logProbabilityDifference(gpuPrompt.logits, referencePrompt.logits);
        let gpuLogits = gpuPrompt.logits.subarray((prompt.length - 1) * vocabularySize);
        let referenceLogits = referencePrompt.logits.subarray((prompt.length - 1) * vocabularySize);
        for (let step = 0; step < greedyTokens; step++) {
          const token = argmax(referenceLogits);
          expect(argmax(gpuLogits), `greedy token ${step} after the prompt`).toBe(token);
          if (step === greedyTokens - 1) break;
          gpuLogits = await gpu.decode(token);
          referenceLogits = await reference.decode(token);
          difference = Math.max(difference, logProbabilityDifference(gpuLogits, referenceLogits));
        }
        console.info(
          `webgpu ${spec.name} G = ${selfExtend.groupSize}, W = ${selfExtend.neighborWindow}: largest log-probability difference ${difference}`,
        );
        expect(difference).toBeLessThanOrEqual(tolerance.atol);
      } finally {
        await gpu.dispose();
        await reference.dispose();
        await gpuModel.dispose();
        await referenceModel.dispose();
      }
    },
  );
});

describe("Gemma 3 on webgpu", () => {
  // llama.cpp's converter's file (tools/gemma-models): five local layers at RoPE base 1e4 without
  // scaling, one global at 1e6 with linear scaling 2, per-head query/key norms, window 48, L = 128.
  const path = join(import.meta.dirname, "..", "..", "reference", "test", "fixtures", "gemma", "gemma3.gguf");
  const gemma3Prompt = Array.from({ length: 400 }, (_, index) => (index * 37 + 5) % 512);
  const settings: { selfExtend: SelfExtendConfig; label: string }[] = [
    { selfExtend: { groupSize: 8, neighborWindow: 16 }, label: "Self-Extend G = 8, W = 16 below the window" },
    { selfExtend: { groupSize: 8, neighborWindow: 48 }, label: "Self-Extend G = 8, W = 48 = the window" },
    { selfExtend: { groupSize: 1, neighborWindow: 8 }, label: "plain (G = 1)" },
  ];
  it.each(settings)(
    "$label: prompt logits and greedy tokens match the reference",
    async ({ selfExtend }) => {
      const tolerance = adapterTolerance(readDeclaration(conformanceDeclaration).tolerances!, {
        backend: "webgpu",
      });
      const gemma3ContextSize = gemma3Prompt.length + greedyTokens;
      const gpuModel = await webGpu.backend.loadModel({ path });
      const referenceModel = await createReferenceBackend().loadModel({ path });
      const gpu = await gpuModel.createSession({ selfExtend, contextSize: gemma3ContextSize, blockSize });
      const reference = await referenceModel.createSession({ selfExtend, contextSize: gemma3ContextSize });
      try {
        const vocabularySize = gpuModel.info.vocabularySize;
        const gpuPrompt = await gpu.evaluate(gemma3Prompt, { logits: "all" });
        const referencePrompt = await reference.evaluate(gemma3Prompt, { logits: "all" });
        const promptDifference = largestDifference(
          logSoftmaxRows(gpuPrompt.logits, vocabularySize),
          logSoftmaxRows(referencePrompt.logits, vocabularySize),
        );
        let gpuRow = gpuPrompt.logits.subarray((gemma3Prompt.length - 1) * vocabularySize);
        let referenceRow = referencePrompt.logits.subarray((gemma3Prompt.length - 1) * vocabularySize);
        let decodeDifference = 0;
        for (let step = 0; step < greedyTokens; step++) {
          const token = argmax(referenceRow, 0, vocabularySize);
          expect(argmax(gpuRow, 0, vocabularySize)).toBe(token);
          gpuRow = await gpu.decode(token);
          referenceRow = await reference.decode(token);
          decodeDifference = Math.max(
            decodeDifference,
            largestDifference(
              logSoftmaxRows(gpuRow, vocabularySize),
              logSoftmaxRows(referenceRow, vocabularySize),
            ),
          );
        }
        console.info(
          `gemma3: prompt ${promptDifference.toExponential(2)}, decodes ${decodeDifference.toExponential(2)}`,
        );
        expect(promptDifference).toBeLessThanOrEqual(tolerance.atol);
        expect(decodeDifference).toBeLessThanOrEqual(tolerance.atol);
      } finally {
        await gpu.dispose();
        await reference.dispose();
        await gpuModel.dispose();
        await referenceModel.dispose();
      }
    },
    120_000,
  );
});
