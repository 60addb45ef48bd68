import { createRandom, type SelfExtendConfig } from "@self-extend/core";
import { describe, expect, it } from "vitest";
import { createReferenceModel, type ReferenceModel } from "../src/index.js";
import { naiveForwardPass } from "./naive-forward-pass.js";
import { createRandomWeights, llamaShapedDescription, qwenShapedDescription } from "./random-model.js";

function randomTokens(count: number, vocabularySize: number, seed: number): number[] {
  const random = createRandom(seed);
  return Array.from({ length: count }, () => Math.floor(random() * vocabularySize));
}

/** All logits of `tokens`, fed as blocks of the given sizes (cycled) with the given session block size. */
async function logitsInBlocks(
  model: ReferenceModel,
  tokens: readonly number[],
  selfExtend: SelfExtendConfig,
  evaluateSizes: readonly number[],
  blockSize?: number,
): Promise<Float32Array> {
  const session = await model.createSession({
    selfExtend,
    contextSize: tokens.length,
    allowBeyondUsableContext: true,
    ...(blockSize === undefined ? {} : { blockSize }),
  });
  const vocabularySize = model.info.vocabularySize;
  const logits = new Float32Array(tokens.length * vocabularySize);
  let start = 0;
  for (let call = 0; start < tokens.length; call++) {
    const size = Math.min(evaluateSizes[call % evaluateSizes.length], tokens.length - start);
    const evaluation = await session.evaluate(tokens.slice(start, start + size), { logits: "all" });
    expect(Array.from(evaluation.positions)).toEqual(
      Array.from({ length: size }, (_, index) => start + index),
    );
    logits.set(evaluation.logits, start * vocabularySize);
    start += size;
  }
  expect(session.tokenCount).toBe(tokens.length);
  return logits;
}

function largestDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let largest = 0;
  for (let index = 0; index < a.length; index++) largest = Math.max(largest, Math.abs(a[index] - b[index]));
  return largest;
}

const configs: readonly [string, SelfExtendConfig][] = [
  ["plain", { groupSize: 1, neighborWindow: 1 }],
  ["Self-Extend G=2 W=4", { groupSize: 2, neighborWindow: 4 }],
  ["Self-Extend G=3 W=6", { groupSize: 3, neighborWindow: 6 }],
  ["Self-Extend G=4 W=4", { groupSize: 4, neighborWindow: 4 }],
];

describe.each([
  ["llama-shaped", llamaShapedDescription],
  ["qwen2-shaped (half-split, partial rotary, scaling, biases)", qwenShapedDescription],
])("forward pass on a random %s model", (_name, description) => {
  const model = createReferenceModel(createRandomWeights(description, 7));
  const tokens = randomTokens(45, description.vocabularySize, 11);

  it.each(configs)(
    "%s: chunked prefill and token-by-token decode give the same logits",
    async (_label, config) => {
      const decoded = await logitsInBlocks(model, tokens, config, [1]);
      for (const [sizes, blockSize] of [
        [[45], undefined],
        [[45], 7],
        [[13, 1, 8, 23], 5],
        [[3], 64],
        [[20, 25], 1],
      ] as const) {
        const chunked = await logitsInBlocks(model, tokens, config, sizes, blockSize);
        expect(largestDifference(chunked, decoded)).toBeLessThanOrEqual(1e-6);
      }
    },
  );

  it.each(configs)("%s: agrees with an independent naive forward pass", async (_label, config) => {
    const ours = await logitsInBlocks(model, tokens, config, [17, 28]);
    const naive = naiveForwardPass(model.weights, tokens, config.groupSize, config.neighborWindow).flat();
    let largestRelative = 0;
    for (let index = 0; index < naive.length; index++) {
      largestRelative = Math.max(
        largestRelative,
        Math.abs(ours[index] - naive[index]) / (1 + Math.abs(naive[index])),
      );
    }
    // float32 rounding of the returned logits is the only expected difference.
    expect(largestRelative).toBeLessThan(1e-6);
  });

  it("G = 1 is plain attention for any W", async () => {
    const plain = await logitsInBlocks(model, tokens, { groupSize: 1, neighborWindow: 1 }, [45]);
    for (const neighborWindow of [2, 5, 16, 44, 45, 100]) {
      const withWindow = await logitsInBlocks(model, tokens, { groupSize: 1, neighborWindow }, [20, 25]);
      expect(largestDifference(withWindow, plain)).toBeLessThanOrEqual(1e-6);
    }
  });

  it("Self-Extend changes nothing while every key is a neighbor (N <= W)", async () => {
    const short = tokens.slice(0, 16);
    const plain = await logitsInBlocks(model, short, { groupSize: 1, neighborWindow: 1 }, [16]);
    const extended = await logitsInBlocks(model, short, { groupSize: 4, neighborWindow: 16 }, [16]);
    expect(largestDifference(extended, plain)).toBeLessThanOrEqual(1e-6);
    const longer = await logitsInBlocks(model, tokens, { groupSize: 4, neighborWindow: 16 }, [45]);
    const plainLonger = await logitsInBlocks(model, tokens, { groupSize: 1, neighborWindow: 1 }, [45]);
    expect(largestDifference(longer, plainLonger)).toBeGreaterThan(1e-3);
  });
});
