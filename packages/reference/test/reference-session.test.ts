import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ContextLengthError,
  SelfExtendConfigError,
  specificationVersion,
  TokenOutsideVocabularyError,
} from "@self-extend/core";
import { readLlama2cCheckpoint, writeLlamaGguf } from "@self-extend/models/node";
import { describe, expect, it } from "vitest";
import { createReferenceBackend, createReferenceModel } from "../src/index.js";
import { createRandomWeights, llamaShapedDescription } from "./random-model.js";
import { sharedModelPaths } from "./shared-data.js";

// trainedContext 32: with G = 2, W = 8 the usable context is (32 - 8) * 2 + 8 = 56.
const model = createReferenceModel(createRandomWeights(llamaShapedDescription, 3));
const tokens = Array.from(
  { length: 60 },
  (_, index) => (index * 5 + 1) % llamaShapedDescription.vocabularySize,
);
const plain = { groupSize: 1, neighborWindow: 1 } as const;
const extended = { groupSize: 2, neighborWindow: 8 } as const;

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

describe("reference backend", () => {
  it("describes itself through the v1 contract", async () => {
    const backend = createReferenceBackend();
    expect(backend.specificationVersion).toBe(specificationVersion);
    expect(backend.name).toBe("reference");
    expect(backend.capabilities.modes).toEqual(["exact"]);
    expect(backend.capabilities.cachePrecisions).toEqual(["float64"]);
    expect([...backend.capabilities.architectures].sort()).toEqual([
      "gemma",
      "gemma2",
      "gemma3",
      "llama",
      "mistral",
      "phi3",
      "qwen2",
    ]);
    expect(await backend.checkAvailability()).toEqual({ available: true });
  });

  it("loads a llama2.c checkpoint", async () => {
    const loaded = await createReferenceBackend().loadModel({ path: sharedModelPaths.stories260K });
    expect(loaded.info).toMatchObject({
      architecture: "llama",
      trainedContext: 512,
      vocabularySize: 512,
      layerCount: 5,
      headCount: 8,
      kvHeadCount: 4,
      headSize: 8,
    });
    await loaded.dispose();
  });

  it("loads the same model from a GGUF file and gives the same logits", async () => {
    const folder = mkdtempSync(join(tmpdir(), "reference-gguf-"));
    try {
      const path = join(folder, "stories260K.gguf");
      writeLlamaGguf(path, readLlama2cCheckpoint(sharedModelPaths.stories260K));
      const backend = createReferenceBackend();
      const fromGguf = await backend.loadModel({ path });
      const fromCheckpoint = await backend.loadModel({ path: sharedModelPaths.stories260K });
      const { name: _ggufName, ...ggufInfo } = fromGguf.info;
      const { name: _checkpointName, ...checkpointInfo } = fromCheckpoint.info;
      expect(ggufInfo).toEqual(checkpointInfo);
      const prompt = [1, 301, 427, 309, 426, 301, 427, 309, 394, 265];
      const logitsOf = async (loaded: typeof fromGguf) => {
        const session = await loaded.createSession({
          selfExtend: { groupSize: 2, neighborWindow: 4 },
          contextSize: 16,
        });
        return Array.from((await session.evaluate(prompt, { logits: "all" })).logits);
      };
      expect(await logitsOf(fromGguf)).toEqual(await logitsOf(fromCheckpoint));
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});

describe("reference session", () => {
  it("rejects token ids outside the vocabulary, naming the id, before any work", async () => {
    const session = await model.createSession({ selfExtend: plain, contextSize: 64 });
    await session.evaluate([1, 2]);
    for (const bad of [37, -1, 2.5, Number.NaN]) {
      const error = await rejection(session.evaluate([1, bad, 3]));
      expect(error).toBeInstanceOf(TokenOutsideVocabularyError);
      expect((error as Error).message).toContain(`token id ${bad} at index 1`);
    }
    expect(session.tokenCount).toBe(2);
  });

  it("refuses to pass contextSize", async () => {
    const session = await model.createSession({ selfExtend: plain, contextSize: 10 });
    await session.evaluate(tokens.slice(0, 8));
    const error = await rejection(session.evaluate(tokens.slice(0, 3)));
    expect(error).toBeInstanceOf(ContextLengthError);
    expect((error as ContextLengthError).length).toBe(11);
    expect(session.tokenCount).toBe(8);
    await session.evaluate(tokens.slice(0, 2));
    expect(session.tokenCount).toBe(10);
  });

  it("refuses to pass (L - W) * G + W with Self-Extend: at creation, and before any work", async () => {
    const refused = await rejection(model.createSession({ selfExtend: extended, contextSize: 60 }));
    expect(refused).toBeInstanceOf(SelfExtendConfigError);
    expect((refused as Error).message).toContain("(L - W) * G + W = 56");
    const session = await model.createSession({ selfExtend: extended, contextSize: 56 });
    await session.evaluate(tokens.slice(0, 50));
    const error = await rejection(session.evaluate(tokens.slice(0, 7)));
    expect(error).toBeInstanceOf(ContextLengthError);
    expect((error as ContextLengthError).largestUsableContext).toBe(56);
    expect(session.tokenCount).toBe(50);
    await session.evaluate(tokens.slice(0, 6));
    expect(session.tokenCount).toBe(56);
  });

  it("lets plain attention run past the trained context, and Self-Extend past its limit only when asked", async () => {
    const plainSession = await model.createSession({ selfExtend: plain, contextSize: 60 });
    await plainSession.evaluate(tokens);
    expect(plainSession.tokenCount).toBe(60);
    const permissive = await model.createSession({
      selfExtend: extended,
      contextSize: 60,
      allowBeyondUsableContext: true,
    });
    await permissive.evaluate(tokens);
    expect(permissive.tokenCount).toBe(60);
  });

  it("rejects options it cannot honour", async () => {
    await expect(model.createSession({ selfExtend: plain, contextSize: 0 })).rejects.toBeInstanceOf(
      SelfExtendConfigError,
    );
    await expect(
      model.createSession({ selfExtend: plain, contextSize: 8, mode: "fast-prefill" }),
    ).rejects.toThrow(/mode/);
    await expect(
      model.createSession({ selfExtend: plain, contextSize: 8, cachePrecision: "float16" }),
    ).rejects.toThrow(/cachePrecision/);
    await expect(
      model.createSession({ selfExtend: { groupSize: 3, neighborWindow: 8 }, contextSize: 8 }),
    ).rejects.toThrow(/multiple of groupSize/);
  });

  it("returns the logits asked for", async () => {
    const session = await model.createSession({ selfExtend: extended, contextSize: 56, blockSize: 4 });
    const all = await session.evaluate(tokens.slice(0, 10), { logits: "all" });
    const vocabularySize = all.vocabularySize;
    const row = (index: number) =>
      Array.from(all.logits.subarray(index * vocabularySize, (index + 1) * vocabularySize));
    for (const [selection, indices] of [
      ["last", [9]],
      ["none", []],
      [
        [7, 0, 7],
        [7, 0, 7],
      ],
    ] as const) {
      await session.reset();
      const evaluation = await session.evaluate(tokens.slice(0, 10), { logits: selection });
      expect(Array.from(evaluation.positions)).toEqual(indices);
      expect(evaluation.logits.length).toBe(indices.length * vocabularySize);
      indices.forEach((index, slot) => {
        expect(
          Array.from(evaluation.logits.subarray(slot * vocabularySize, (slot + 1) * vocabularySize)),
        ).toEqual(row(index));
      });
    }
    await session.reset();
    await session.evaluate(tokens.slice(0, 9));
    expect(Array.from(await session.decode(tokens[9]))).toEqual(row(9));
    await expect(session.evaluate(tokens.slice(0, 2), { logits: [2] })).rejects.toBeInstanceOf(RangeError);
  });

  it("reports progress per block and stops at an abort, leaving the session as it was", async () => {
    const reference = await model.createSession({ selfExtend: extended, contextSize: 56 });
    const expected = await reference.evaluate(tokens.slice(0, 40), { logits: "all" });

    const session = await model.createSession({ selfExtend: extended, contextSize: 56, blockSize: 8 });
    await session.evaluate(tokens.slice(0, 4));
    const controller = new AbortController();
    const progress: number[] = [];
    const reason = new Error("stop here");
    const error = await rejection(
      session.evaluate(tokens.slice(4, 40), {
        signal: controller.signal,
        onProgress: ({ evaluated, total }) => {
          progress.push(evaluated);
          expect(total).toBe(36);
          if (evaluated >= 16) controller.abort(reason);
        },
      }),
    );
    expect(error).toBe(reason);
    expect(progress).toEqual([8, 16]);
    expect(session.tokenCount).toBe(4);

    const progressAfter: number[] = [];
    const resumed = await session.evaluate(tokens.slice(4, 40), {
      logits: "all",
      onProgress: ({ evaluated }) => progressAfter.push(evaluated),
    });
    expect(progressAfter).toEqual([8, 16, 24, 32, 36]);
    expect(Array.from(resumed.logits)).toEqual(
      Array.from(expected.logits.subarray(4 * expected.vocabularySize)),
    );

    const aborted = AbortSignal.abort(new Error("already"));
    await expect(session.evaluate(tokens.slice(0, 2), { signal: aborted })).rejects.toThrow("already");
    await expect(session.decode(tokens[0], { signal: aborted })).rejects.toThrow("already");
    expect(session.tokenCount).toBe(40);
  });

  it("refuses a second evaluation while one runs, and any call after dispose", async () => {
    const session = await model.createSession({ selfExtend: plain, contextSize: 60, blockSize: 4 });
    const running = session.evaluate(tokens.slice(0, 40));
    await expect(session.evaluate([1])).rejects.toThrow(/busy/);
    await running;
    expect(session.tokenCount).toBe(40);
    await session.reset();
    expect(session.tokenCount).toBe(0);
    await session.dispose();
    await expect(session.evaluate([1])).rejects.toThrow(/disposed/);
  });
});
