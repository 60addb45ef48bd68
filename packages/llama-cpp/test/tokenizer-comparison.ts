/**
 * What the tokenizer tests (bpe-tokenizer.test.ts, spm-tokenizer.test.ts) share: the varied texts
 * for a vocabulary, and the texts on which our tokenizer's ids differ from another tokenizer's.
 */
import type { Tokenizer } from "@self-extend/models/node";
import type { LlamaModel } from "node-llama-cpp";
import { tokenizerTexts } from "./bpe-texts.js";

/**
 * `count` texts for `tokenizer`'s vocabulary: every user-defined token and a spread of control
 * tokens go into them (the first 40 special tokens `listed` keeps, and every 16th).
 */
export function vocabularyTexts(
  tokenizer: Tokenizer,
  count: number,
  listed: (token: string) => boolean = () => true,
): string[] {
  const { tokens, tokenTypes } = tokenizer.vocabulary;
  const specialTokens = tokens.filter((_, id) => [3, 4].includes(tokenTypes[id]));
  return tokenizerTexts(count, [
    ...specialTokens.filter((_, index) => index % 16 === 0 || index < 12),
    ...specialTokens.filter(listed).slice(0, 40),
  ]);
}

/** How many texts llama.cpp tokenizes (special tokens parsed) into at least one control or user-defined token. */
export function textsWithSpecialTokens(
  texts: readonly string[],
  tokenizer: Tokenizer,
  llamaCpp: LlamaModel,
): number {
  const types = tokenizer.vocabulary.tokenTypes;
  return texts.filter((text) =>
    [...llamaCpp.tokenize(text, true)].some((id) => types[id] === 3 || types[id] === 4),
  ).length;
}

/** The texts (at most five) on which our ids, without BOS and EOS, differ from `theirs`. */
export function encodingMismatches(
  texts: readonly string[],
  ours: Tokenizer,
  theirs: (text: string) => readonly number[],
): { text: string; ours: number[]; theirs: readonly number[] }[] {
  return texts
    .map((text) => ({
      text,
      ours: ours.encode(text, { addBos: false, addEos: false }),
      theirs: theirs(text),
    }))
    .filter((result) => JSON.stringify(result.ours) !== JSON.stringify(result.theirs))
    .slice(0, 5);
}
