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
import type { SelfExtendConfig } from "@self-extend/core";
import {
  generateTinyModel,
  loadLlamaWeights,
  type TinyModelSpec,
  writeLlamaGguf,
} from "@self-extend/models/node";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import type { GroupKeySource } from "../src/index.js";
import { compareFileWithReference, webGpuTolerance } from "./against-reference.js";
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
// Blocks of 40 split the prompt at 40 and 80: neither a key tile nor a window boundary.
const blockSize = 40;

/** The model as a GGUF file in this test's temporary folder (removed after the test). */
function writeModel(spec: TinyModelSpec): string {
  const path = join(temporaryFolder(), `${spec.name}.gguf`);
  writeLlamaGguf(path, generateTinyModel(spec, 11));
  return path;
}

const webGpu = useWebGpuBackend();

/**
 * Every Self-Extend setting runs both ways of getting group-level keys (rotated back in the kernel,
 * or read from the copy the RoPE kernel writes beside each key): Gemma 2 and 3 keep that copy in
 * their global layers only. Plain settings have no group level.
 */
function withGroupKeySources<Setting extends { selfExtend: SelfExtendConfig; label: string }>(
  settings: readonly Setting[],
): (Setting & { groupKeys?: GroupKeySource })[] {
  return settings.flatMap((setting) =>
    setting.selfExtend.groupSize === 1
      ? [setting]
      : (["derived", "cached"] as const).map((groupKeys) => ({
          ...setting,
          label: `group keys ${groupKeys}, ${setting.label}`,
          groupKeys,
        })),
  );
}

const cases = withGroupKeySources<{ spec: TinyModelSpec; selfExtend: SelfExtendConfig; label: string }>([
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
]);

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
    async ({ spec, selfExtend, groupKeys }) => {
      const compared = await compareFileWithReference(webGpu.backend, writeModel(spec), {
        modelOptions: { groupKeys },
        selfExtend,
        prompt,
        greedyTokens,
        blockSize,
      });
      if (groupKeys !== undefined) expect(compared.groupKeys).toBe(groupKeys);
      if (spec.architecture === "gemma2") {
        // The final soft-cap bites: the largest logit sits in tanh's flat part, just below the cap.
        const largest = Math.max(...compared.referencePromptLogits.map(Math.abs));
        expect(largest).toBeGreaterThan(0.75 * finalLogitSoftCap);
        expect(largest).toBeLessThan(finalLogitSoftCap);
      }
      const difference = Math.max(compared.prompt, compared.decode);
      console.info(
        `webgpu ${spec.name} G = ${selfExtend.groupSize}, W = ${selfExtend.neighborWindow}: largest log-probability difference ${difference}`,
      );
      expect(difference).toBeLessThanOrEqual(webGpuTolerance());
    },
  );
});

/**
 * A file written by llama.cpp's converter on this adapter and on the reference: every prompt
 * position's log-probabilities, then greedy tokens decoded one at a time, within the adapter's
 * tolerance. Each setting has its own prompt length (the session holds it and the greedy tokens).
 */
function describeConverterFile(
  title: string,
  path: string,
  settings: readonly { selfExtend: SelfExtendConfig; label: string; promptLength: number }[],
): void {
  describe(title, () => {
    it.each(withGroupKeySources(settings))(
      "$label: prompt logits and greedy tokens match the reference",
      async ({ selfExtend, promptLength, groupKeys }) => {
        const compared = await compareFileWithReference(webGpu.backend, path, {
          modelOptions: { groupKeys },
          selfExtend,
          prompt: Array.from({ length: promptLength }, (_, index) => (index * 37 + 5) % 512),
          greedyTokens,
          blockSize,
        });
        console.info(
          `${title}, ${selfExtend.groupSize}/${selfExtend.neighborWindow}: prompt ${compared.prompt.toExponential(2)}, decodes ${compared.decode.toExponential(2)}`,
        );
        expect(compared.prompt).toBeLessThanOrEqual(webGpuTolerance());
        expect(compared.decode).toBeLessThanOrEqual(webGpuTolerance());
      },
      120_000,
    );
  });
}

const converterFixtures = join(import.meta.dirname, "..", "..", "reference", "test", "fixtures");

// llama.cpp's converter's Gemma 3 (tools/gemma-models): five local layers at RoPE base 1e4 without
// scaling, one global at 1e6 with linear scaling 2, per-head query/key norms, window 48, L = 128.
describeConverterFile("Gemma 3 on webgpu", join(converterFixtures, "gemma", "gemma3.gguf"), [
  {
    selfExtend: { groupSize: 8, neighborWindow: 16 },
    label: "Self-Extend G = 8, W = 16 below the window",
    promptLength: 400,
  },
  {
    selfExtend: { groupSize: 8, neighborWindow: 48 },
    label: "Self-Extend G = 8, W = 48 = the window",
    promptLength: 400,
  },
  { selfExtend: { groupSize: 1, neighborWindow: 8 }, label: "plain (G = 1)", promptLength: 400 },
]);

// llama.cpp's converter's Phi-3 with LongRoPE (tools/phi3-models): original context 32, L = 128.
describeConverterFile("Phi-3 LongRoPE on webgpu", join(converterFixtures, "phi3", "phi3-longrope.gguf"), [
  {
    selfExtend: { groupSize: 8, neighborWindow: 16 },
    label: "Self-Extend G = 8, W = 16, long factors",
    promptLength: 400,
  },
  {
    selfExtend: { groupSize: 1, neighborWindow: 8 },
    label: "plain (G = 1), long factors",
    promptLength: 100,
  },
  // W = 64 covers the whole 32-token session, yet its group query positions make a RoPE table
  // longer than the original context: the factors must follow the session's size.
  {
    selfExtend: { groupSize: 4, neighborWindow: 64 },
    label: "a session of the original context's size, short factors",
    promptLength: 32 - greedyTokens,
  },
]);
