/**
 * The tokenizer of a Hugging Face model folder: `tokenizer.json` (and `tokenizer_config.json` for
 * the BOS/EOS names), encoded and decoded by `@huggingface/tokenizers`, the maintained port of the
 * tokenizers library. Used for ONNX exports, which carry no GGUF vocabulary.
 */

import { Tokenizer as HuggingFaceTokenizer } from "@huggingface/tokenizers";
import type { ChatVocabulary, TokenizerV1 } from "@self-extend/core";
import { endOfTurnTexts } from "./chat-vocabulary.js";

/** A tokenizer.json tokenizer, with what chat templates need of its special tokens. */
export interface JsonTokenizer extends TokenizerV1 {
  readonly vocabularySize: number;
  /** Special added tokens by text, and the tokens that end a turn (EOS and end-of-turn markers). */
  readonly chatVocabulary: ChatVocabulary;
}

type SpecialToken = string | { readonly content?: string } | null | undefined;

function specialTokenText(token: SpecialToken): string | undefined {
  if (typeof token === "string") return token;
  return token?.content ?? undefined;
}

/**
 * `tokenizerJson` and `tokenizerConfig` are the parsed files. BOS is put in front by default
 * exactly when the tokenizer's own post-processor does it (encoding with special tokens), so the
 * default matches `transformers`' `tokenizer(text)`.
 */
export function createTokenizerFromJson(tokenizerJson: object, tokenizerConfig: object = {}): JsonTokenizer {
  const library = new HuggingFaceTokenizer(tokenizerJson, tokenizerConfig);
  const config = tokenizerConfig as { bos_token?: SpecialToken; eos_token?: SpecialToken };
  const idOf = (token: SpecialToken) => {
    const text = specialTokenText(token);
    return text === undefined ? undefined : library.token_to_id(text);
  };
  const bosToken = idOf(config.bos_token);
  const eosToken = idOf(config.eos_token);
  const withSpecial = library.encode("", { add_special_tokens: true }).ids;
  const addsBos = bosToken !== undefined && withSpecial[0] === bosToken;
  const addsEos = eosToken !== undefined && withSpecial.at(-1) === eosToken;
  const model = (tokenizerJson as { model?: { vocab?: object | unknown[] } }).model;
  const added =
    (
      tokenizerJson as {
        added_tokens?: { id: number; content: string; special?: boolean; rstrip?: boolean }[];
      }
    ).added_tokens ?? [];
  const specialTokens = new Map<string, number>();
  const endOfGenerationTokens: number[] = eosToken === undefined ? [] : [eosToken];
  for (const token of added) {
    if (token.special !== true || specialTokens.has(token.content)) continue;
    specialTokens.set(token.content, token.id);
    if (endOfTurnTexts.has(token.content) && token.id !== eosToken) endOfGenerationTokens.push(token.id);
  }
  const vocabulary = model?.vocab;
  const largestId = Math.max(
    -1,
    ...(Array.isArray(vocabulary) ? [vocabulary.length - 1] : Object.values(vocabulary ?? {}).map(Number)),
    ...added.map((token) => token.id),
  );
  return {
    bosToken,
    eosToken,
    vocabularySize: largestId + 1,
    chatVocabulary: {
      specialTokens,
      endOfGenerationTokens,
      // Hugging Face's rstrip (Phi-3's role tokens): the whitespace after the token is dropped.
      rightStrippingTokens: added
        .filter((token) => token.special === true && token.rstrip === true)
        .map((token) => token.id),
    },
    encode(text, options = {}) {
      const ids: number[] = [];
      if ((options.addBos ?? addsBos) && bosToken !== undefined) ids.push(bosToken);
      if (text.length > 0) ids.push(...library.encode(text, { add_special_tokens: false }).ids);
      if ((options.addEos ?? addsEos) && eosToken !== undefined) ids.push(eosToken);
      return ids;
    },
    decode(tokens) {
      return library.decode([...tokens], { skip_special_tokens: true });
    },
  };
}
