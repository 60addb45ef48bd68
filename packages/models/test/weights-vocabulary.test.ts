/**
 * Weights read from a GGUF carry its SentencePiece vocabulary, so every adapter can give its model
 * a tokenizer without reading the file twice; writing the weights back keeps it.
 */
import { join } from "node:path";
import { sharedModelPaths, useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { readGguf } from "../src/gguf-file.js";
import { tokenizerFromGguf } from "../src/gguf-vocabulary.js";
import { loadLlamaWeights, readLlama2cTokenizer, writeLlamaGguf } from "../src/model-files.js";
import { generateTinyModel, tinyModelSpec } from "../src/tiny-model.js";
import { createTokenizer } from "../src/tokenizer.js";

describe("the vocabulary of LlamaWeights", () => {
  const temporaryFolder = useTemporaryFolder();

  it("comes with weights read from a GGUF and survives writing them again", () => {
    const vocabulary = readLlama2cTokenizer(sharedModelPaths.tokenizer);
    const weights = loadLlamaWeights(sharedModelPaths.stories260K);
    expect(weights.vocabulary).toBeUndefined(); // a llama2.c checkpoint has its vocabulary elsewhere
    const first = join(temporaryFolder(), "first.gguf");
    writeLlamaGguf(first, weights, { vocabulary });
    const loaded = loadLlamaWeights(first);
    expect(loaded.vocabulary?.tokens).toEqual(vocabulary.tokens);
    const second = join(temporaryFolder(), "second.gguf");
    writeLlamaGguf(second, loaded);
    const gguf = readGguf(second);
    const text = "Once upon a time, there was a big dog.";
    expect(tokenizerFromGguf(gguf).encode(text)).toEqual(createTokenizer(vocabulary).encode(text));
    gguf.close();
  });

  it("is the synthetic placeholder for a generated model written without one", () => {
    const path = join(temporaryFolder(), "tiny.gguf");
    writeLlamaGguf(path, generateTinyModel(tinyModelSpec("llama-h8-mha"), 3));
    const { vocabulary, description } = loadLlamaWeights(path);
    expect(vocabulary?.tokens.slice(0, 3)).toEqual(["<unk>", "<s>", "</s>"]);
    expect(vocabulary?.tokens).toHaveLength(description.vocabularySize);
  });
});
