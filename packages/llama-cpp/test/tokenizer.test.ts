/**
 * The v1 model's tokenizer is llama.cpp's (through node-llama-cpp). On the demo model it must give
 * the ids of @self-extend/models' SentencePiece tokenizer, an independent implementation read from
 * the same GGUF vocabulary, so text means the same tokens on every adapter.
 */
import { demoModelPath } from "@self-extend/demo-model";
import { readGguf, tokenizerFromGguf } from "@self-extend/models/node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLlamaCppBackend, type LlamaCppModel } from "../src/index.js";

const texts = [
  "Once upon a time, there was a little girl named Lily.",
  "The pass key is 71432. Remember it. 71432 is the pass key.",
  "What is the pass key? The pass key is",
];

describe("llama-cpp model tokenizer", () => {
  let model: LlamaCppModel;
  const gguf = readGguf(demoModelPath);
  const reference = tokenizerFromGguf(gguf);
  gguf.close();

  beforeAll(async () => {
    model = await createLlamaCppBackend({ threads: 1 }).loadModel({ path: demoModelPath });
  });
  afterAll(async () => {
    await model?.dispose();
  });

  it("names the vocabulary's BOS and EOS", () => {
    expect(model.tokenizer.bosToken).toBe(reference.bosToken);
    expect(model.tokenizer.eosToken).toBe(reference.eosToken);
  });

  it.each(texts)("encodes %j as the SentencePiece tokenizer does, BOS as the file asks", (text) => {
    expect(model.tokenizer.encode(text)).toEqual(reference.encode(text));
    expect(model.tokenizer.encode(text, { addBos: false, addEos: true })).toEqual(
      reference.encode(text, { addBos: false, addEos: true }),
    );
  });

  it("parses special tokens written in the text, as the SentencePiece tokenizer does", () => {
    const text = "The end.</s><s>Once upon a time";
    const tokens = model.tokenizer.encode(text, { addBos: false });
    expect(tokens).toEqual(reference.encode(text, { addBos: false }));
    expect(tokens).toContain(model.tokenizer.eosToken);
    expect(tokens).toContain(model.tokenizer.bosToken);
  });

  it.each(texts)("decodes %j back to the text, without BOS", (text) => {
    expect(model.tokenizer.decode(reference.encode(text))).toBe(text);
  });
});
