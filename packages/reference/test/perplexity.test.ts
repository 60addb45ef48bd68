import { createRandom } from "@self-extend/core";
import { describe, expect, it } from "vitest";
import {
  computePerplexity,
  createReferenceBackend,
  createReferenceModel,
  joinBlocksAsOneDocument,
  negativeLogLikelihood,
} from "../src/index.js";
import { createRandomWeights, llamaShapedDescription } from "./random-model.js";
import { sharedModelPaths } from "./shared-data.js";
import { validationTokens } from "./stories260K-perplexity.js";

describe("perplexity", () => {
  it("joins blocks separated by blank lines with one newline", () => {
    expect(joinBlocksAsOneDocument("Spot ran.\n\nHe was happy.\nThe end.\n \n\n\nNext story.\n")).toBe(
      "Spot ran.\nHe was happy.\nThe end.\nNext story.",
    );
  });

  it("scores every window position against the next token of the stream, with buckets", async () => {
    const model = createReferenceModel(createRandomWeights(llamaShapedDescription, 5));
    const random = createRandom(9);
    const tokens = Array.from({ length: 40 }, () =>
      Math.floor(random() * llamaShapedDescription.vocabularySize),
    );
    const selfExtend = { groupSize: 2, neighborWindow: 4 };
    const progress: number[] = [];
    const result = await computePerplexity(model, tokens, {
      contextSize: 12,
      selfExtend,
      buckets: [{ start: 4, end: 8 }],
      onProgress: ({ windowsDone, windowCount }) => progress.push(windowsDone / windowCount),
    });
    expect(result.windowCount).toBe(3);
    expect(result.predictionCount).toBe(36);
    expect(progress).toEqual([1 / 3, 2 / 3, 1]);

    let total = 0;
    let bucketTotal = 0;
    for (let window = 0; window < 3; window++) {
      const session = await model.createSession({ selfExtend, contextSize: 12 });
      const { logits, vocabularySize } = await session.evaluate(tokens.slice(window * 12, window * 12 + 12), {
        logits: "all",
      });
      for (let position = 0; position < 12; position++) {
        const loss = negativeLogLikelihood(
          logits,
          position * vocabularySize,
          vocabularySize,
          tokens[window * 12 + position + 1],
        );
        total += loss;
        if (position >= 4 && position < 8) bucketTotal += loss;
      }
    }
    expect(result.perplexity).toBeCloseTo(Math.exp(total / 36), 12);
    expect(result.buckets).toHaveLength(1);
    expect(result.buckets[0].predictionCount).toBe(12);
    expect(result.buckets[0].perplexity).toBeCloseTo(Math.exp(bucketTotal / 12), 12);

    await expect(
      computePerplexity(model, tokens, { contextSize: 12, selfExtend, windowCount: 4 }),
    ).rejects.toThrow(/windowCount = 4/);
  });

  it("tokenizes the validation text as one document with one BOS", () => {
    const tokens = validationTokens();
    expect(tokens).toHaveLength(126_048);
    expect(tokens.slice(0, 8)).toEqual([1, 301, 427, 309, 426, 301, 427, 309]);
    expect(tokens.indexOf(1, 1)).toBe(-1);
  });

  it("stories260K on a prefix of the validation text (the full table runs in perplexity-table-*.test.ts)", async () => {
    const model = await createReferenceBackend().loadModel({ path: sharedModelPaths.stories260K });
    const tokens = validationTokens();
    const plain = await computePerplexity(model, tokens, {
      contextSize: 512,
      selfExtend: { groupSize: 1, neighborWindow: 1 },
      windowCount: 8,
    });
    const extended = await computePerplexity(model, tokens, {
      contextSize: 1024,
      selfExtend: { groupSize: 4, neighborWindow: 256 },
      windowCount: 2,
      buckets: [{ start: 512, end: 1024 }],
    });
    // Pinned from this implementation (a regression guard, not an independent number); the full
    // runs check the spec's independent table. 1e-6 leaves room for a different Math.exp.
    expect(plain.predictionCount).toBe(4096);
    expect(plain.perplexity).toBeCloseTo(3.468971431, 6);
    expect(extended.perplexity).toBeCloseTo(3.506941598, 6);
    expect(extended.buckets[0].perplexity).toBeCloseTo(3.682784264, 6);
  }, 120_000);
});
