/**
 * The passkey retrieval prompt of the Self-Extend paper (from Landmark Attention's test): an
 * introduction, a filler repeated to the wanted length, the line "The pass key is NNNNN. Remember
 * it. NNNNN is the pass key." at a chosen depth, and a question at the end.
 *
 * Built in tokens, not characters, so the prompt is exactly `length` tokens: each part (and each
 * filler sentence) is encoded on its own and the token lists are joined. A SentencePiece encoder
 * puts a space in front of every part, so the decoded prompt reads as the parts joined by spaces.
 * The key line is inserted at the filler-sentence boundary nearest the requested depth, so it
 * never splits a sentence; the filler's last sentence is cut at a token to hit the length exactly.
 */
import { createRandom } from "@self-extend/core";

/** The part of a tokenizer the passkey test needs (the models package's Tokenizer has it). */
export interface PasskeyTokenizer {
  encode(text: string, options?: { readonly addBos?: boolean; readonly addEos?: boolean }): number[];
  decode(tokens: readonly number[]): string;
}

export const defaultPasskeyFiller =
  "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
export const defaultPasskeyQuestion = "What is the pass key? The pass key is";
export const defaultPasskeyIntroduction =
  "There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. I will quiz you about the important information there.";

export function passkeyLine(key: string): string {
  return `The pass key is ${key}. Remember it. ${key} is the pass key.`;
}

export interface PasskeyPromptOptions {
  /** Prompt length in tokens, BOS included. */
  readonly length: number;
  /** 0 puts the key line right after the introduction, 1 right before the question. */
  readonly depth: number;
  readonly key: string;
  readonly filler?: string;
  readonly question?: string;
  /** "" leaves the introduction out. */
  readonly introduction?: string;
}

export interface PasskeyPrompt {
  readonly tokens: number[];
  readonly key: string;
  /** Index of the key line's first token, and one past its last. */
  readonly keyStart: number;
  readonly keyEnd: number;
  /** Where the key line landed: filler tokens before it / all filler tokens. */
  readonly actualDepth: number;
}

/** Sentences of the filler, each kept with its punctuation. */
function fillerSentences(filler: string): string[] {
  const sentences = filler
    .split(/(?<=[.!?])\s+/)
    .map((sentence) => sentence.trim())
    .filter((sentence) => sentence.length > 0);
  if (sentences.length === 0) throw new RangeError("the passkey filler is empty");
  return sentences;
}

export function buildPasskeyPrompt(
  tokenizer: PasskeyTokenizer,
  options: PasskeyPromptOptions,
): PasskeyPrompt {
  const { length, depth, key } = options;
  if (!(depth >= 0 && depth <= 1)) throw new RangeError(`depth ${depth} must be between 0 and 1`);
  const head = tokenizer.encode(options.introduction ?? defaultPasskeyIntroduction, {
    addBos: true,
    addEos: false,
  });
  const keyTokens = tokenizer.encode(passkeyLine(key), { addBos: false, addEos: false });
  const tail = tokenizer.encode(options.question ?? defaultPasskeyQuestion, { addBos: false, addEos: false });
  const budget = length - head.length - keyTokens.length - tail.length;
  if (budget < 0) {
    throw new RangeError(
      `a passkey prompt of ${length} tokens is too short: introduction, key line and question alone take ${length - budget}`,
    );
  }
  const units = fillerSentences(options.filler ?? defaultPasskeyFiller).map((sentence) =>
    tokenizer.encode(sentence, { addBos: false, addEos: false }),
  );
  if (units.some((unit) => unit.length === 0)) throw new RangeError("a filler sentence encodes to no tokens");
  const filler: number[] = [];
  const boundaries = [0];
  for (let unit = 0; filler.length < budget; unit = (unit + 1) % units.length) {
    filler.push(...units[unit]);
    boundaries.push(Math.min(filler.length, budget));
  }
  filler.length = budget;
  const target = depth * budget;
  let insertAt = 0;
  for (const boundary of boundaries) {
    if (Math.abs(boundary - target) < Math.abs(insertAt - target)) insertAt = boundary;
  }
  const tokens = [...head, ...filler.slice(0, insertAt), ...keyTokens, ...filler.slice(insertAt), ...tail];
  const keyStart = head.length + insertAt;
  return {
    tokens,
    key,
    keyStart,
    keyEnd: keyStart + keyTokens.length,
    actualDepth: budget === 0 ? depth : insertAt / budget,
  };
}

/** `count` five-digit keys from a seed: the same seed gives the same keys on every machine. */
export function passkeyKeys(count: number, seed: number): string[] {
  const random = createRandom(seed);
  return Array.from({ length: count }, () => String(10_000 + Math.floor(random() * 90_000)));
}
