import { createRandom } from "@self-extend/core";

/**
 * A seeded prompt: BOS first, then tokens drawn uniformly from the ordinary part of the vocabulary
 * (ids >= firstOrdinaryToken skip control tokens such as BOS/EOS that would end generation).
 */
export function seededPrompt(
  length: number,
  vocabularySize: number,
  seed: number,
  { bos = 1, firstOrdinaryToken = 3 }: { bos?: number; firstOrdinaryToken?: number } = {},
): number[] {
  const random = createRandom(seed);
  const span = Math.max(1, vocabularySize - firstOrdinaryToken);
  const tokens = [bos];
  while (tokens.length < length) tokens.push(firstOrdinaryToken + Math.floor(random() * span));
  return tokens;
}
