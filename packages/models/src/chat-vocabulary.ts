/**
 * What chat needs from a GGUF vocabulary: the texts of its special tokens (a rendered chat template
 * spells them out) and the tokens that end a turn.
 */
import {
  type ChatVocabulary,
  type SelfExtendModelV1,
  type SelfExtendSessionV1,
  TemplateChatSession,
} from "@self-extend/core";
import { ggufTokenTypes } from "./gguf-types.js";
import type { Tokenizer, Vocabulary } from "./tokenizer.js";
import type { JsonTokenizer } from "./tokenizer-json.js";

/**
 * End-of-turn texts that llama.cpp also treats as end of generation when a vocabulary holds them
 * as special tokens (ChatML, Llama 3, Gemma, Phi-3), since files often name only EOS.
 */
export const endOfTurnTexts: ReadonlySet<string> = new Set([
  "<|im_end|>",
  "<|eot_id|>",
  "<|end|>",
  "<end_of_turn>",
  "<|endoftext|>",
]);

export function chatVocabularyOf(vocabulary: Vocabulary): ChatVocabulary {
  const specialTokens = new Map<string, number>();
  // A vocabulary without EOS (Qwen's names none) ends turns only at its end-of-turn tokens.
  const endOfGenerationTokens: number[] = vocabulary.eosId === undefined ? [] : [vocabulary.eosId];
  vocabulary.tokens.forEach((text, id) => {
    const type = vocabulary.tokenTypes[id];
    if (type !== ggufTokenTypes.control && type !== ggufTokenTypes.userDefined) return;
    if (!specialTokens.has(text)) specialTokens.set(text, id);
    if (endOfTurnTexts.has(text) && id !== vocabulary.eosId) endOfGenerationTokens.push(id);
  });
  return { specialTokens, endOfGenerationTokens, rightStrippingTokens: vocabulary.rightStrippingTokens };
}

/** A model of an adapter that reads GGUF files with this package (ONNX Runtime, WebGPU, reference). */
export interface GgufChatModel extends SelfExtendModelV1 {
  /** A GGUF vocabulary's tokenizer, or a tokenizer.json one (ONNX exports). */
  readonly tokenizer?: Tokenizer | JsonTokenizer;
  /** The file's `tokenizer.chat_template`, when it has one. */
  readonly chatTemplate?: string;
}

export interface GgufChatSessionOptions {
  readonly model: GgufChatModel;
  readonly session: SelfExtendSessionV1;
  /** Default: the model file's `tokenizer.chat_template`. */
  readonly chatTemplate?: string;
  readonly systemPrompt?: string;
}

/** The adapters' `createSelfExtendChatSession`: core's TemplateChatSession with the file's template and vocabulary. */
export function createGgufChatSession(options: GgufChatSessionOptions): TemplateChatSession {
  const { model } = options;
  return new TemplateChatSession({
    model,
    session: options.session,
    chatTemplate: options.chatTemplate ?? model.chatTemplate,
    vocabulary:
      model.tokenizer === undefined
        ? { specialTokens: new Map(), endOfGenerationTokens: [] }
        : "chatVocabulary" in model.tokenizer
          ? model.tokenizer.chatVocabulary
          : chatVocabularyOf(model.tokenizer.vocabulary),
    systemPrompt: options.systemPrompt,
  });
}
