/**
 * Conformance against the float64 reference backend on every tiny model shape and on stories260K:
 * prompts of 3x the trained context, then 256 greedy tokens. Rows are compared as log-softmax.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { planSelfExtend } from "@self-extend/core";
import { generateTinyModel, importLlama2c, tinyModelGrid, writeLlamaGguf } from "@self-extend/models/node";
import { createReferenceBackend, createReferenceModel } from "@self-extend/reference";
import { sharedModelPaths, useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { createSelfExtendContext } from "../src/index.js";
import {
  compareLogSoftmax,
  concatenate,
  greedyRun,
  largestDifference,
  logSoftmaxRows,
  randomTokens,
  tolerances,
} from "./helpers.js";

const generatedTokens = 256;
/** Grid shapes llama.cpp cannot load, each with its reason (conformance/skips.json). */
const skips: Record<string, string> = JSON.parse(
  readFileSync(join(import.meta.dirname, "..", "conformance", "skips.json"), "utf8"),
).tinyModels;
const temporaryFolder = useTemporaryFolder("llama-cpp-conformance-");

describe.sequential("exact mode against the reference, tiny model grid", () => {
  for (const spec of tinyModelGrid) {
    const unsupported = skips[spec.name];
    if (unsupported !== undefined) {
      // Not run against the reference (the reason is in conformance/skips.json): what users get
      // instead is a clear refusal before llama.cpp sees the file.
      it(`${spec.name}: refused with a clear error naming the architecture`, async () => {
        const path = join(temporaryFolder(), `${spec.name}.gguf`);
        writeLlamaGguf(path, generateTinyModel(spec, 1));
        await expect(
          createSelfExtendContext({
            model: path,
            groupSize: 2,
            neighborWindow: 8,
            contextSize: 64,
            threads: 1,
          }),
        ).rejects.toThrow(spec.architecture);
      });
      continue;
    }
    it(`${spec.name}: 3L prompt + ${generatedTokens} greedy tokens`, async () => {
      const weights = generateTinyModel(spec, 1);
      const path = join(temporaryFolder(), `${spec.name}.gguf`);
      writeLlamaGguf(path, weights);
      const L = spec.trainedContext;
      const prompt = randomTokens(3 * L, spec.vocabularySize);
      const contextSize = prompt.length + generatedTokens;
      const selfExtend = planSelfExtend({ trainedContext: L, targetContext: contextSize }).config;

      const context = await createSelfExtendContext({ model: path, ...selfExtend, contextSize, threads: 1 });
      const reference = await createReferenceModel(weights).createSession({ selfExtend, contextSize });
      try {
        const ours = await greedyRun(context, prompt, generatedTokens);
        const theirs = await greedyRun(reference, prompt, generatedTokens);
        expect(ours.tokens).toEqual(theirs.tokens);
        const V = spec.vocabularySize;
        const tolerance = tolerances.exact.float32;
        const promptComparison = compareLogSoftmax(logSoftmaxRows(theirs.promptRows, V), ours.promptRows, V);
        const decodeComparison = compareLogSoftmax(
          logSoftmaxRows(concatenate(theirs.decodeRows), V),
          concatenate(ours.decodeRows),
          V,
        );
        expect(promptComparison.maxDifference).toBeLessThanOrEqual(tolerance.maxLogSoftmaxDifference);
        expect(decodeComparison.maxDifference).toBeLessThanOrEqual(tolerance.maxLogSoftmaxDifference);
        expect(promptComparison.agreement).toBeGreaterThanOrEqual(tolerance.greedyAgreement);
      } finally {
        await context.dispose();
      }
    });
  }
});

describe.sequential("exact mode against the reference, stories260K", () => {
  it(`3x512-token prompt of TinyStories text + ${generatedTokens} greedy tokens (G=8, W=256)`, {
    timeout: 300_000,
  }, async () => {
    const path = join(temporaryFolder(), "stories260K.gguf");
    importLlama2c({
      checkpointPath: sharedModelPaths.stories260K,
      tokenizerPath: sharedModelPaths.tokenizer,
      outPath: path,
    });
    const selfExtend = { groupSize: 8, neighborWindow: 256 };
    const text = readFileSync(sharedModelPaths.validationText, "utf8").slice(0, 20000);
    const context = await createSelfExtendContext({
      model: path,
      ...selfExtend,
      contextSize: 2048,
      threads: 1,
    });
    const reference = await (await createReferenceBackend().loadModel({ path })).createSession({
      selfExtend,
      contextSize: 2048,
    });
    try {
      const prompt = [context.model.tokens.bos as number, ...context.tokenize(text)].slice(0, 3 * 512);
      expect(prompt.length).toBe(3 * 512);
      const ours = await greedyRun(context, prompt, generatedTokens);
      const theirs = await greedyRun(reference, prompt, generatedTokens);
      expect(ours.tokens).toEqual(theirs.tokens);
      const V = context.vocabularySize;
      const tolerance = tolerances.stories260K.exact.float32;
      const comparison = compareLogSoftmax(logSoftmaxRows(theirs.promptRows, V), ours.promptRows, V);
      expect(comparison.maxDifference).toBeLessThanOrEqual(tolerance.maxLogSoftmaxDifference);
      // Raw logits (native bridge) against the reference's raw logits: no per-row constant hides
      // an offset, no floor hides the tail.
      expect(context.logitKind).toBe("logits");
      const rawDifference = largestDifference(theirs.promptRows, ours.promptRows);
      console.info(
        `stories260K exact: max |dlogit| ${rawDifference.toExponential(3)}, max |dlogp| ${comparison.maxDifference.toExponential(3)}`,
      );
      expect(rawDifference).toBeLessThanOrEqual(tolerance.maxLogitDifference);
      expect(comparison.agreement).toBeGreaterThanOrEqual(tolerance.greedyAgreement);
    } finally {
      await context.dispose();
    }
  });
});
