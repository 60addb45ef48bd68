/**
 * Gemma and Gemma 2 on ONNX Runtime against the reference backend, the oracle: tiny models written
 * to GGUF files by writeLlamaGguf and read back, soft-caps small enough to bite, a sliding window
 * shorter than the prompt, prompts of 3.5x the trained context. Self-Extend with the neighbor window
 * below and above the sliding window, and plain attention (G = 1): the logits of every prompt
 * position (prefilled in chunks that cross the window edges), then greedy decoding token by token.
 */
import { join } from "node:path";
import { argmax, type SelfExtendConfig } from "@self-extend/core";
import { generateTinyModel, type LlamaWeights, type TinyModelSpec } from "@self-extend/models";
import { loadLlamaWeights, writeLlamaGguf } from "@self-extend/models/node";
import { createReferenceModel } from "@self-extend/reference";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { createOnnxRuntimeModel } from "../src/index.js";
import { compareLogits, tolerance } from "./tolerances.js";

const temporaryFolder = useTemporaryFolder("onnxruntime-gemma-");

const shape = {
  headCount: 4,
  kvHeadCount: 2,
  headSize: 16,
  feedForwardSize: 96,
  vocabularySize: 128,
  trainedContext: 64,
  ropeBase: 10000,
  hasQkvBias: false,
  tiedEmbeddings: true,
} as const;

const gemmaSpec: TinyModelSpec = { ...shape, name: "gemma-h16-gqa2", architecture: "gemma", layerCount: 2 };
// Pattern 2: layers 0 and 2 are local (window 24), layers 1 and 3 global.
const gemma2Spec: TinyModelSpec = {
  ...shape,
  name: "gemma2-h16-gqa2",
  architecture: "gemma2",
  layerCount: 4,
  gemma2: { attentionLogitSoftCap: 5, finalLogitSoftCap: 10, slidingWindowSize: 24, slidingWindowPattern: 2 },
};

/**
 * 3.5x the trained context, then greedy tokens, then given tokens decoded one by one: the session
 * holds all of them. Random tied-embedding models mostly echo their last token, so greedy decoding
 * soon repeats one token; the given tokens vary what single-token decoding sees.
 */
const promptLength = 224;
const generatedCount = 16;
const givenTokens = Array.from({ length: 16 }, (_, index) => (index * 53 + 7) % shape.vocabularySize);
const contextSize = 256;
const prefillChunkSize = 40;
const prompt = Array.from({ length: promptLength }, (_, index) => (index * 37 + 11) % shape.vocabularySize);

// Each reaches past the prompt and the generated tokens: (L - W) * G + W >= 256. Sessions take the
// plain graph for G = 1 unless told to run the Self-Extend graph, whose local layers must agree too.
const settings: readonly {
  readonly name: string;
  readonly selfExtend: SelfExtendConfig;
  readonly attentionGraph: "plain" | "self-extend";
}[] = [
  {
    name: "Self-Extend G8/W16 (W below the sliding window)",
    selfExtend: { groupSize: 8, neighborWindow: 16 },
    attentionGraph: "self-extend",
  },
  {
    name: "Self-Extend G8/W32 (W above the sliding window)",
    selfExtend: { groupSize: 8, neighborWindow: 32 },
    attentionGraph: "self-extend",
  },
  {
    name: "plain attention (G = 1)",
    selfExtend: { groupSize: 1, neighborWindow: 1 },
    attentionGraph: "plain",
  },
  {
    name: "the Self-Extend graph with G = 1",
    selfExtend: { groupSize: 1, neighborWindow: 8 },
    attentionGraph: "self-extend",
  },
];

/**
 * Writes the generated model to a GGUF file and reads it back, as a user's file would arrive. A
 * tiny Gemma 2 file gets the default score scale 1/sqrt(headSize) (only the 27B's differs), so the
 * Gemma 2 model is given another one after loading: otherwise a graph ignoring it would pass.
 */
function gemmaFile(spec: TinyModelSpec, seed: number): LlamaWeights {
  const path = join(temporaryFolder(), `${spec.name}.gguf`);
  writeLlamaGguf(path, generateTinyModel(spec, seed));
  const weights = loadLlamaWeights(path);
  if (spec.architecture !== "gemma2") return weights;
  expect(weights.description.attentionScale).toBe(Math.fround(1 / Math.sqrt(shape.headSize)));
  return { ...weights, description: { ...weights.description, attentionScale: Math.fround(1 / 6) } };
}

