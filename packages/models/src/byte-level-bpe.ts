/**
 * Byte-level BPE tokenizers (`tokenizer.ggml.model = "gpt2"`: Llama 3, Qwen2/2.5/3, ...).
 *
 * Why a library: Hugging Face's own `@huggingface/tokenizers` (tokenizers.js: pure JavaScript, no
 * dependencies, runs in browsers) already implements byte-level BPE, Oniguruma-compatible
 * pre-tokenizer regexes and added-token splitting. We rebuild the `tokenizer.json` that the GGUF
 * vocabulary was converted from (tokens, merges, the pre-tokenizer that `tokenizer.ggml.pre` names,
 * control and user-defined tokens as added tokens) and let it encode. Decoding is ours: it is a
 * table lookup, and it must drop control tokens and keep user-defined ones exactly as llama.cpp does.
 *
 * Control and user-defined tokens written in the text are recognised as single tokens, as
 * llama.cpp's tokenizer does with `parse_special` and Hugging Face's does for added tokens.
 */
import { Tokenizer as HuggingFaceTokenizer } from "@huggingface/tokenizers";
import { ggufTokenTypes } from "./gguf-types.js";
import type { EncodeOptions, Tokenizer, Vocabulary } from "./tokenizer.js";

interface PreTokenizerRule {
  /** The split regex, in the Oniguruma syntax of tokenizer.json. */
  readonly pattern: string;
  /** Whether a word that is itself a vocabulary token skips the merges (Llama 3's tokenizer.json). */
  readonly ignoreMerges: boolean;
}

/**
 * Pre-tokenizers by `tokenizer.ggml.pre`, with the regexes of the models' tokenizer.json files
 * (llama.cpp's llama-vocab.cpp uses the same expressions for these names).
 */
const preTokenizers: Readonly<Record<string, PreTokenizerRule>> = {
  "llama-bpe": {
    pattern:
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    ignoreMerges: true,
  },
  qwen2: {
    pattern:
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    ignoreMerges: false,
  },
};

/** The `tokenizer.ggml.pre` values the byte-level BPE tokenizer knows. */
export const knownPreTokenizers: readonly string[] = Object.keys(preTokenizers);

/** One line naming the value and the known ones, or undefined when the pre-tokenizer is known. */
export function unknownPreTokenizerMessage(preTokenizer: string | undefined): string | undefined {
  if (preTokenizer !== undefined && Object.hasOwn(preTokenizers, preTokenizer)) return undefined;
  return `tokenizer.ggml.pre is ${JSON.stringify(preTokenizer)}; the byte-level BPE tokenizer knows ${knownPreTokenizers.map((name) => JSON.stringify(name)).join(", ")}`;
}

/** GPT-2's byte-to-character table: printable bytes stand for themselves, the rest move to U+0100 on. */
function byteLevelAlphabet(): { characterOfByte: string[]; byteOfCharacter: Map<string, number> } {
  const characterOfByte: string[] = [];
  let shifted = 0;
  for (let byte = 0; byte < 256; byte++) {
    const printable = (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || byte >= 0xae;
    characterOfByte[byte] = String.fromCodePoint(printable ? byte : 256 + shifted++);
  }
  return {
    characterOfByte,
    byteOfCharacter: new Map(characterOfByte.map((character, byte) => [character, byte])),
  };
}

const textEncoder = new TextEncoder();

export function createByteLevelBpeTokenizer(vocabulary: Vocabulary): Tokenizer {
  const message = unknownPreTokenizerMessage(vocabulary.preTokenizer);
  if (message !== undefined) throw new RangeError(message);
  const rule = preTokenizers[vocabulary.preTokenizer as string];
  const merges = vocabulary.merges ?? [];
  const ids = new Map<string, number>();
  vocabulary.tokens.forEach((piece, id) => {
    if (!ids.has(piece)) ids.set(piece, id);
  });
  const isAdded = (id: number) =>
    vocabulary.tokenTypes[id] === ggufTokenTypes.control ||
    vocabulary.tokenTypes[id] === ggufTokenTypes.userDefined;
  const vocab: Record<string, number> = {};
  const addedTokens: object[] = [];
  vocabulary.tokens.forEach((piece, id) => {
    if (isAdded(id)) {
      addedTokens.push({
        id,
        content: piece,
        special: vocabulary.tokenTypes[id] === ggufTokenTypes.control,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
      });
    }
    if (ids.get(piece) === id) vocab[piece] = id;
  });
  const library = new HuggingFaceTokenizer(
    {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: addedTokens,
      normalizer: null,
      pre_tokenizer: {
        type: "Sequence",
        pretokenizers: [
          { type: "Split", pattern: { Regex: rule.pattern }, behavior: "Isolated", invert: false },
          { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
        ],
      },
      post_processor: null,
      decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
      model: {
        type: "BPE",
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: rule.ignoreMerges,
        vocab,
        merges,
      },
    },
    { clean_up_tokenization_spaces: false },
  );

  const { byteOfCharacter } = byteLevelAlphabet();
  const tokenBytes = vocabulary.tokens.map((piece, id): Uint8Array => {
    const type = vocabulary.tokenTypes[id];
    if (
      type === ggufTokenTypes.control ||
      type === ggufTokenTypes.unknown ||
      type === ggufTokenTypes.unused
    ) {
      return new Uint8Array(0);
    }
    // User-defined tokens are stored as plain text, normal tokens in the byte-level alphabet.
    if (type === ggufTokenTypes.userDefined) return textEncoder.encode(piece);
    const bytes: number[] = [];
    for (const character of piece) {
      const byte = byteOfCharacter.get(character);
      if (byte === undefined) bytes.push(...textEncoder.encode(character));
      else bytes.push(byte);
    }
    return Uint8Array.from(bytes);
  });

  function encode(text: string, options: EncodeOptions = {}): number[] {
    const result: number[] = [];
    if ((options.addBos ?? vocabulary.addBos) && vocabulary.bosId !== undefined)
      result.push(vocabulary.bosId);
    if (text.length > 0) result.push(...library.encode(text, { add_special_tokens: false }).ids);
    if ((options.addEos ?? vocabulary.addEos) && vocabulary.eosId !== undefined)
      result.push(vocabulary.eosId);
    return result;
  }

  function decode(tokens: readonly number[]): string {
    const pieces: Uint8Array[] = [];
    let length = 0;
    for (const id of tokens) {
      const bytes = tokenBytes[id];
      if (bytes === undefined) continue;
      pieces.push(bytes);
      length += bytes.length;
    }
    const joined = new Uint8Array(length);
    let offset = 0;
    for (const bytes of pieces) {
      joined.set(bytes, offset);
      offset += bytes.length;
    }
    return new TextDecoder("utf-8").decode(joined);
  }

  return {
    vocabulary,
    bosToken: vocabulary.bosId,
    eosToken: vocabulary.eosId,
    vocabularySize: vocabulary.tokens.length,
    encode,
    decode,
    tokenId: (piece) => ids.get(piece),
  };
}
