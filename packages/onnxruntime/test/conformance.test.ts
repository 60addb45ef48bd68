/**
 * Conformance against the float64 reference backend: every shape of the tiny model grid and
 * stories260K, a prompt of 3x the trained context, then 256 greedy tokens that must be identical,
 * with logits within the tolerances of conformance/tolerances.json.
 */
import { readFileSync } from "node:fs";
import { generateTokens, type SelfExtendConfig, type SelfExtendSessionV1 } from "@self-extend/core";
import {
  createTokenizer,
  generateTinyModel,
  readLlama2cTokenizer,
  tinyModelGrid,
} from "@self-extend/models/node";
import { createReferenceBackend, createReferenceModel } from "@self-extend/reference";
import { sharedModelPaths, useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { createOnnxRuntimeBackend, createOnnxRuntimeModel } from "../src/index.js";
import { compareLogits, type Tolerance, tolerance } from "./tolerances.js";

const generatedTokens = 256;

async function greedy(session: SelfExtendSessionV1, prompt: number[]): Promise<number[]> {
  const tokens: number[] = [];
  for await (const token of generateTokens(session, prompt, { maxTokens: generatedTokens }))
    tokens.push(token);
  return tokens;
}

async function expectConformance(
  reference: SelfExtendSessionV1,
  candidate: SelfExtendSessionV1,
  prompt: number[],
  bound: Tolerance,
): Promise<void> {
  const expected = await reference.evaluate(prompt, { logits: "all" });
  const actual = await candidate.evaluate(prompt, { logits: "all" });
  expect(Array.from(actual.positions)).toEqual(Array.from(expected.positions));
  const prefill = compareLogits(actual.logits, expected.logits, bound);
  expect(
    prefill.worstExcess,
    `prefill logits, largest difference ${prefill.largestDifference}`,
  ).toBeLessThanOrEqual(0);

  await reference.reset();
  await candidate.reset();
  const expectedTokens = await greedy(reference, prompt);
  const actualTokens = await greedy(candidate, prompt);
  expect(actualTokens).toHaveLength(generatedTokens);
  expect(actualTokens).toEqual(expectedTokens);
  // The decode path's logits, at the last generated step.
  const last = expectedTokens[expectedTokens.length - 1];
  const decoded = compareLogits(await candidate.decode(last), await reference.decode(last), bound);
  expect(
    decoded.worstExcess,
    `decode logits, largest difference ${decoded.largestDifference}`,
  ).toBeLessThanOrEqual(0);
}

describe("tiny model grid", () => {
  const temporaryFolder = useTemporaryFolder("onnxruntime-conformance-");
  for (const spec of tinyModelGrid) {
    it(`${spec.name}: 3L prompt + ${generatedTokens} greedy tokens match the reference`, async () => {
      const weights = generateTinyModel(spec, 7);
      const L = spec.trainedContext;
      // G = 8, W = L/8 reaches (L - W) * G + W = 7L + L/8 tokens: room for 3L + 256 on every L >= 64.
      const selfExtend: SelfExtendConfig = { groupSize: 8, neighborWindow: L / 8 };
      const prompt = Array.from({ length: 3 * L }, (_, index) => (index * 31 + 7) % spec.vocabularySize);
      const contextSize = prompt.length + generatedTokens + 1;
      const reference = await createReferenceModel(weights).createSession({ selfExtend, contextSize });
      const model = createOnnxRuntimeModel(weights, { cacheFolder: temporaryFolder(), threads: 1 });
      const candidate = await model.createSession({ selfExtend, contextSize, prefillChunkSize: 40 });
      await expectConformance(reference, candidate, prompt, tolerance("tiny-models"));
      await model.dispose();
    });
  }

  for (const spec of tinyModelGrid) {
    it(`${spec.name}: G = 1 on the Self-Extend graph matches the plain export`, async () => {
      const weights = generateTinyModel(spec, 3);
      const model = createOnnxRuntimeModel(weights, { cacheFolder: temporaryFolder(), threads: 1 });
      const contextSize = 2 * spec.trainedContext;
      const prompt = Array.from(
        { length: contextSize },
        (_, index) => (index * 13 + 1) % spec.vocabularySize,
      );
      const plain = await model.createSession({
        selfExtend: { groupSize: 1, neighborWindow: 1 },
        contextSize,
      });
      const selfExtendG1 = await model.createSession({
        selfExtend: { groupSize: 1, neighborWindow: 8 },
        contextSize,
        attentionGraph: "self-extend",
      });
      expect(plain.attentionGraph).toBe("plain");
      expect(selfExtendG1.attentionGraph).toBe("self-extend");
      const a = await plain.evaluate(prompt, { logits: "all" });
      const b = await selfExtendG1.evaluate(prompt, { logits: "all" });
      const result = compareLogits(b.logits, a.logits, tolerance("self-extend-g1-vs-plain"));
      expect(result.worstExcess, `largest difference ${result.largestDifference}`).toBeLessThanOrEqual(0);
      await model.dispose();
    });
  }
});

describe("stories260K", () => {
  const temporaryFolder = useTemporaryFolder("onnxruntime-stories-");
  it(`a 1536-token story prompt (3x L = 512), G8/W256, + ${generatedTokens} greedy tokens match the reference`, async () => {
    const tokenizer = createTokenizer(readLlama2cTokenizer(sharedModelPaths.tokenizer));
    const text = readFileSync(sharedModelPaths.validationText, "utf8").slice(0, 20000);
    const prompt = tokenizer.encode(text, { addBos: true }).slice(0, 1536);
    expect(prompt).toHaveLength(1536);
    const selfExtend = { groupSize: 8, neighborWindow: 256 };
    const contextSize = prompt.length + generatedTokens + 1;
    const referenceModel = await createReferenceBackend().loadModel({ path: sharedModelPaths.stories260K });
    const backend = createOnnxRuntimeBackend({ cacheFolder: temporaryFolder(), threads: 1 });
    const model = await backend.loadModel({ path: sharedModelPaths.stories260K });
    expect(model.info.trainedContext).toBe(512);
    await expectConformance(
      await referenceModel.createSession({ selfExtend, contextSize }),
      await model.createSession({ selfExtend, contextSize }),
      prompt,
      tolerance("stories260K"),
    );
    await model.dispose();
  });
});
