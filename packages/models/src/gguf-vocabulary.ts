/**
 * The `llama` (SentencePiece) and `gpt2` (byte-level BPE) vocabularies as GGUF stores them under
 * `tokenizer.ggml.*`, in the types llama.cpp checks: tokens string[], scores float32[], token_type
 * int32[], merges string[], pre string, special ids uint32, add_bos/add_eos bool.
 */
import { unknownPreTokenizerMessage } from "./byte-level-bpe.js";
import type { GgufFile } from "./gguf-reader.js";
import { type GgufTypedValue, ggufTokenTypes } from "./gguf-types.js";
import { valueForMessage } from "./message-text.js";
import { ModelFileError } from "./model-file-error.js";
import { createTokenizer, spaceSymbol, type Tokenizer, type Vocabulary } from "./tokenizer.js";

export function vocabularyMetadata(vocabulary: Vocabulary): Record<string, GgufTypedValue> {
  const byteLevel: Record<string, GgufTypedValue> =
    vocabulary.model === "gpt2"
      ? {
          "tokenizer.ggml.merges": {
            type: "array",
            itemType: "string",
            value: [...(vocabulary.merges ?? [])],
          },
          "tokenizer.ggml.pre": { type: "string", value: vocabulary.preTokenizer ?? "" },
        }
      : {};
  return {
    "tokenizer.ggml.model": { type: "string", value: vocabulary.model ?? "llama" },
    ...byteLevel,
    "tokenizer.ggml.tokens": { type: "array", itemType: "string", value: [...vocabulary.tokens] },
    "tokenizer.ggml.scores": {
      type: "array",
      itemType: "float32",
      value: Float32Array.from(vocabulary.scores),
    },
    "tokenizer.ggml.token_type": {
      type: "array",
      itemType: "int32",
      value: Int32Array.from(vocabulary.tokenTypes),
    },
    ...(vocabulary.bosId === undefined
      ? {}
      : { "tokenizer.ggml.bos_token_id": { type: "uint32", value: vocabulary.bosId } }),
    ...(vocabulary.eosId === undefined
      ? {}
      : { "tokenizer.ggml.eos_token_id": { type: "uint32", value: vocabulary.eosId } }),
    "tokenizer.ggml.unknown_token_id": { type: "uint32", value: vocabulary.unknownId },
    "tokenizer.ggml.add_bos_token": { type: "bool", value: vocabulary.addBos },
    "tokenizer.ggml.add_eos_token": { type: "bool", value: vocabulary.addEos },
  };
}

/**
 * The vocabulary of a GGUF file with `tokenizer.ggml.model` "llama" or "gpt2". Missing special ids
 * and flags take llama.cpp's defaults for the model (llama-vocab.cpp): SentencePiece BOS 1, EOS 2,
 * add BOS; byte-level BPE no BOS or EOS, add BOS only for the Llama 3 pre-tokenizer.
 */
export function vocabularyFromGguf(gguf: GgufFile): Vocabulary {
  const fail = (message: string): never => {
    throw new ModelFileError(gguf.path, message);
  };
  const model = gguf.metadata.get("tokenizer.ggml.model");
  if (model !== "llama" && model !== "gpt2") {
    fail(
      `tokenizer.ggml.model is ${valueForMessage(model)}; the supported vocabularies are "llama" (SentencePiece) and "gpt2" (byte-level BPE)`,
    );
  }
  const byteLevel = model === "gpt2";
  const preTokenizer = gguf.metadata.get("tokenizer.ggml.pre");
  const merges = gguf.metadata.get("tokenizer.ggml.merges");
  if (byteLevel) {
    const message = unknownPreTokenizerMessage(typeof preTokenizer === "string" ? preTokenizer : undefined);
    if (message !== undefined) fail(message);
    if (!Array.isArray(merges) || !merges.every((merge) => typeof merge === "string")) {
      fail("tokenizer.ggml.merges is missing or not an array of strings");
    }
  }
  const tokens = gguf.metadata.get("tokenizer.ggml.tokens");
  if (!Array.isArray(tokens) || !tokens.every((token) => typeof token === "string")) {
    return fail("tokenizer.ggml.tokens is missing or not an array of strings");
  }
  const scores = gguf.metadata.get("tokenizer.ggml.scores");
  const types = gguf.metadata.get("tokenizer.ggml.token_type");
  const numeric = (value: unknown, key: string, fallback: number): ArrayLike<number> => {
    if (value === undefined) return new Float32Array(tokens.length).fill(fallback);
    if (!ArrayBuffer.isView(value) || (value as unknown as ArrayLike<number>).length !== tokens.length) {
      return fail(`${key} must be a numeric array with one entry per token (${tokens.length})`);
    }
    return value as unknown as ArrayLike<number>;
  };
  const id = <Fallback extends number | undefined>(key: string, fallback: Fallback): number | Fallback => {
    const value = gguf.metadata.get(key);
    if (value === undefined) return fallback;
    const number = typeof value === "bigint" ? Number(value) : value;
    if (typeof number !== "number" || !Number.isInteger(number) || number < 0 || number >= tokens.length) {
      return fail(`${key} = ${String(value)} is not a token id`);
    }
    return number;
  };
  const flag = (key: string, fallback: boolean): boolean => {
    const value = gguf.metadata.get(key);
    return typeof value === "boolean" ? value : fallback;
  };
  const common = {
    tokens: tokens as string[],
    scores: numeric(scores, "tokenizer.ggml.scores", 0),
    tokenTypes: withLlamaCppControlTokens(
      tokens as string[],
      numeric(types, "tokenizer.ggml.token_type", ggufTokenTypes.normal),
    ),
    addEos: flag("tokenizer.ggml.add_eos_token", false),
  };
  if (byteLevel) {
    return {
      ...common,
      model: "gpt2",
      merges: merges as string[],
      preTokenizer: preTokenizer as string,
      bosId: id("tokenizer.ggml.bos_token_id", undefined),
      eosId: id("tokenizer.ggml.eos_token_id", undefined),
      unknownId: id("tokenizer.ggml.unknown_token_id", 0),
      addBos: flag("tokenizer.ggml.add_bos_token", preTokenizer === "llama-bpe"),
    };
  }
  return {
    ...common,
    bosId: id("tokenizer.ggml.bos_token_id", 1),
    eosId: id("tokenizer.ggml.eos_token_id", 2),
    unknownId: id("tokenizer.ggml.unknown_token_id", 0),
    addBos: flag("tokenizer.ggml.add_bos_token", true),
    addSpacePrefix: flag("tokenizer.ggml.add_space_prefix", true),
    rightStrippingTokens: phi3RightStrippingTokens(
      gguf.metadata.get("general.name"),
      common.tokens,
      common.tokenTypes,
    ),
  };
}

