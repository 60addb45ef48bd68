/** Bad input gets clear errors before any native work, and sessions honour signals and progress. */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { ContextLengthError, SelfExtendConfigError } from "@self-extend/core";
import {
  generateTinyModel,
  type LlamaWeights,
  ModelFileError,
  tinyModelSpec,
  UnsupportedArchitectureError,
  writeLlamaGguf,
} from "@self-extend/models/node";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { createOnnxRuntimeBackend, createOnnxRuntimeModel } from "../src/index.js";

describe("backend", () => {
  it("names itself, states its capabilities and is available here", async () => {
    const backend = createOnnxRuntimeBackend();
    expect([backend.specificationVersion, backend.name]).toEqual(["v1", "onnxruntime"]);
    expect(backend.capabilities.modes).toEqual(["exact"]);
    expect(backend.capabilities.architectures).toEqual([
      "llama",
      "mistral",
      "qwen2",
      "phi3",
      "gemma",
      "gemma2",
      "gemma3",
    ]);
    expect(await backend.checkAvailability()).toEqual({ available: true });
  });
});

describe("bad input", () => {
  const temporaryFolder = useTemporaryFolder("onnxruntime-errors-");
  const weights = generateTinyModel(tinyModelSpec("llama-h8-mha"), 4);

  it("an unreadable model file is a ModelFileError", async () => {
    const backend = createOnnxRuntimeBackend({ cacheFolder: temporaryFolder() });
    await expect(backend.loadModel({ path: "/nonexistent/model.gguf" })).rejects.toThrow(ModelFileError);
    await expect(backend.loadModel({ path: "/nonexistent/model.gguf" })).rejects.toThrow(
      /cannot be read \(ENOENT\)/,
    );
  });

  it("an unsupported architecture is refused and nothing is exported", async () => {
    const cacheFolder = temporaryFolder();
    const gpt: LlamaWeights = {
      ...weights,
      description: { ...weights.description, architecture: "gpt2" as never },
    };
    const model = createOnnxRuntimeModel(gpt, { cacheFolder });
    await expect(
      model.createSession({ selfExtend: { groupSize: 2, neighborWindow: 8 }, contextSize: 64 }),
    ).rejects.toThrow(UnsupportedArchitectureError);
    expect(readdirSync(cacheFolder)).toEqual([]);
  });

  it("an unsupported architecture in a GGUF file is refused on load", async () => {
    const folder = temporaryFolder();
    const path = join(folder, "model.gguf");
    writeLlamaGguf(path, {
      ...weights,
      description: { ...weights.description, architecture: "gpt2" as never },
    });
    const cacheFolder = temporaryFolder();
    const backend = createOnnxRuntimeBackend({ cacheFolder });
    await expect(backend.loadModel({ path })).rejects.toThrow(UnsupportedArchitectureError);
    await expect(backend.loadModel({ path })).rejects.toThrow(/architecture "gpt2" is not supported/);
    expect(readdirSync(cacheFolder)).toEqual([]);
  });

  it("a contextSize past (L - W) * G + W is refused at creation; a prompt past contextSize is a ContextLengthError and leaves the session usable", async () => {
    const model = createOnnxRuntimeModel(weights, { cacheFolder: temporaryFolder(), threads: 1 });
    const selfExtend = { groupSize: 2, neighborWindow: 16 };
    // L = 64: (64 - 16) * 2 + 16 = 112.
    await expect(model.createSession({ selfExtend, contextSize: 200 })).rejects.toThrow(
      /contextSize = 200 is invalid: .*largest usable context is \(L - W\) \* G \+ W = 112/,
    );
    const session = await model.createSession({ selfExtend, contextSize: 112 });
    await expect(session.evaluate(new Array(113).fill(1))).rejects.toThrow(ContextLengthError);
    expect(session.tokenCount).toBe(0);
    await session.evaluate(new Array(112).fill(1));
    await expect(session.decode(1)).rejects.toThrow(ContextLengthError);
    await expect(
      model.createSession({ selfExtend: { groupSize: 3, neighborWindow: 16 }, contextSize: 10 }),
    ).rejects.toThrow(SelfExtendConfigError);
    await expect(
      model.createSession({ selfExtend, contextSize: 10, cachePrecision: "float16" }),
    ).rejects.toThrow(/cachePrecision = "float16" is invalid/);
    await expect(session.evaluate([64])).rejects.toThrow(/outside the vocabulary/);
    await model.dispose();
  });

  it("aborts between prefill chunks, reports progress, and stays all-or-nothing", async () => {
    const model = createOnnxRuntimeModel(weights, { cacheFolder: temporaryFolder(), threads: 1 });
    const session = await model.createSession({
      selfExtend: { groupSize: 2, neighborWindow: 16 },
      contextSize: 100,
      prefillChunkSize: 10,
    });
    const controller = new AbortController();
    const progress: number[] = [];
    const evaluation = session.evaluate(new Array(100).fill(2), {
      signal: controller.signal,
      onProgress: ({ evaluated, total }) => {
        progress.push(evaluated);
        expect(total).toBe(100);
        if (evaluated === 30) controller.abort();
      },
    });
    await expect(evaluation).rejects.toThrow(/abort/i);
    expect(progress).toEqual([10, 20, 30]);
    expect(session.tokenCount).toBe(0);
    const done: number[] = [];
    const result = await session.evaluate(new Array(100).fill(2), {
      onProgress: ({ evaluated }) => done.push(evaluated),
    });
    expect(done).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
    expect(Array.from(result.positions)).toEqual([99]);
    await model.dispose();
  });
});
