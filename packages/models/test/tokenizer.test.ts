import { readFileSync } from "node:fs";
import { sharedPath } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { parseLlama2cTokenizer } from "../src/llama2c-tokenizer.js";
import { ModelFileError } from "../src/model-file-error.js";
import { readLlama2cTokenizer } from "../src/model-files.js";
import { createTokenizer } from "../src/tokenizer.js";

const tokenizerPath = sharedPath("models", "tok512.bin");

/** tok512.bin read the plain way, pieces exactly as stored (spaces, "\n<s>\n"). */
function rawPieces(): { pieces: string[]; scores: number[] } {
  const bytes = readFileSync(tokenizerPath);
  const pieces: string[] = [];
  const scores: number[] = [];
  for (let at = 4; at < bytes.length; ) {
    scores.push(bytes.readFloatLE(at));
    const length = bytes.readInt32LE(at + 4);
    pieces.push(bytes.subarray(at + 8, at + 8 + length).toString("utf8"));
    at += 8 + length;
  }
  return { pieces, scores };
}

/** run.c's encoder, written the direct quadratic way, over run.c's own space-spelled pieces. */
function runCEncode(text: string): number[] {
  const { pieces, scores } = rawPieces();
  const lookup = new Map<string, number>();
  pieces.forEach((piece, id) => {
    if (!lookup.has(piece)) lookup.set(piece, id);
  });
  const tokens: number[] = [1];
  if (text !== "") tokens.push(lookup.get(" ") as number);
  for (const character of text) {
    const id = lookup.get(character);
    if (id !== undefined) tokens.push(id);
    else for (const byte of Buffer.from(character, "utf8")) tokens.push(byte + 3);
  }
  for (;;) {
    let bestScore = -1e10;
    let bestId = -1;
    let bestIndex = -1;
    for (let index = 1; index + 1 < tokens.length; index++) {
      const id = lookup.get(pieces[tokens[index]] + pieces[tokens[index + 1]]);
      if (id !== undefined && scores[id] > bestScore) {
        bestScore = scores[id];
        bestId = id;
        bestIndex = index;
      }
    }
    if (bestIndex === -1) break;
    tokens.splice(bestIndex, 2, bestId);
  }
  return tokens;
}

describe("llama2.c tokenizer file", () => {
  it("turns tok512.bin into a SentencePiece vocabulary", () => {
    const vocabulary = readLlama2cTokenizer(tokenizerPath);
    const { pieces, scores } = rawPieces();
    expect(vocabulary.tokens).toHaveLength(512);
    expect(vocabulary.tokens.slice(0, 3)).toEqual(["<unk>", "<s>", "</s>"]);
    expect(vocabulary.tokens[3]).toBe("<0x00>");
    expect(vocabulary.tokens[13]).toBe("<0x0A>");
    expect(vocabulary.tokens[258]).toBe("<0xFF>");
    expect(Array.from(vocabulary.tokenTypes).slice(0, 4)).toEqual([2, 3, 3, 6]);
    expect(vocabulary.tokenTypes[258]).toBe(6);
    for (let id = 259; id < 512; id++) {
      expect(vocabulary.tokenTypes[id]).toBe(1);
      expect(vocabulary.tokens[id]).toBe(pieces[id].replaceAll(" ", "\u2581"));
      expect(vocabulary.scores[id]).toBe(Math.fround(scores[id]));
    }
    expect(vocabulary).toMatchObject({ bosId: 1, eosId: 2, unknownId: 0, addBos: true, addEos: false });
  });

  it("rejects truncated and foreign files", () => {
    const bytes = readFileSync(tokenizerPath);
    expect(() => parseLlama2cTokenizer(bytes.subarray(0, 101), "cut.bin")).toThrow(ModelFileError);
    expect(() => parseLlama2cTokenizer(new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2]), "x.bin")).toThrow(
      /x\.bin: max_token_length -1 is implausible/,
    );
  });
});

describe("SentencePiece BPE tokenizer", () => {
  const tokenizer = createTokenizer(readLlama2cTokenizer(tokenizerPath));
  const sentence = "Once upon a time, there was a little girl named Lily.";

  it("round-trips the opening of the stories260K sample", () => {
    const tokens = tokenizer.encode(sentence);
    expect(tokens[0]).toBe(1);
    expect(tokens.length).toBeLessThan(sentence.length / 2);
    expect(tokenizer.decode(tokens)).toBe(sentence);
  });

  it("gives the ids run.c's encoder gives", () => {
    expect(tokenizer.encode(sentence)).toEqual(runCEncode(sentence));
    const text = readFileSync(sharedPath("models", "tinystories_val_256k.txt"), "utf8").slice(0, 6000);
    expect(tokenizer.encode(text)).toEqual(runCEncode(text));
  });

  it("encodes a word that is one piece of the vocabulary as that piece", () => {
    const { pieces } = rawPieces();
    const words = pieces
      .map((piece, id) => ({ piece, id }))
      .filter(({ piece, id }) => id >= 259 && /^ [a-z]{3,}$/.test(piece));
    expect(words.length).toBeGreaterThan(10);
    for (const { piece, id } of words) {
      expect(tokenizer.encode(piece.slice(1), { addBos: false })).toEqual([id]);
    }
  });

  it("falls back to UTF-8 byte tokens (id = byte + 3) for characters outside the vocabulary", () => {
    const space = tokenizer.tokenId("\u2581") as number;
    // tok512 learned "é" from the data set's mojibake, so use a letter it never saw.
    expect(tokenizer.tokenId("ж")).toBeUndefined();
    expect(tokenizer.encode("ж", { addBos: false })).toEqual([space, 0xd0 + 3, 0xb6 + 3]);
    const emoji = "🙂";
    const emojiBytes = [...Buffer.from(emoji, "utf8")].map((byte) => byte + 3);
    expect(tokenizer.encode(emoji, { addBos: false })).toEqual([space, ...emojiBytes]);
    expect(tokenizer.decode(tokenizer.encode("Lily said: éж🙂!"))).toBe("Lily said: éж🙂!");
  });

  it("handles empty text, EOS and newlines", () => {
    expect(tokenizer.encode("")).toEqual([1]);
    expect(tokenizer.encode("", { addBos: false })).toEqual([]);
    expect(tokenizer.encode("hi", { addEos: true }).at(-1)).toBe(2);
    expect(tokenizer.decode(tokenizer.encode("a\nb"))).toBe("a\nb");
    expect(tokenizer.encode("a\nb")).toContain(13);
  });
});
