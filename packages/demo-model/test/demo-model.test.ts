import { existsSync, statSync } from "node:fs";
import { generateTokens, planSelfExtend } from "@self-extend/core";
import { loadLlamaWeights, readGguf, tokenizerFromGguf } from "@self-extend/models/node";
import { createReferenceBackend } from "@self-extend/reference";
import { describe, expect, it } from "vitest";
import { demoModelInfo, demoModelPath } from "../src/index.js";

describe("@self-extend/demo-model", () => {
  it("points at the committed GGUF", () => {
    expect(existsSync(demoModelPath)).toBe(true);
    expect(statSync(demoModelPath).size).toBeGreaterThan(1_000_000);
    expect(statSync(demoModelPath).size).toBeLessThan(16_000_000);
  });

  it("is a small GQA Llama with 32-wide heads and a trained context of 256", () => {
    const { description, layers, tokenEmbedding } = loadLlamaWeights(demoModelPath);
    expect(description.architecture).toBe("llama");
    expect(description.trainedContext).toBe(256);
    expect(description.headSize).toBeGreaterThanOrEqual(32);
    expect(description.kvHeadCount).toBeLessThan(description.headCount);
    expect(description.headCount % description.kvHeadCount).toBe(0);
    expect(description.ropeBase).toBe(10000);
    expect(description.ropeLayout).toBe("interleaved");
    expect(layers).toHaveLength(demoModelInfo.layerCount);
    expect({
      layerCount: description.layerCount,
      embeddingSize: description.embeddingSize,
      feedForwardSize: description.feedForwardSize,
      headCount: description.headCount,
      kvHeadCount: description.kvHeadCount,
      headSize: description.headSize,
      vocabularySize: description.vocabularySize,
    }).toEqual({
      layerCount: demoModelInfo.layerCount,
      embeddingSize: demoModelInfo.embeddingSize,
      feedForwardSize: demoModelInfo.feedForwardSize,
      headCount: demoModelInfo.headCount,
      kvHeadCount: demoModelInfo.kvHeadCount,
      headSize: demoModelInfo.headSize,
      vocabularySize: demoModelInfo.vocabularySize,
    });
    expect(tokenEmbedding.length).toBe(description.vocabularySize * description.embeddingSize);
    const {
      embeddingSize: d,
      feedForwardSize: f,
      headSize: h,
      headCount: nh,
      kvHeadCount: nkv,
    } = description;
    const perLayer = 2 * d + d * nh * h * 2 + 2 * d * nkv * h + 3 * d * f;
    expect(description.vocabularySize * d + description.layerCount * perLayer + d).toBe(
      demoModelInfo.parameterCount,
    );
  });

  it("carries our own byte-fallback vocabulary laid out like tok512.bin", () => {
    const tokenizer = tokenizerFromGguf(readGguf(demoModelPath));
    const { tokens } = tokenizer.vocabulary;
    expect(tokens.length).toBe(1024);
    expect(tokens.slice(0, 3)).toEqual(["<unk>", "<s>", "</s>"]);
    expect(tokens[3]).toBe("<0x00>");
    expect(tokens[258]).toBe("<0xFF>");
    // digits are single pieces, so a pass key is one token per digit
    const ids = tokenizer.encode("The pass key is 48213.", { addBos: true });
    expect(tokenizer.decode(ids)).toBe("The pass key is 48213.");
    for (const digit of "48213") expect(ids).toContain(tokenizer.tokenId(digit));
  });

  it("writes fluent-looking story text greedily with the reference backend", async () => {
    const model = await createReferenceBackend().loadModel({ path: demoModelPath });
    const tokenizer = tokenizerFromGguf(readGguf(demoModelPath));
    const prompt = tokenizer.encode("Once upon a time", { addBos: true });
    const session = await model.createSession({
      selfExtend: planSelfExtend({ trainedContext: 256, targetContext: 256 }).config,
      contextSize: 256,
    });
    const generated: number[] = [];
    for await (const token of generateTokens(session, prompt, { maxTokens: 48 })) generated.push(token);
    const text = tokenizer.decode(generated);
    expect(text).toMatch(/^[\x20-\x7e\n]+$/);
    const words = text.split(/[^A-Za-z']+/).filter((word) => word.length > 0);
    expect(words.length).toBeGreaterThan(20);
    const common = new Set([
      "the",
      "a",
      "was",
      "she",
      "he",
      "to",
      "and",
      "her",
      "his",
      "they",
      "with",
      "there",
      "in",
      "of",
    ]);
    expect(words.filter((word) => common.has(word.toLowerCase())).length).toBeGreaterThan(5);
  }, 60_000);
});
