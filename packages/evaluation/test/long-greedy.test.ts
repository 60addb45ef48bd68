import { readFileSync } from "node:fs";
import { join } from "node:path";
import { generateTokens, planSelfExtend } from "@self-extend/core";
import { generateTinyModel, tinyModelSpec, writeLlamaGguf } from "@self-extend/models/node";
import { createReferenceBackend } from "@self-extend/reference";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it, vi } from "vitest";
import {
  compareGreedyRuns,
  type GreedyStep,
  longGreedyPrompt,
  parseLongGreedyArguments,
  runLongGreedy,
  runLongGreedyMain,
  runLongGreedyScript,
  topCandidates,
} from "../src/index.js";

/** Log-softmax by sorting every entry: the naive form topCandidates must agree with. */
function naiveTop(logits: readonly number[], count: number) {
  const largest = Math.max(...logits);
  const logNormalizer = largest + Math.log(logits.reduce((sum, value) => sum + Math.exp(value - largest), 0));
  return logits
    .map((value, token) => ({ token, logProbability: value - logNormalizer }))
    .sort((a, b) => b.logProbability - a.logProbability || a.token - b.token)
    .slice(0, count);
}

const step = (token: number, ...candidates: [number, number][]): GreedyStep => ({
  token,
  candidates: candidates.map(([candidate, logProbability]) => ({ token: candidate, logProbability })),
});

