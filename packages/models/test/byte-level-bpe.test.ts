/**
 * The byte-level BPE (`gpt2`) vocabulary of a GGUF, on a vocabulary small enough to work out the
 * merges by hand. Agreement with llama.cpp and Hugging Face on real vocabularies is checked in
 * packages/llama-cpp/test/bpe-tokenizer.test.ts.
 */
import { describe, expect, it } from "vitest";
import { parseGguf } from "../src/gguf-reader.js";
import { tokenizerFromGguf, vocabularyFromGguf, vocabularyMetadata } from "../src/gguf-vocabulary.js";
import { encodeGguf } from "../src/gguf-writer.js";
import { llamaGgufContents, llamaWeightsFromGguf } from "../src/llama-gguf.js";
import { ModelFileError } from "../src/model-file-error.js";
import { generateTinyModel, tinyModelSpec } from "../src/tiny-model.js";
import { createTokenizer, type Vocabulary } from "../src/tokenizer.js";

// GPT-2's byte alphabet writes a space as U+0120 (Ġ) and a newline as U+010A (Ċ).
const tokens = [
  "<|bos|>",
  "h",
  "e",
  "l",
  "o",
  "Ġ",
  "w",
  "r",
  "d",
  "he",
  "ll",
  "hell",
  "hello",
  "Ġw",
  "or",
  "Ġwor",
  "ld",
  "<tool>",
  "Ċ",
  "<|eos|>",
];
const tokenTypes = tokens.map((token) => (token === "<tool>" ? 4 : token.startsWith("<|") ? 3 : 1));
const merges = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d"];

function vocabulary(preTokenizer: string): Vocabulary {
  return {
    model: "gpt2",
    tokens,
    scores: new Float32Array(tokens.length),
    merges,
    preTokenizer,
    tokenTypes: Int32Array.from(tokenTypes),
    bosId: 0,
    eosId: tokens.length - 1,
    unknownId: 0,
    addBos: true,
    addEos: false,
  };
}

function ggufOf(preTokenizer: string) {
  return parseGguf(
    encodeGguf({
      metadata: {
        "general.architecture": { type: "string", value: "llama" },
        ...vocabularyMetadata(vocabulary(preTokenizer)),
      },
      tensors: [],
    }),
    "bpe.gguf",
  );
}

const id = (piece: string) => tokens.indexOf(piece);

describe("byte-level BPE vocabularies", () => {
  it.each(["llama-bpe", "qwen2"])("merges by rank, words split by the %s pre-tokenizer", (preTokenizer) => {
    const tokenizer = tokenizerFromGguf(ggufOf(preTokenizer));
    expect(tokenizer.encode("hello world")).toEqual([id("<|bos|>"), id("hello"), id("Ġwor"), id("ld")]);
    expect(tokenizer.encode("hell\nhe", { addBos: false, addEos: true })).toEqual([
      id("hell"),
      id("Ċ"),
      id("he"),
      id("<|eos|>"),
    ]);
  });

  it("reads control and user-defined tokens written in the text as single tokens", () => {
    const tokenizer = createTokenizer(vocabulary("llama-bpe"));
    expect(tokenizer.encode("hello<tool><|eos|>", { addBos: false })).toEqual([
      id("hello"),
      id("<tool>"),
      id("<|eos|>"),
    ]);
  });

  it("decodes bytes back to text, keeping user-defined tokens and dropping control ones", () => {
    const tokenizer = createTokenizer(vocabulary("qwen2"));
    expect(
      tokenizer.decode([
        id("<|bos|>"),
        id("hello"),
        id("Ġwor"),
        id("ld"),
        id("Ċ"),
        id("<tool>"),
        id("<|eos|>"),
      ]),
    ).toBe("hello world\n<tool>");
  });

  it("keeps the file's merges and pre-tokenizer through reading", () => {
    const read = vocabularyFromGguf(ggufOf("qwen2"));
    expect(read.model).toBe("gpt2");
    expect(read.merges).toEqual(merges);
    expect(read.preTokenizer).toBe("qwen2");
  });

  it("has no BOS when the file names none, as llama.cpp reads Qwen's files", () => {
    const tokenizer = createTokenizer({ ...vocabulary("qwen2"), bosId: undefined });
    expect(tokenizer.bosToken).toBeUndefined();
    expect(tokenizer.encode("he", { addBos: true })).toEqual([id("he")]);
  });

  it("refuses an unknown pre-tokenizer with one line naming it and the known ones", () => {
    const read = () => vocabularyFromGguf(ggufOf("gpt-4o"));
    expect(read).toThrow(ModelFileError);
    expect(read).toThrow(
      /tokenizer\.ggml\.pre is "gpt-4o"; the byte-level BPE tokenizer knows "llama-bpe", "qwen2"$/,
    );
    expect(() => createTokenizer(vocabulary("gpt-4o"))).toThrow(
      /^tokenizer\.ggml\.pre is "gpt-4o"; .*"qwen2"$/,
    );
  });

  it("refuses a vocabulary model it does not know", () => {
    const gguf = parseGguf(
      encodeGguf({
        metadata: {
          "general.architecture": { type: "string", value: "llama" },
          ...vocabularyMetadata(vocabulary("qwen2")),
          "tokenizer.ggml.model": { type: "string", value: "t5" },
        },
        tensors: [],
      }),
      "t5.gguf",
    );
    expect(() => vocabularyFromGguf(gguf)).toThrow(
      /tokenizer\.ggml\.model is "t5"; the supported vocabularies are/,
    );
  });

  it("comes with weights read from a GGUF, so every adapter's model gets the tokenizer", () => {
    const weights = generateTinyModel({ ...tinyModelSpec("llama-h8-mha"), vocabularySize: tokens.length }, 5);
    const contents = llamaGgufContents(weights, { vocabulary: vocabulary("llama-bpe") });
    const read = llamaWeightsFromGguf(parseGguf(encodeGguf(contents), "tiny-bpe.gguf"));
    expect(read.vocabulary?.model).toBe("gpt2");
    const tokenizer = createTokenizer(read.vocabulary as Vocabulary);
    expect(tokenizer.encode("hello world")).toEqual([id("<|bos|>"), id("hello"), id("Ġwor"), id("ld")]);
  });
});
