/**
 * Every model carries the tokenizer of its own file: a GGUF's SentencePiece vocabulary, the same
 * ids as @self-extend/models' tokenizer read from that file; a llama2.c checkpoint has none, and
 * core's requireTokenizer says so in one line.
 */
import { requireTokenizer } from "@self-extend/core";
import { demoModelPath } from "@self-extend/demo-model";
import { readGguf, tokenizerFromGguf } from "@self-extend/models/node";
import { sharedModelPaths } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { createReferenceBackend } from "../src/index.js";

describe("model tokenizers", () => {
  it("gives a GGUF model the file's own tokenizer", async () => {
    const model = await createReferenceBackend().loadModel({ path: demoModelPath });
    const gguf = readGguf(demoModelPath);
    const fromFile = tokenizerFromGguf(gguf);
    gguf.close();
    const tokenizer = requireTokenizer(model);
    const text = "Once upon a time, Lily found 71432 shells.";
    expect(tokenizer.encode(text)).toEqual(fromFile.encode(text));
    expect(tokenizer.encode(text)[0]).toBe(tokenizer.bosToken);
    expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
    expect(tokenizer.eosToken).toBe(fromFile.vocabulary.eosId);
    await model.dispose();
  });

  it("has none for a llama2.c checkpoint, and requireTokenizer names why in one line", async () => {
    const model = await createReferenceBackend().loadModel({ path: sharedModelPaths.stories260K });
    expect(model.tokenizer).toBeUndefined();
    expect(() => requireTokenizer(model)).toThrow(/^the model "[^"]+" has no tokenizer: [^\n]+$/);
    await model.dispose();
  });
});