describe("long greedy runs (the full-shape GPU proof's loop)", () => {
  const temporary = useTemporaryFolder();

  it("topCandidates keeps the best entries as log-probabilities, as a full sort does", () => {
    let state = 3;
    const logits = Array.from({ length: 997 }, () => {
      state = (state * 48271) % 2147483647;
      return (state / 2147483647) * 40 - 20;
    });
    for (const count of [1, 5, 12]) {
      const top = topCandidates(Float32Array.from(logits), count);
      const expected = naiveTop(Array.from(Float32Array.from(logits)), count);
      expect(top.map((entry) => entry.token)).toEqual(expected.map((entry) => entry.token));
      for (const [index, entry] of top.entries()) {
        expect(entry.logProbability).toBeCloseTo(expected[index].logProbability, 10);
      }
    }
  });

  it("decodes the tokens core's greedy generator decodes, on the reference backend past the trained context", async () => {
    const spec = tinyModelSpec("llama-h8-mha");
    const modelPath = join(temporary(), "model.gguf");
    writeLlamaGguf(modelPath, generateTinyModel(spec, 1));
    const model = await createReferenceBackend().loadModel({ path: modelPath });
    try {
      const promptLength = 3 * spec.trainedContext;
      const selfExtend = planSelfExtend({
        trainedContext: spec.trainedContext,
        targetContext: promptLength + 12,
      }).config;
      expect(selfExtend.groupSize).toBeGreaterThan(1);
      const run = await runLongGreedy(model, { selfExtend, promptLength, decodeTokens: 12 });
      const session = await model.createSession({ selfExtend, contextSize: promptLength + 12 });
      const prompt = longGreedyPrompt(promptLength, spec.vocabularySize);
      const expected: number[] = [];
      for await (const token of generateTokens(session, prompt, { maxTokens: 12, temperature: 0 }))
        expected.push(token);
      await session.reset();
      const firstRow = (await session.evaluate(prompt, { logits: "last" })).logits;
      await session.dispose();
      expect(run.steps.map((entry) => entry.token)).toEqual(expected);
      expect(run.steps[0].candidates).toEqual(topCandidates(firstRow));
      expect(run.steps.every((entry) => entry.token === entry.candidates[0].token)).toBe(true);
      expect(run).toMatchObject({ promptLength, contextSize: promptLength + 12, selfExtend });
    } finally {
      await model.dispose();
    }
  });

  it("compareGreedyRuns finds the first differing step and the largest gap up to it", () => {
    const first = [step(5, [5, -0.1], [7, -2.5]), step(7, [7, -0.5], [5, -0.9]), step(1, [1, -0.2])];
    const same = [step(5, [5, -0.1004], [7, -2.5]), step(7, [7, -0.5], [9, -3]), step(1, [1, -0.2])];
    expect(compareGreedyRuns(first, same)).toEqual({
      compared: 3,
      largestLogProbabilityDifference: expect.closeTo(4e-4, 10),
      smallestMargin: expect.closeTo(0.4, 10),
    });
    const differs = [step(5, [5, -0.1]), step(5, [5, -0.6], [7, -0.7]), step(2, [2, -0.1], [1, -9])];
    expect(compareGreedyRuns(first, differs)).toEqual({
      compared: 3,
      firstDifference: 1,
      largestLogProbabilityDifference: expect.closeTo(0.3, 10),
      smallestMargin: expect.closeTo(0.4, 10),
    });
    expect(compareGreedyRuns(first, first.slice(0, 2)).compared).toBe(2);
  });

  it("parses <folder> <json out> [trained context] [multiple] [decoded tokens], refusing bad values in one line", () => {
    expect(parseLongGreedyArguments(["/m", "o.json"])).toEqual({
      folder: "/m",
      jsonPath: "o.json",
      trainedContext: 4096,
      multiple: 4,
      decodeTokens: 64,
    });
    expect(parseLongGreedyArguments(["/m", "o.json", "2048", "8", "16"])).toMatchObject({
      trainedContext: 2048,
      multiple: 8,
      decodeTokens: 16,
    });
    expect(() => parseLongGreedyArguments(["/m"])).toThrow(/^usage: <model folder> <json out>/);
    expect(() => parseLongGreedyArguments(["/m", "o", "4k"])).toThrow(
      'trained context "4k" is invalid: must be an integer >= 2',
    );
    expect(() => parseLongGreedyArguments(["/m", "o", "4096", "0"])).toThrow(
      'multiple "0" is invalid: must be a positive number',
    );
    expect(() => parseLongGreedyArguments(["/m", "o", "4096", "4", "1.5"])).toThrow(
      'decoded tokens "1.5" is invalid: must be an integer >= 1',
    );
  });

  it("the script's run writes every step to its JSON, with the planned settings", async () => {
    const spec = tinyModelSpec("llama-h8-mha");
    const modelPath = join(temporary(), "model.gguf");
    writeLlamaGguf(modelPath, generateTinyModel(spec, 2));
    const jsonPath = join(temporary(), "run.json");
    const lines: string[] = [];
    const run = await runLongGreedyScript({
      label: "reference",
      backend: createReferenceBackend(),
      modelPath,
      multiple: 2,
      decodeTokens: 20,
      jsonPath,
      device: { adapter: "test CPU" },
      log: (line) => lines.push(line),
    });
    const saved = JSON.parse(readFileSync(jsonPath, "utf8"));
    expect(saved).toMatchObject({
      label: "reference",
      adapter: "test CPU",
      contextSize: 2 * spec.trainedContext,
      promptLength: 2 * spec.trainedContext - 20,
      selfExtend: planSelfExtend({
        trainedContext: spec.trainedContext,
        targetContext: 2 * spec.trainedContext,
      }).config,
    });
    expect(saved.steps).toEqual(run.steps);
    expect(saved.steps).toHaveLength(20);
    expect(saved.prefillSeconds).toBeGreaterThan(0);
    expect(lines.at(-1)).toContain(`tokens ${run.steps.map((entry) => entry.token).join(",")}`);
  });

  it("a script's main reads its arguments, writes the model for the trained context it is given, and runs", async () => {
    const spec = tinyModelSpec("llama-h8-mha");
    const folder = temporary();
    const jsonPath = join(folder, "main.json");
    const written: [string, number][] = [];
    vi.spyOn(console, "log").mockImplementation(() => {});
    await runLongGreedyMain({
      label: "reference",
      argumentsList: [folder, jsonPath, String(spec.trainedContext), "2", "6"],
      writeModel: (modelFolder, trainedContext) => {
        written.push([modelFolder, trainedContext]);
        const path = join(modelFolder, "model.gguf");
        writeLlamaGguf(path, generateTinyModel({ ...spec, trainedContext }, 3));
        return path;
      },
      makeBackend: async () => ({ backend: createReferenceBackend(), device: { adapter: "test CPU" } }),
    });
    vi.restoreAllMocks();
    expect(written).toEqual([[folder, spec.trainedContext]]);
    const saved = JSON.parse(readFileSync(jsonPath, "utf8"));
    expect(saved).toMatchObject({
      label: "reference",
      adapter: "test CPU",
      contextSize: 2 * spec.trainedContext,
    });
    expect(saved.steps).toHaveLength(6);
  });
});
