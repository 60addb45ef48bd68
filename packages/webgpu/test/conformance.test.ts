/**
 * Conformance against the reference backend (the float64 oracle), driven only through the v1
 * contract: prompt logits at every position, then greedy decoding where every generated token and
 * every decode's logits must agree. Tolerances are data (conformance/tolerances.json).
 */
import { readFileSync } from "node:fs";
import {
  argmax,
  largestUsableContext,
  type SelfExtendConfig,
  type SelfExtendModelV1,
} from "@self-extend/core";
import {
  createTokenizer,
  generateTinyModel,
  readLlama2cTokenizer,
  tinyModelGrid,
} from "@self-extend/models/node";
import { createReferenceBackend, createReferenceModel } from "@self-extend/reference";
import { sharedModelPaths } from "@self-extend/test-fixtures";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import tolerances from "../conformance/tolerances.json" with { type: "json" };
import { createWebGpuBackend, type WebGpuBackend } from "../src/index.js";
import { largestDifference } from "./browser/attention-inputs.js";

type Tolerance = (typeof tolerances.cases)["tiny-models"];

let backend: WebGpuBackend;

beforeAll(async () => {
  backend = createWebGpuBackend();
  const availability = await backend.checkAvailability();
  // No skip: without an adapter this fails and says why.
  expect(availability.reason ?? "available").toBe("available");
});

afterAll(async () => (await backend?.getContext())?.destroy());

function seededTokens(count: number, vocabularySize: number, seed: number): number[] {
  let state = seed >>> 0;
  return Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state % vocabularySize;
  });
}

async function compare(
  gpuModel: SelfExtendModelV1,
  referenceModel: SelfExtendModelV1,
  selfExtend: SelfExtendConfig,
  prompt: readonly number[],
  tolerance: Tolerance,
): Promise<{ promptDifference: number; decodeDifference: number }> {
  const contextSize = prompt.length + tolerance.greedyTokens;
  const gpu = await gpuModel.createSession({ selfExtend, contextSize });
  const reference = await referenceModel.createSession({ selfExtend, contextSize });
  try {
    const [gpuPrompt, referencePrompt] = [
      await gpu.evaluate(prompt, { logits: "all" }),
      await reference.evaluate(prompt, { logits: "all" }),
    ];
    const promptDifference = largestDifference(gpuPrompt.logits, referencePrompt.logits);
    expect(promptDifference).toBeLessThanOrEqual(tolerance.maxAbsoluteLogitDifference);

    const vocabularySize = gpuPrompt.vocabularySize;
    let gpuLogits = gpuPrompt.logits.subarray((prompt.length - 1) * vocabularySize);
    let referenceLogits = referencePrompt.logits.subarray((prompt.length - 1) * vocabularySize);
    let decodeDifference = 0;
    for (let step = 0; step < tolerance.greedyTokens; step++) {
      const token = argmax(referenceLogits);
      expect(argmax(gpuLogits), `greedy token ${step} after the prompt`).toBe(token);
      if (step === tolerance.greedyTokens - 1) break;
      gpuLogits = await gpu.decode(token);
      referenceLogits = await reference.decode(token);
      decodeDifference = Math.max(decodeDifference, largestDifference(gpuLogits, referenceLogits));
    }
    expect(decodeDifference).toBeLessThanOrEqual(tolerance.maxAbsoluteLogitDifference);
    return { promptDifference, decodeDifference };
  } finally {
    await gpu.dispose();
    await reference.dispose();
  }
}

/** W = L/4 and the smallest power-of-two G whose usable context holds prompt + generated tokens. */
function configFor(trainedContext: number, tokens: number): SelfExtendConfig {
  const neighborWindow = trainedContext / 4;
  for (let groupSize = 2; ; groupSize *= 2) {
    const config = { groupSize, neighborWindow };
    if (largestUsableContext(trainedContext, config) >= tokens) return config;
  }
}

describe("webgpu backend vs reference backend", () => {
  const tiny = tolerances.cases["tiny-models"];
  for (const spec of tinyModelGrid) {
    it(`${spec.name}: prompt of 3 x L, then ${tiny.greedyTokens} greedy tokens, Self-Extend`, async () => {
      const weights = generateTinyModel(spec, 11);
      const prompt = seededTokens(3 * spec.trainedContext, spec.vocabularySize, spec.trainedContext + 5);
      const config = configFor(spec.trainedContext, prompt.length + tiny.greedyTokens);
      const gpuModel = await backend.createModel(weights);
      try {
        const result = await compare(gpuModel, createReferenceModel(weights), config, prompt, tiny);
        console.log(
          `${spec.name} G=${config.groupSize} W=${config.neighborWindow}: prompt ${result.promptDifference.toExponential(2)}, decode ${result.decodeDifference.toExponential(2)}`,
        );
      } finally {
        await gpuModel.dispose();
      }
    });
  }

  const plain = tolerances.cases["tiny-models-plain"];
  for (const spec of [tinyModelGrid[0], tinyModelGrid[4]]) {
    it(`${spec.name}: G = 1 is plain attention`, async () => {
      const weights = generateTinyModel(spec, 12);
      const prompt = seededTokens(spec.trainedContext - plain.greedyTokens, spec.vocabularySize, 3);
      const gpuModel = await backend.createModel(weights);
      try {
        await compare(
          gpuModel,
          createReferenceModel(weights),
          { groupSize: 1, neighborWindow: 1 },
          prompt,
          plain,
        );
      } finally {
        await gpuModel.dispose();
      }
    });
  }

  it("stories260K: 1536-token TinyStories prompt (3 x L), W = 256, G = 8, 256 greedy tokens", async () => {
    const tolerance = tolerances.cases.stories260K;
    const tokenizer = createTokenizer(readLlama2cTokenizer(sharedModelPaths.tokenizer));
    const text = readFileSync(sharedModelPaths.validationText, "utf8").slice(0, 20000);
    const prompt = tokenizer.encode(text, { addBos: true }).slice(0, 1536);
    expect(prompt).toHaveLength(1536);
    const gpuModel = await backend.loadModel({ path: sharedModelPaths.stories260K });
    const referenceModel = await createReferenceBackend().loadModel({ path: sharedModelPaths.stories260K });
    expect(gpuModel.info.trainedContext).toBe(512);
    try {
      const result = await compare(
        gpuModel,
        referenceModel,
        { groupSize: 8, neighborWindow: 256 },
        prompt,
        tolerance,
      );
      console.log(
        `stories260K: prompt ${result.promptDifference.toExponential(2)}, decode ${result.decodeDifference.toExponential(2)}`,
      );
    } finally {
      await gpuModel.dispose();
    }
  });
});
