/**
 * Chat prompts of a tokenizer.json vocabulary (ONNX exports) split on special tokens before
 * encoding, so Hugging Face's `rstrip` (Phi-3's role tokens drop the newline after them) must be
 * applied by the chat tokenization itself. Checked against Hugging Face's tokenizer (the library
 * behind createTokenizerFromJson) encoding the whole rendered text, which applies rstrip natively.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { tokenizeRenderedChat } from "@self-extend/core";
import { describe, expect, it } from "vitest";
import { createTokenizerFromJson } from "../src/index.js";

const folder = join(import.meta.dirname, "../../onnxruntime/test/fixtures/imported/genai/phi3");
const tokenizerJson = JSON.parse(readFileSync(join(folder, "tokenizer.json"), "utf8"));
const tokenizerConfig = JSON.parse(readFileSync(join(folder, "tokenizer_config.json"), "utf8"));

/** The fixture's tokenizer.json with Phi-3's role tokens added, right-stripping or not. */
function withRoleTokens(rstrip: boolean) {
  const roles = ["<|user|>", "<|end|>", "<|assistant|>"].map((content, index) => ({
    id: 512 + index,
    content,
    special: true,
    rstrip,
    lstrip: false,
    normalized: false,
    single_word: false,
  }));
  return createTokenizerFromJson(
    { ...tokenizerJson, added_tokens: [...tokenizerJson.added_tokens, ...roles] },
    tokenizerConfig,
  );
}

describe("chat tokenization of a tokenizer.json vocabulary with rstrip tokens", () => {
  const rendered = "<|user|>\nOnce upon a time\n<|end|>\n<|assistant|>\n";

  it("drops the whitespace after right-stripping tokens, as Hugging Face's tokenizer does on the whole text", () => {
    const tokenizer = withRoleTokens(true);
    expect(tokenizer.chatVocabulary.rightStrippingTokens).toEqual([512, 513, 514]);
    expect(tokenizeRenderedChat(rendered, tokenizer, tokenizer.chatVocabulary)).toEqual(
      tokenizer.encode(rendered),
    );
  });

  it("keeps it where the tokens do not strip (so the case above is not vacuous)", () => {
    const tokenizer = withRoleTokens(false);
    expect(tokenizer.chatVocabulary.rightStrippingTokens).toEqual([]);
    const tokens = tokenizeRenderedChat(rendered, tokenizer, tokenizer.chatVocabulary);
    expect(tokens).toEqual(tokenizer.encode(rendered));
    expect(tokens).not.toEqual(
      tokenizeRenderedChat(rendered, withRoleTokens(true), withRoleTokens(true).chatVocabulary),
    );
  });
});
