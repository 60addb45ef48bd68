/**
 * Bad input fails with a clear error before anything is evaluated; the v1 backend, abort,
 * progress and text streaming work. (The node-llama-cpp version check: node-llama-cpp-version.test.ts.)
 */

import { join } from "node:path";
import {
  ContextLengthError,
  generateTokens,
  groupQueryPosition,
  SelfExtendConfigError,
  TokenOutsideVocabularyError,
} from "@self-extend/core";
import {
  generateTinyModel,
  importLlama2c,
  tinyModelSpec,
  UnsupportedArchitectureError,
  writeGguf,
  writeLlamaGguf,
} from "@self-extend/models/node";
import { sharedModelPaths, useTemporaryFolder } from "@self-extend/test-fixtures";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import { createLlamaCppBackend, createSelfExtendContext } from "../src/index.js";
import { seededTokens } from "./helpers.js";

const temporaryFolder = useTemporaryFolder("llama-cpp-errors-");

function tinyModelPath(name = "llama-h8-mha"): string {
  const path = join(temporaryFolder(), `${name}.gguf`);
  writeLlamaGguf(path, generateTinyModel(tinyModelSpec(name), 5));
  return path;
}

describe.sequential("bad input fails before evaluation", () => {
  it("W % G != 0, bad mode, float64 cache, missing G/W", async () => {
    const path = tinyModelPath();
    await expect(createSelfExtendContext({ model: path, groupSize: 4, neighborWindow: 10 })).rejects.toThrow(
      /neighborWindow = 10 is invalid: must be a multiple of groupSize \(4\)/,
    );
    await expect(
      createSelfExtendContext({ model: path, groupSize: 4, neighborWindow: 16, mode: "fastest" as never }),
    ).rejects.toThrow(SelfExtendConfigError);
    await expect(
      createSelfExtendContext({
        model: path,
        groupSize: 4,
        neighborWindow: 16,
        cachePrecision: "float64" as never,
      }),
    ).rejects.toThrow(/cachePrecision/);
    await expect(createSelfExtendContext({ model: path })).rejects.toThrow(
      /groupSize and neighborWindow|targetContext/,
    );
  });

  it("a contextSize past (L - W) * G + W or W >= L is refused at creation; a prompt past contextSize leaves the cache untouched", async () => {
    const path = tinyModelPath();
    // L = 64, G = 4, W = 16: at most 208 tokens.
    await expect(
      createSelfExtendContext({
        model: path,
        groupSize: 4,
        neighborWindow: 16,
        contextSize: 300,
        threads: 1,
      }),
    ).rejects.toThrow(/contextSize = 300 is invalid: .*\(L - W\) \* G \+ W = 208/);
    await expect(
      createSelfExtendContext({ model: path, groupSize: 4, neighborWindow: 64, threads: 1 }),
    ).rejects.toThrow(/neighborWindow = 64 is invalid: must be smaller than the trained context L = 64/);
    const context = await createSelfExtendContext({
      model: path,
      groupSize: 4,
      neighborWindow: 16,
      threads: 1,
    });
    try {
      expect(context.options.contextSize).toBe(208);
      await expect(context.evaluate(seededTokens(209, 64, 7))).rejects.toThrow(ContextLengthError);
      await expect(context.evaluate(seededTokens(209, 64, 7))).rejects.toThrow(/contextSize = 208/);
      expect(context.tokenCount).toBe(0);
      expect(context.largestCachedPosition).toBe(-1);
      await context.evaluate(seededTokens(200, 64, 7), { logits: "none" });
      await expect(context.evaluate(seededTokens(9, 64, 7))).rejects.toThrow(ContextLengthError);
      expect(context.tokenCount).toBe(200);
      await expect(context.evaluate([64])).rejects.toThrow(TokenOutsideVocabularyError);
      await expect(context.evaluate([64])).rejects.toThrow(
        /token id 64 at index 0 is outside the vocabulary/,
      );
    } finally {
      await context.dispose();
    }
    const small = await createSelfExtendContext({
      model: path,
      groupSize: 4,
      neighborWindow: 16,
      contextSize: 50,
      threads: 1,
    });
    try {
      await expect(small.evaluate(seededTokens(51, 64, 7))).rejects.toThrow(/contextSize/);
      expect(small.largestCachedPosition).toBe(-1);
    } finally {
      await small.dispose();
    }
  });

  it("unsupported architectures are refused from the file header", async () => {
    const mRope = join(temporaryFolder(), "qwen2vl.gguf");
    writeGguf(mRope, {
      metadata: { "general.architecture": { type: "string", value: "qwen2vl" } },
      tensors: [],
    });
    await expect(createSelfExtendContext({ model: mRope, groupSize: 4, neighborWindow: 16 })).rejects.toThrow(
      UnsupportedArchitectureError,
    );
    const backend = createLlamaCppBackend();
    await expect(backend.loadModel({ path: mRope })).rejects.toThrow(/qwen2vl/);
    const mistral = tinyModelPath("mistral-h64-gqa2");
    await expect(
      createSelfExtendContext({ model: mistral, groupSize: 4, neighborWindow: 16 }),
    ).rejects.toThrow(/architecture = "mistral" is invalid/);
  });

  it("gemma2 with W below its sliding window is refused in one line with the reason (llama.cpp measures the window on the positions Self-Extend moves)", async () => {
    const path = join(temporaryFolder(), "gemma2.gguf");
    const spec = {
      ...tinyModelSpec("llama-h8-mha"),
      name: "gemma2",
      architecture: "gemma2" as const,
      gemma2: { slidingWindowSize: 24 },
    };
    writeLlamaGguf(path, generateTinyModel({ ...spec, tiedEmbeddings: true }, 3));
    const attempt = createSelfExtendContext({ model: path, groupSize: 4, neighborWindow: 16 });
    await expect(attempt).rejects.toThrow(
      /^neighborWindow = 16 is invalid: must be >= the model's sliding window \(24\) on llama\.cpp when groupSize > 1: llama\.cpp measures the local layers' window on cell positions, which Self-Extend keeps exact only within W$/,
    );
  });

  it("offloading layers needs a runtime with a GPU, checked when the backend is made", () => {
    expect(() => createLlamaCppBackend({ gpuLayers: 4 })).toThrow(
      'gpuLayers = 4 is invalid: needs a `llama` runtime with a GPU (e.g. getLlama({ gpu: "cuda" })); the default runtime is CPU-only',
    );
    expect(() => createLlamaCppBackend({ gpuLayers: -1 })).toThrow('must be a whole number >= 0 or "max"');
  });
});

