/**
 * G = 1 against plain node-llama-cpp, position bookkeeping of every mode against core's map and
 * llama.cpp's loop, and fast-prefill's measured deviation.
 */
import { join } from "node:path";
import { groupQueryPosition, type SelfExtendConfig } from "@self-extend/core";
import { generateTinyModel, tinyModelSpec, writeLlamaGguf } from "@self-extend/models/node";
import { createReferenceModel } from "@self-extend/reference";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import type { Token } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import { createSelfExtendContext, fastPrefillPositionError, getCpuLlama } from "../src/index.js";
import { requireNativeBridge } from "../src/native-bridge.js";
import {
  compareLogSoftmax,
  concatenateRows,
  greedyRun,
  largestDifference,
  logSoftmaxRows,
  seededTokens,
  tolerance,
} from "./helpers.js";

const temporaryFolder = useTemporaryFolder("llama-cpp-modes-");

function tinyModel(name: string) {
  const spec = tinyModelSpec(name);
  const weights = generateTinyModel(spec, 3);
  const path = join(temporaryFolder(), `${name}.gguf`);
  writeLlamaGguf(path, weights);
  return { spec, weights, path };
}

describe.sequential("G = 1", () => {
  it("matches plain node-llama-cpp exactly (raw logits, bit for bit, and greedy tokens)", async () => {
    const { spec, path } = tinyModel("llama-h16-gqa2");
    const prompt = seededTokens(100, spec.vocabularySize, 7);
    const contextSize = 200;
    const ours = await createSelfExtendContext({
      model: path,
      groupSize: 1,
      neighborWindow: 1,
      contextSize,
      threads: 1,
      batchSize: 128,
    });
    const plainContext = await ours.model.createContext({
      contextSize,
      sequences: 1,
      batchSize: 128,
      threads: 1,
      flashAttention: false,
      experimentalKvCacheKeyType: "F32",
      experimentalKvCacheValueType: "F32",
    });
    try {
      const V = spec.vocabularySize;
      expect(ours.logitKind).toBe("logits");
      const plainSequence = plainContext.getSequence();
      // node-llama-cpp's own evaluation of the prompt (one batch, a row for every token), whose
      // raw logits we then read from its context with the native bridge.
      await plainSequence.controlledEvaluate(
        prompt.map((token) => [token as Token, { generateNext: { token: true } }] as const),
      );
      const bridge = await requireNativeBridge("this test");
      const internals = plainContext as unknown as { _ctx: unknown };
      const model = ours.model as unknown as { _model: unknown };
      const plainRows = new Float32Array(prompt.length * V);
      for (let row = 0; row < prompt.length; row++) {
        bridge.readLogits(internals._ctx, model._model, row, plainRows.subarray(row * V, (row + 1) * V));
      }
      const evaluation = await ours.evaluate(prompt, { logits: "all" });
      expect(evaluation.logitKind).toBe("logits");
      expect(largestDifference(plainRows, evaluation.logits)).toBeLessThanOrEqual(
        tolerance({ check: "plain-against-node-llama-cpp" }).atol,
      );

      // Greedy continuation: node-llama-cpp's own generator against ours.
      const plainTokens: number[] = [];
      await plainSequence.clearHistory();
      for await (const token of plainSequence.evaluate(prompt as Token[], { temperature: 0 })) {
        plainTokens.push(token);
        if (plainTokens.length === 64) break;
      }
      await ours.reset();
      const ourTokens: number[] = [];
      for await (const token of ours.generateTokens(prompt, { maxTokens: 64 })) ourTokens.push(token);
      expect(ourTokens).toEqual(plainTokens);
    } finally {
      await plainContext.dispose();
      await ours.dispose();
    }
  });
});

describe.sequential("position bookkeeping", () => {
  it("exact mode: llama.cpp's largest position is core's groupQueryPosition after every token", async () => {
    const { spec, path } = tinyModel("llama-h8-mha");
    const config: SelfExtendConfig = { groupSize: 4, neighborWindow: 16 };
    const context = await createSelfExtendContext({ model: path, ...config, contextSize: 192, threads: 1 });
    try {
      const tokens = seededTokens(192, spec.vocabularySize, 7);
      // A plain block first, then single tokens and small blocks across the window edge.
      const blocks = [10, 1, 5, 1, 1, 3, 20, ...Array.from({ length: 151 }, () => 1)];
      let offset = 0;
      for (const size of blocks) {
        await context.evaluate(tokens.slice(offset, offset + size), { logits: "none" });
        offset += size;
        const last = offset - 1;
        const expected = last < config.neighborWindow ? last : groupQueryPosition(last, config);
        expect(context.largestCachedPosition).toBe(expected);
      }
      expect(offset).toBe(192);
    } finally {
      await context.dispose();
    }
  });

  it("llama.cpp-compatible mode: positions follow llama.cpp's n_past through its group-attention loop", async () => {
    const { spec, path } = tinyModel("llama-h8-mha");
    const config: SelfExtendConfig = { groupSize: 4, neighborWindow: 16 };
    const llamaCppBatchSize = 32;
    const context = await createSelfExtendContext({
      model: path,
      ...config,
      contextSize: 200,
      threads: 1,
      mode: "llama.cpp-compatible",
      llamaCppBatchSize,
    });
    try {
      const tokens = seededTokens(200, spec.vocabularySize, 7);
      // llama-completion's bookkeeping, from its source: compress before each decode.
      let nPast = 0;
      let gaI = 0;
      const step = (count: number) => {
        while (nPast >= gaI + config.neighborWindow) {
          nPast -= (config.neighborWindow / config.groupSize) * (config.groupSize - 1);
          gaI += config.neighborWindow / config.groupSize;
        }
        nPast += count;
      };
      await context.evaluate(tokens.slice(0, 100), { logits: "last" });
      for (let offset = 0; offset < 100; offset += llamaCppBatchSize)
        step(Math.min(llamaCppBatchSize, 100 - offset));
      expect(context.largestCachedPosition).toBe(nPast - 1);
      for (let index = 100; index < 200; index++) {
        await context.decode(tokens[index]);
        step(1);
        expect(context.largestCachedPosition).toBe(nPast - 1);
      }
    } finally {
      await context.dispose();
    }
  });
});