interface Run {
  readonly promptLogits: Float32Array;
  readonly tokens: number[];
  /** The logits of every decoded token: the greedy ones, then the given ones. */
  readonly decodeLogits: Float32Array[];
}

/** Prefills the prompt (every position's logits), decodes greedily, then decodes the given tokens. */
async function run(
  session: {
    evaluate(tokens: number[], options: { logits: "all" }): Promise<{ logits: Float32Array }>;
    decode(token: number): Promise<Float32Array>;
  },
  vocabularySize: number,
): Promise<Run> {
  const { logits: promptLogits } = await session.evaluate(prompt, { logits: "all" });
  const tokens: number[] = [];
  const decodeLogits: Float32Array[] = [];
  let next = argmax(promptLogits, (promptLength - 1) * vocabularySize, vocabularySize);
  for (let step = 0; step < generatedCount; step++) {
    tokens.push(next);
    const logits = await session.decode(next);
    decodeLogits.push(logits);
    next = argmax(logits);
  }
  for (const token of givenTokens) decodeLogits.push(await session.decode(token));
  return { promptLogits, tokens, decodeLogits };
}

/**
 * Every prompt row and every decoded row within the adapter's tolerance of the reference, the same
 * greedy tokens; returns the prompt rows' largest difference.
 */
function expectWithinTolerance(actual: Run, expected: Run): number {
  const bound = tolerance();
  const prefill = compareLogits(actual.promptLogits, expected.promptLogits, bound);
  expect(prefill.worstExcess, `prefill: largest difference ${prefill.largestDifference}`).toBeLessThanOrEqual(
    0,
  );
  expect(actual.tokens).toEqual(expected.tokens);
  actual.decodeLogits.forEach((logits, step) => {
    const decoded = compareLogits(logits, expected.decodeLogits[step], bound);
    expect(
      decoded.worstExcess,
      `decode step ${step}: largest difference ${decoded.largestDifference}`,
    ).toBeLessThanOrEqual(0);
  });
  return prefill.largestDifference;
}

async function referenceRun(weights: LlamaWeights, selfExtend: SelfExtendConfig): Promise<Run> {
  const session = await createReferenceModel(weights).createSession({ selfExtend, contextSize });
  try {
    return await run(session, weights.description.vocabularySize);
  } finally {
    await session.dispose();
  }
}

for (const [spec, seed] of [
  [gemmaSpec, 21],
  [gemma2Spec, 22],
] as const) {
  describe(`${spec.name} against the reference`, () => {
    const weights = gemmaFile(spec, seed);

    for (const { name, selfExtend, attentionGraph } of settings) {
      it(`${name}: every prompt position's logits, ${generatedCount} greedy tokens, decoded logits`, async () => {
        const expected = await referenceRun(weights, selfExtend);
        const model = createOnnxRuntimeModel(weights, { cacheFolder: temporaryFolder(), threads: 1 });
        try {
          const session = await model.createSession({
            selfExtend,
            contextSize,
            prefillChunkSize,
            attentionGraph,
          });
          expect(session.attentionGraph).toBe(attentionGraph);
          const actual = await run(session, weights.description.vocabularySize);
          expectWithinTolerance(actual, expected);
        } finally {
          await model.dispose();
        }
      });
    }
  });
}

describe("the Gemma 2 features bite on these prompts", () => {
  // An adapter that dropped one feature would compute one of these models: each must move the
  // reference's logits far past the tolerance, or the comparison above could not catch it.
  const weights = gemmaFile(gemma2Spec, 22);
  const { description } = weights;
  const withoutPostNorms: LlamaWeights = {
    ...weights,
    description: { ...description, hasPostNorms: false },
    layers: weights.layers.map(({ postAttentionNorm, postFeedForwardNorm, ...layer }) => layer),
  };
  const variants: readonly [string, LlamaWeights][] = [
    ["scaled embeddings", { ...weights, description: { ...description, embeddingScale: undefined } }],
    ["GeGLU", { ...weights, description: { ...description, feedForwardActivation: "silu" } }],
    ["the attention scale", { ...weights, description: { ...description, attentionScale: undefined } }],
    [
      "attention soft-capping",
      { ...weights, description: { ...description, attentionLogitSoftCap: undefined } },
    ],
    ["final soft-capping", { ...weights, description: { ...description, finalLogitSoftCap: undefined } }],
    ["post-norms", withoutPostNorms],
    ["sliding-window layers", { ...weights, description: { ...description, slidingWindow: undefined } }],
  ];
  const selfExtend = settings[0].selfExtend;
  let expected: Promise<Run> | undefined;
  // The capped logits stay below 10, where the tolerance is at most atol + 10 rtol.
  const bound = tolerance();
  const largestAllowed = bound.atol + 10 * bound.rtol;

  for (const [feature, changed] of variants) {
    it(`without ${feature}`, async () => {
      expected ??= referenceRun(weights, selfExtend);
      const reference = await expected;
      const without = await referenceRun(changed, selfExtend);
      const result = compareLogits(without.promptLogits, reference.promptLogits, bound);
      expect(result.largestDifference).toBeGreaterThan(100 * largestAllowed);
    });
  }
});