describe.sequential("v1 backend", () => {
  it("loads models with the node-llama-cpp runtime it is given", async () => {
    const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
    const backend = createLlamaCppBackend({ threads: 1, llama });
    expect(await backend.checkAvailability()).toEqual({ available: true });
    const model = await backend.loadModel({ path: tinyModelPath() });
    try {
      expect(model.llamaModel.llama).toBe(llama);
    } finally {
      await model.dispose();
    }
  });

  it("is available, loads a model and generates through core's generateTokens", async () => {
    const backend = createLlamaCppBackend({ threads: 1 });
    expect(backend.name).toBe("llama-cpp");
    expect(backend.specificationVersion).toBe("v1");
    expect(await backend.checkAvailability()).toEqual({ available: true });
    const model = await backend.loadModel({ path: tinyModelPath() });
    try {
      expect(model.info).toMatchObject({ architecture: "llama", trainedContext: 64, vocabularySize: 64 });
      for (const mode of backend.capabilities.modes) {
        const session = await model.createSession({
          selfExtend: { groupSize: 4, neighborWindow: 16 },
          contextSize: 208,
          mode,
        });
        const tokens: number[] = [];
        for await (const token of generateTokens(session, seededTokens(150, 64, 7), { maxTokens: 58 }))
          tokens.push(token);
        expect(tokens).toHaveLength(58);
        expect(session.tokenCount).toBe(207);
        await session.reset();
        expect(session.tokenCount).toBe(0);
        expect((session as { largestCachedPosition?: number }).largestCachedPosition).toBe(-1);
        await session.dispose();
      }
    } finally {
      await model.dispose();
    }
  });
});

describe.sequential("abort and progress", () => {
  it("reports progress for long prompts and stops on abort", async () => {
    const options = {
      model: tinyModelPath(),
      groupSize: 4,
      neighborWindow: 16,
      contextSize: 208,
      threads: 1,
    };
    const context = await createSelfExtendContext(options);
    try {
      const events: number[] = [];
      await context.evaluate(seededTokens(100, 64, 7), {
        logits: "none",
        onProgress: ({ evaluated }) => events.push(evaluated),
      });
      expect(events.at(-1)).toBe(100);
      expect(events).toEqual([...events].sort((a, b) => a - b));
      const controller = new AbortController();
      const promise = context.evaluate(seededTokens(100, 64, 7), {
        signal: controller.signal,
        onProgress: ({ evaluated }) => {
          if (evaluated >= 10) controller.abort();
        },
      });
      await expect(promise).rejects.toThrow(/abort/i);
      // All or nothing (the v1 contract): the aborted block is gone, the cache is as before it.
      expect(context.tokenCount).toBe(100);
      expect(context.largestCachedPosition).toBe(
        groupQueryPosition(99, { groupSize: 4, neighborWindow: 16 }),
      );
      const afterAbort = await context.decode(1);
      const untouched = await createSelfExtendContext(options);
      try {
        await untouched.evaluate(seededTokens(100, 64, 7), { logits: "none" });
        expect(Array.from(await untouched.decode(1))).toEqual(Array.from(afterAbort));
      } finally {
        await untouched.dispose();
      }
    } finally {
      await context.dispose();
    }
  });
});

describe.sequential("text", () => {
  it("streams text from stories260K", async () => {
    const path = join(temporaryFolder(), "stories260K.gguf");
    importLlama2c({
      checkpointPath: sharedModelPaths.stories260K,
      tokenizerPath: sharedModelPaths.tokenizer,
      outPath: path,
    });
    const context = await createSelfExtendContext({ model: path, targetContext: 1024, threads: 1 });
    try {
      expect(context.config.groupSize).toBeGreaterThan(1);
      let text = "";
      for await (const piece of context.generateText("Once upon a time", { maxTokens: 40 })) text += piece;
      expect(text.length).toBeGreaterThan(20);
    } finally {
      await context.dispose();
    }
  });
});
