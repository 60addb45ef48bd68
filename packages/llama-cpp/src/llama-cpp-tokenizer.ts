/**
 * The v1 tokenizer of a node-llama-cpp model: llama.cpp's own tokenizer, so token ids are exactly
 * the ones llama.cpp would use for the same text.
 */
import type { TokenizerEncodeOptionsV1, TokenizerV1 } from "@self-extend/core";
import type { LlamaModel, Token } from "node-llama-cpp";

export function llamaCppTokenizer(model: LlamaModel): TokenizerV1 {
  const { tokens } = model;
  return {
    bosToken: tokens.bos ?? undefined,
    eosToken: tokens.eos ?? undefined,
    encode(text: string, options: TokenizerEncodeOptionsV1 = {}): number[] {
      // Special tokens written in the text are parsed (llama.cpp's parse_special), as the other
      // adapters' tokenizers (@self-extend/models) do and as evaluate(text) does here.
      const ids: number[] = model.tokenize(text, true);
      const addBos = options.addBos ?? tokens.shouldPrependBosToken;
      const addEos = options.addEos ?? tokens.shouldAppendEosToken;
      if (addBos && tokens.bos !== null) ids.unshift(tokens.bos);
      if (addEos && tokens.eos !== null) ids.push(tokens.eos);
      return ids;
    },
    decode(ids: readonly number[]): string {
      // llama.cpp strips SentencePiece's dummy space from the first piece only when no BOS comes
      // before it; without the leading BOS, text decodes as on the other adapters.
      let start = 0;
      while (start < ids.length && ids[start] === tokens.bos) start++;
      const rest: readonly number[] = ids.slice(start);
      return model.detokenize(rest as readonly Token[], false);
    },
  };
}