/**
 * One test per setting on a file written by llama.cpp's converter: every prompt position's logits,
 * greedy tokens and decoded logits against the reference, within the adapter's tolerance.
 */
function itMatchesTheReference(
  weights: LlamaWeights,
  label: string,
  settings: readonly { readonly name: string; readonly selfExtend: SelfExtendConfig }[],
): void {
  for (const { name, selfExtend } of settings) {
    it(`${name}: every prompt position's logits, ${generatedCount} greedy tokens, decoded logits`, async () => {
      const expected = await referenceRun(weights, selfExtend);
      const model = createOnnxRuntimeModel(weights, { cacheFolder: temporaryFolder(), threads: 1 });
      try {
        const session = await model.createSession({ selfExtend, contextSize, prefillChunkSize });
        const actual = await run(session, weights.description.vocabularySize);
        const largest = expectWithinTolerance(actual, expected);
        console.info(`${label} ${name}: prefill largest difference ${largest.toExponential(2)}`);
      } finally {
        await model.dispose();
      }
    });
  }
}

const converterFixtures = join(import.meta.dirname, "..", "..", "reference", "test", "fixtures");

// llama.cpp's converter's Gemma 3 (tools/gemma-models): five local layers at RoPE base 1e4 without
// scaling, one global at 1e6 with linear scaling 2, per-head query/key norms, window 48, L = 128.
describe("Gemma 3 (llama.cpp's converter's file) against the reference", () => {
  itMatchesTheReference(loadLlamaWeights(join(converterFixtures, "gemma", "gemma3.gguf")), "gemma3", [
    { name: "Self-Extend G8/W16 (W below the window)", selfExtend: { groupSize: 8, neighborWindow: 16 } },
    { name: "Self-Extend G8/W48 (W = the window)", selfExtend: { groupSize: 8, neighborWindow: 48 } },
    { name: "plain attention (G = 1)", selfExtend: { groupSize: 1, neighborWindow: 1 } },
  ]);
});

// llama.cpp's converter's Phi-3 with LongRoPE (tools/phi3-models): the long factors in sessions past
// the original context (32), the short ones within it, the attention factor in the score scale.
describe("Phi-3 LongRoPE (llama.cpp's converter's file) against the reference", () => {
  const weights = loadLlamaWeights(join(converterFixtures, "phi3", "phi3-longrope.gguf"));
  itMatchesTheReference(weights, "phi3 LongRoPE", [
    { name: "Self-Extend G8/W16, long factors", selfExtend: { groupSize: 8, neighborWindow: 16 } },
    { name: "plain attention (G = 1), long factors", selfExtend: { groupSize: 1, neighborWindow: 1 } },
  ]);

  // W = 64 covers the whole session, yet its group query positions (up to 55) make a RoPE table
  // longer than the original context: the factors must follow the session's size, not the table's.
  it("a session within the original context (short factors): every prompt position's logits", async () => {
    const { originalContext } = weights.description.longRope!;
    const shortPrompt = prompt.slice(0, originalContext);
    const selfExtend = { groupSize: 4, neighborWindow: 64 };
    const reference = await createReferenceModel(weights).createSession({
      selfExtend,
      contextSize: originalContext,
    });
    const expected = await reference.evaluate(shortPrompt, { logits: "all" });
    const model = createOnnxRuntimeModel(weights, { cacheFolder: temporaryFolder(), threads: 1 });
    try {
      const session = await model.createSession({
        selfExtend,
        contextSize: originalContext,
        prefillChunkSize,
      });
      const actual = await session.evaluate(shortPrompt, { logits: "all" });
      const compared = compareLogits(actual.logits, expected.logits, tolerance());
      console.info(
        `phi3 LongRoPE short factors: largest difference ${compared.largestDifference.toExponential(2)}`,
      );
      expect(compared.worstExcess, `largest difference ${compared.largestDifference}`).toBeLessThanOrEqual(0);
    } finally {
      await model.dispose();
    }
  });
});