/**
 * End-of-turn and end-of-generation tokens that llama.cpp (llama-vocab.cpp, "auto-detect special
 * tokens by text") makes control tokens whatever type the file gives them, warning "control-looking
 * token ... was not control-type": so they are cut out of text and left out of decoded text. Phi-3's
 * `</s>`, a user-defined token in its files, is one. Ours does this for special tokens only: llama.cpp
 * also turns a normal piece with such a text into a control token (byte-level vocabularies such as
 * Qwen's have a `</s>` piece), where Hugging Face's tokenizer, and so ours, keeps it plain text.
 */
const controlLookingTokens = new Set([
  "<|eot_id|>",
  "<|im_end|>",
  "<|end|>",
  "<|return|>",
  "<|call|>",
  "<|flush|>",
  "<|calls|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "</s>",
  "<|eom_id|>",
  "<EOT>",
  "_<EOT>",
  "[EOT]",
  "[EOS]",
  "<|end_of_text|>",
  "<end_of_utterance>",
  "<eos>",
  "<\uff5cend\u2581of\u2581sentence\uff5c>",
]);

/** The file's token types with control-looking tokens made control, as llama.cpp loads them. */
function withLlamaCppControlTokens(tokens: readonly string[], types: ArrayLike<number>): ArrayLike<number> {
  const overridden = (token: string, id: number) =>
    controlLookingTokens.has(token) && types[id] === ggufTokenTypes.userDefined;
  if (!tokens.some(overridden)) return types;
  return Int32Array.from(tokens, (token, id) => (overridden(token, id) ? ggufTokenTypes.control : types[id]));
}

/**
 * llama.cpp (llama-vocab.cpp, "set attributes by model/tokenizer/architecture name") makes every
 * special token of a model whose general.name contains "phi-3" or "phi3" (any case) drop the
 * whitespace after it, as Phi-3's tokenizer.json does (rstrip), except `<unk>`, `<s>` and
 * `<|endoftext|>`; `</s>` always. Keyed on the name, as there: a Phi-3 file named otherwise does not.
 */
function phi3RightStrippingTokens(
  name: unknown,
  tokens: readonly string[],
  types: ArrayLike<number>,
): number[] | undefined {
  const lowerCase = typeof name === "string" ? name.toLowerCase() : "";
  if (!lowerCase.includes("phi-3") && !lowerCase.includes("phi3")) return undefined;
  const kept = new Set(["<unk>", "<s>", "<|endoftext|>"]);
  const special = new Set<number>([
    ggufTokenTypes.control,
    ggufTokenTypes.userDefined,
    ggufTokenTypes.unknown,
  ]);
  return tokens.flatMap((token, id) =>
    (special.has(types[id]) || token === "</s>") && !kept.has(token) ? [id] : [],
  );
}

export function tokenizerFromGguf(gguf: GgufFile): Tokenizer {
  return createTokenizer(vocabularyFromGguf(gguf));
}

const syntheticCharacters = `${spaceSymbol}etaoinshrdlucmfwypvbgkjqxzETAOINSHRDLUCMFWYPVBGKJQXZ0123456789.,!?'"-:;()`;

/**
 * A placeholder vocabulary for generated models, so llama.cpp can load them: `<unk>`, `<s>`,
 * `</s>`, the newline byte `<0x0A>` (llama.cpp looks it up at load time), then single characters
 * and `<unused N>` pieces. Token ids, not text, are what tests of random models feed in.
 */
export function syntheticVocabulary(size: number): Vocabulary {
  if (!Number.isInteger(size) || size < 4)
    throw new RangeError(`a synthetic vocabulary needs at least 4 tokens, got ${size}`);
  const tokens = ["<unk>", "<s>", "</s>", "<0x0A>"];
  const tokenTypes: number[] = [
    ggufTokenTypes.unknown,
    ggufTokenTypes.control,
    ggufTokenTypes.control,
    ggufTokenTypes.byte,
  ];
  const characters = [...syntheticCharacters];
  for (let id = tokens.length; id < size; id++) {
    const character = characters[id - 4];
    tokens.push(character ?? `<unused${id}>`);
    tokenTypes.push(character === undefined ? ggufTokenTypes.unused : ggufTokenTypes.normal);
  }
  const scores = tokens.map((_, id) => (tokenTypes[id] === ggufTokenTypes.normal ? -id : 0));
  return {
    tokens,
    scores: Float32Array.from(scores),
    tokenTypes: Int32Array.from(tokenTypes),
    bosId: 1,
    eosId: 2,
    unknownId: 0,
    addBos: true,
    addEos: false,
  };
}