describe.sequential("fast-prefill", () => {
  it("stays within the stated deviation from exact, and decodes with exact positions", async () => {
    const { spec, weights, path } = tinyModel("llama-h32-gqa4-base1e6");
    const L = spec.trainedContext;
    const config: SelfExtendConfig = { groupSize: 4, neighborWindow: 64 };
    const prompt = seededTokens(3 * L, spec.vocabularySize, 7);
    const contextSize = prompt.length + 64;
    const fast = await createSelfExtendContext({
      model: path,
      ...config,
      contextSize,
      threads: 1,
      mode: "fast-prefill",
    });
    const reference = await createReferenceModel(weights).createSession({ selfExtend: config, contextSize });
    try {
      const ours = await greedyRun(fast, prompt, 64);
      expect(fast.largestCachedPosition).toBe(groupQueryPosition(contextSize - 2, config));
      const theirs = await greedyRun(reference, prompt, 64);
      const V = spec.vocabularySize;
      const promptDeviation = compareLogSoftmax(logSoftmaxRows(theirs.promptRows, V), ours.promptRows, V);
      const decodeDeviation = compareLogSoftmax(
        logSoftmaxRows(concatenateRows(theirs.decodeRows), V),
        concatenateRows(ours.decodeRows),
        V,
      );
      const promptBound = tolerance({ check: "fast-prefill-prompt", mode: "fast-prefill" }).atol;
      const decodeBound = tolerance({ check: "fast-prefill-decode", mode: "fast-prefill" }).atol;
      console.info(
        `fast-prefill (chunk ${config.groupSize}, largest position error ${fastPrefillPositionError(config.groupSize, config.groupSize)}):` +
          ` prompt max |dlogp| ${promptDeviation.maxDifference.toFixed(4)}, argmax agreement ${promptDeviation.agreement.toFixed(4)};` +
          ` decode max |dlogp| ${decodeDeviation.maxDifference.toFixed(4)}; greedy tokens equal: ${ours.tokens.join() === theirs.tokens.join()}`,
      );
      expect(promptDeviation.maxDifference).toBeLessThanOrEqual(promptBound);
      expect(decodeDeviation.maxDifference).toBeLessThanOrEqual(decodeBound);
    } finally {
      await fast.dispose();
    }
  });
});

describe("float16 cache drift (measured, exact mode)", () => {
  it("stays within the float16 tolerance", async () => {
    const { spec, weights, path } = tinyModel("qwen2-h32-gqa4-nobias-base1e6");
    const config: SelfExtendConfig = { groupSize: 8, neighborWindow: 64 };
    const prompt = seededTokens(3 * spec.trainedContext, spec.vocabularySize, 7);
    const contextSize = prompt.length + 128;
    const context = await createSelfExtendContext({
      model: path,
      ...config,
      contextSize,
      threads: 1,
      cachePrecision: "float16",
    });
    const reference = await createReferenceModel(weights).createSession({ selfExtend: config, contextSize });
    try {
      const ours = await greedyRun(context, prompt, 128);
      const theirs = await greedyRun(reference, prompt, 128);
      const V = spec.vocabularySize;
      const all = compareLogSoftmax(
        logSoftmaxRows(concatenateRows([theirs.promptRows, ...theirs.decodeRows]), V),
        concatenateRows([ours.promptRows, ...ours.decodeRows]),
        V,
      );
      console.info(
        `float16 cache: max |dlogp| ${all.maxDifference.toFixed(5)}, argmax agreement ${all.agreement.toFixed(4)}`,
      );
      expect(all.maxDifference).toBeLessThanOrEqual(
        tolerance({ check: "float16-cache-tiny", cachePrecision: "float16" }).atol,
      );
    } finally {
      await context.dispose();
    }
  });
});

describe("runtime", () => {
  it("shares one CPU Llama", async () => {
    expect(await getCpuLlama()).toBe(await getCpuLlama());
  });
});
