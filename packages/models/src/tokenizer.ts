/**
 * SentencePiece-style BPE tokenizer for `llama` (SPM) vocabularies: llama2.c's tok*.bin and the
 * `tokenizer.ggml.*` arrays of a GGUF file.
 *
 * Why our own: no maintained npm package reads llama2.c vocabularies or GGUF score arrays offline,
 * and the algorithm is small. It follows llama.cpp's SentencePiece path (llama-vocab.cpp), which is
 * llama2.c's run.c plus special tokens:
 * 1. Control, user-defined and unknown tokens written in the text are cut out as single tokens,
 *    the longest first (tokenizer_st_partition with parse_special, as the byte-level BPE tokenizer
 *    does); Phi-3's special tokens also swallow the whitespace after them (rightStrippingTokens).
 * 2. Each remaining piece of text gets a dummy space in front when it starts the text or follows a
 *    special token, unless the file says `add_space_prefix = false` (Gemma's), and its spaces
 *    become U+2581.
 * 3. It starts from single characters (bytes as `<0xNN>` tokens when a character is not in the
 *    vocabulary), then repeatedly merges the adjacent pair whose merged piece has the highest
 *    score, leftmost first. A heap with lazy invalidation gives the same merges as run.c's
 *    quadratic scan in O(n log n), so whole documents can be encoded.
 */
import type { TokenizerV1 } from "@self-extend/core";
import { createByteLevelBpeTokenizer } from "./byte-level-bpe.js";
import { ggufTokenTypes } from "./gguf-types.js";

export const spaceSymbol = "\u2581";

export interface Vocabulary {
  /**
   * `tokenizer.ggml.model`: "llama" (SentencePiece, the default) or "gpt2" (byte-level BPE, whose
   * pieces are in GPT-2's byte alphabet and whose merges and pre-tokenizer say how to tokenize).
   */
  readonly model?: "llama" | "gpt2";
  /** Pieces, with U+2581 for spaces (llama) or in GPT-2's byte alphabet (gpt2), indexed by token id. */
  readonly tokens: readonly string[];
  readonly scores: ArrayLike<number>;
  /** gpt2: the merges, "left right", highest priority first. */
  readonly merges?: readonly string[];
  /** gpt2: `tokenizer.ggml.pre`, the name of the pre-tokenizer (see knownPreTokenizers). */
  readonly preTokenizer?: string;
  /** GGUF token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. */
  readonly tokenTypes: ArrayLike<number>;
  /** Undefined when the vocabulary has none (byte-level BPE files may name no BOS, as Qwen's do). */
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  readonly unknownId: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  /**
   * llama (SentencePiece): `tokenizer.ggml.add_space_prefix`, whether text gets a dummy space in
   * front (default true; Gemma's files say false).
   */
  readonly addSpacePrefix?: boolean;
  /**
   * llama (SentencePiece): special tokens that drop the whitespace after them when they are cut out
   * of text. llama.cpp gives this attribute by model name (Phi-3's special tokens but `<unk>`, `<s>`
   * and `<|endoftext|>`), following Phi-3's tokenizer.json (rstrip).
   */
  readonly rightStrippingTokens?: readonly number[];
}

export interface EncodeOptions {
  /** Defaults to the vocabulary's addBos. */
  readonly addBos?: boolean;
  /** Defaults to the vocabulary's addEos. */
  readonly addEos?: boolean;
}

export interface Tokenizer extends TokenizerV1 {
  readonly vocabulary: Vocabulary;
  readonly bosToken: number | undefined;
  readonly eosToken: number | undefined;
  readonly vocabularySize: number;
  encode(text: string, options?: EncodeOptions): number[];
  /**
   * Control tokens vanish, byte tokens become bytes, and (SentencePiece) the first token after any
   * leading BOS loses its dummy space where the file adds one (as llama.cpp's detokenizer).
   */
  decode(tokens: readonly number[]): string;
  /** Token id of a piece (spelled with U+2581), or undefined. */
  tokenId(piece: string): number | undefined;
}

const bytePiece = /^<0x([0-9A-Fa-f]{2})>$/;
const textEncoder = new TextEncoder();
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

interface Candidate {
  readonly score: number;
  readonly left: number;
  readonly right: number;
  readonly merged: number;
  /** Symbol texts at the time the candidate was made; a stale candidate no longer matches. */
  readonly leftText: string;
  readonly rightText: string;
}

/** Highest score first; ties go to the leftmost pair, as run.c's strict `>` scan does. */
function before(a: Candidate, b: Candidate): boolean {
  return a.score > b.score || (a.score === b.score && a.left < b.left);
}

class CandidateHeap {
  private readonly items: Candidate[] = [];
  get size() {
    return this.items.length;
  }
  push(item: Candidate) {
    const items = this.items;
    items.push(item);
    let index = items.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!before(items[index], items[parent])) break;
      [items[index], items[parent]] = [items[parent], items[index]];
      index = parent;
    }
  }
  pop(): Candidate | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last !== undefined) {
      items[0] = last;
      let index = 0;
      for (;;) {
        const left = 2 * index + 1;
        const right = left + 1;
        let best = index;
        if (left < items.length && before(items[left], items[best])) best = left;
        if (right < items.length && before(items[right], items[best])) best = right;
        if (best === index) break;
        [items[index], items[best]] = [items[best], items[index]];
        index = best;
      }
    }
    return top;
  }
}

export function createTokenizer(vocabulary: Vocabulary): Tokenizer {
  if (vocabulary.model === "gpt2") return createByteLevelBpeTokenizer(vocabulary);
  const ids = new Map<string, number>();
  // The first id wins for duplicate pieces, as in run.c's sorted lookup of unique pieces.
  vocabulary.tokens.forEach((piece, id) => {
    if (!ids.has(piece)) ids.set(piece, id);
  });
  const byteIds: number[] = [];
  const tokenBytes: (number | undefined)[] = vocabulary.tokens.map((piece, id) => {
    const match = bytePiece.exec(piece);
    if (
      match === null ||
      (vocabulary.tokenTypes[id] !== ggufTokenTypes.byte && vocabulary.tokenTypes[id] !== undefined)
    )
      return undefined;
    const byte = Number.parseInt(match[1], 16);
    byteIds[byte] ??= id;
    return byte;
  });

  const addSpacePrefix = vocabulary.addSpacePrefix ?? true;
  const rightStripping = new Set(vocabulary.rightStrippingTokens ?? []);
  // Tokens cut out of text before the merges, longest first (llama.cpp sorts by length only; equal
  // lengths go by id here so the order is defined).
  const specialTokens = vocabulary.tokens
    .map((piece, id) => ({ piece, id }))
    .filter(({ piece, id }) => {
      const type = vocabulary.tokenTypes[id];
      return (
        piece.length > 0 &&
        (type === ggufTokenTypes.control ||
          type === ggufTokenTypes.userDefined ||
          type === ggufTokenTypes.unknown)
      );
    })
    .sort((a, b) => b.piece.length - a.piece.length || a.id - b.id);

  /** Text split into pieces of text and special token ids, as llama.cpp's tokenizer_st_partition. */
  function partition(text: string): (string | number)[] {
    let fragments: (string | number)[] = [text];
    for (const { piece, id } of specialTokens) {
      if (!text.includes(piece)) continue;
      const split: (string | number)[] = [];
      for (const fragment of fragments) {
        if (typeof fragment === "number" || !fragment.includes(piece)) {
          split.push(fragment);
          continue;
        }
        let rest = fragment;
        for (;;) {
          const at = rest.indexOf(piece);
          if (at < 0) {
            if (rest.length > 0) split.push(rest);
            break;
          }
          if (at > 0) split.push(rest.slice(0, at));
          split.push(id);
          rest = rest.slice(at + piece.length);
          // C's isspace, as llama.cpp strips.
          if (rightStripping.has(id)) rest = rest.replace(/^[ \t\n\v\f\r]+/, "");
        }
      }
      fragments = split;
    }
    return fragments;
  }

  /** The merges over one piece of text (spaces already there), appending its token ids. */
  function encodeText(text: string, result: number[]): void {
    // Symbols form a doubly linked list; ids[] holds their token id, texts[] their piece.
    const texts: string[] = [];
    const symbolIds: number[] = [];
    for (const character of text.replaceAll(" ", spaceSymbol)) {
      const id = ids.get(character);
      if (id !== undefined) {
        texts.push(character);
        symbolIds.push(id);
      } else {
        for (const byte of textEncoder.encode(character)) {
          // A byte token never merges: its text cannot prefix a vocabulary piece.
          texts.push(`\u0000byte${byte}`);
          symbolIds.push(byteIds[byte] ?? vocabulary.unknownId);
        }
      }
    }
    const count = texts.length;
    const next = Array.from({ length: count }, (_, index) => index + 1);
    const previous = Array.from({ length: count }, (_, index) => index - 1);
    const alive = new Array<boolean>(count).fill(true);
    const heap = new CandidateHeap();
    const consider = (left: number, right: number) => {
      if (left < 0 || right >= count) return;
      const merged = ids.get(texts[left] + texts[right]);
      if (merged === undefined) return;
      heap.push({
        score: vocabulary.scores[merged],
        left,
        right,
        merged,
        leftText: texts[left],
        rightText: texts[right],
      });
    };
    for (let index = 0; index + 1 < count; index++) consider(index, index + 1);
    while (heap.size > 0) {
      const candidate = heap.pop() as Candidate;
      const { left, right } = candidate;
      if (!alive[left] || !alive[right] || next[left] !== right) continue;
      if (texts[left] !== candidate.leftText || texts[right] !== candidate.rightText) continue;
      texts[left] += texts[right];
      symbolIds[left] = candidate.merged;
      alive[right] = false;
      next[left] = next[right];
      if (next[right] < count) previous[next[right]] = left;
      consider(previous[left], left);
      consider(left, next[left]);
    }
    for (let index = 0; index < count; index = next[index]) result.push(symbolIds[index]);
  }

  function encode(text: string, options: EncodeOptions = {}): number[] {
    const addBos = options.addBos ?? vocabulary.addBos;
    const addEos = options.addEos ?? vocabulary.addEos;
    const result: number[] = [];
    if (addBos && vocabulary.bosId !== undefined) result.push(vocabulary.bosId);
    // The dummy space goes in front of the text and of every piece of text after a special token.
    let afterSpecial = true;
    // A lone surrogate reaches llama.cpp as U+FFFD (UTF-8 has no other spelling for it).
    const wellFormed = text.replace(loneSurrogate, "\uFFFD");
    for (const fragment of wellFormed.length > 0 ? partition(wellFormed) : []) {
      if (typeof fragment === "number") {
        result.push(fragment);
        afterSpecial = true;
      } else {
        encodeText(addSpacePrefix && afterSpecial ? ` ${fragment}` : fragment, result);
        afterSpecial = false;
      }
    }
    if (addEos && vocabulary.eosId !== undefined) result.push(vocabulary.eosId);
    return result;
  }

  function decode(tokens: readonly number[]): string {
    const bytes: number[] = [];
    // As llama.cpp's detokenize after leading BOS tokens: only the first token loses its dummy space.
    let start = 0;
    while (start < tokens.length && tokens[start] === vocabulary.bosId) start++;
    for (let index = start; index < tokens.length; index++) {
      const id = tokens[index];
      const first = index === start;
      const type = vocabulary.tokenTypes[id];
      if (id < 0 || id >= vocabulary.tokens.length || type === ggufTokenTypes.control) continue;
      const byte = tokenBytes[id];
      if (byte !== undefined) {
        bytes.push(byte);
        continue;
      }
      // User-defined tokens are stored as their text (llama.cpp copies them unchanged).
      let piece =
        type === ggufTokenTypes.unknown
          ? " \u2047 "
          : type === ggufTokenTypes.userDefined
            ? vocabulary.tokens[id]
            : vocabulary.tokens[id].replaceAll(spaceSymbol, " ");
      // SentencePiece removes the space its encoder added in front of the text.
      if (first && addSpacePrefix && piece.startsWith(" ")) piece = piece.slice(1);
      bytes.push(...textEncoder.encode(piece));
    }
    return new TextDecoder("utf-8").decode(new Uint8Array(bytes));
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
