/**
 * Chat over any v1 session from the model's own Jinja chat template (GGUF `tokenizer.chat_template`),
 * rendered with @huggingface/jinja. Browser-safe: the WebGPU adapter runs it in browsers.
 *
 * Each prompt renders the whole history (as llama.cpp and node-llama-cpp's LlamaChatSession do),
 * evaluates only what the session has not seen yet (the rendering usually extends what was
 * evaluated; otherwise the session is reset and the history evaluated again), and generates until
 * an end-of-generation token, `maxTokens`, or a full context (stop reason "context-full"). A history
 * that leaves no room for an answer is a ContextLengthError before anything is evaluated.
 *
 * The rendered text is tokenized the way llama.cpp tokenizes a chat prompt with special tokens
 * parsed: the texts of the vocabulary's special tokens become those tokens, the text between them is
 * encoded on its own (so a SentencePiece vocabulary puts its dummy space in front of each piece, as
 * llama.cpp does after a special token), and a leading BOS text is dropped when the tokenizer adds
 * BOS itself, so the prompt never starts with two.
 */
import { Template } from "@huggingface/jinja";
import type {
  EvaluationProgress,
  SelfExtendModelV1,
  SelfExtendSessionV1,
  TokenizerV1,
} from "./backend-contract.js";
import { ContextLengthError } from "./errors.js";
import { createSampler, type SamplingOptions } from "./generation.js";
import { largestUsableContext } from "./position-map.js";

export interface ChatMessage {
  readonly role: "system" | "user" | "assistant";
  readonly content: string;
}

export interface ChatVocabulary {
  /** Texts of the special (control and user-defined) tokens a rendered template may contain. */
  readonly specialTokens: ReadonlyMap<string, number>;
  /** Generation ends at any of these (EOS, EOT, ...). */
  readonly endOfGenerationTokens: readonly number[];
  /**
   * Special tokens that drop the whitespace after them in the rendered text (llama.cpp's rstrip
   * attribute: Phi-3's, whose template puts a newline after each role token).
   */
  readonly rightStrippingTokens?: readonly number[];
}

export interface TemplateChatSessionOptions {
  readonly model: SelfExtendModelV1;
  /** A session of `model`; the chat session evaluates into it and resets it when the history changes. */
  readonly session: SelfExtendSessionV1;
  readonly vocabulary: ChatVocabulary;
  /** The model file's template, or one given explicitly (wins over the file's). */
  readonly chatTemplate: string | undefined;
  readonly systemPrompt?: string;
}

export interface ChatPromptOptions extends SamplingOptions {
  /** Most tokens of the response; default: until the context is full. */
  readonly maxTokens?: number;
  readonly signal?: AbortSignal;
  /** Each new piece of the response's text as soon as it is whole (UTF-8 characters are kept together). */
  readonly onTextChunk?: (text: string) => void;
  /** Progress of evaluating the rendered history (long prompts). */
  readonly onProgress?: (progress: EvaluationProgress) => void;
}

/** Why a response ended; "context-full" when the context (or Self-Extend's usable length) ran out first. */
export type ChatStopReason = "end-of-generation" | "max-tokens" | "context-full";

export interface ChatResponse {
  readonly text: string;
  /** The generated tokens, the end-of-generation token included. */
  readonly tokens: readonly number[];
  readonly stopReason: ChatStopReason;
  /** Tokens of the rendered history that were evaluated for this prompt (the rest was reused). */
  readonly evaluatedPromptTokens: number;
}

export class TemplateChatSession {
  readonly session: SelfExtendSessionV1;
  private readonly template: Template;
  private readonly tokenizer: TokenizerV1;
  private readonly vocabulary: ChatVocabulary;
  private readonly limit: number;
  private history: ChatMessage[];
  /** The tokens the session holds, as this chat session evaluated them. */
  private evaluated: number[] = [];

  constructor(options: TemplateChatSessionOptions) {
    const { model, session } = options;
    const name = model.info.name ?? model.info.architecture;
    if (options.chatTemplate === undefined || options.chatTemplate.length === 0) {
      throw new Error(
        `the model ${JSON.stringify(name)} has no chat template: its file lacks the GGUF key tokenizer.chat_template; pass the chatTemplate option`,
      );
    }
    if (model.tokenizer === undefined) {
      throw new Error(
        `the model ${JSON.stringify(name)} has no tokenizer, so it cannot chat; its file holds no vocabulary this adapter reads`,
      );
    }
    this.session = session;
    this.tokenizer = model.tokenizer;
    this.vocabulary = options.vocabulary;
    this.template = new Template(options.chatTemplate);
    // Room for the answer: the context, and Self-Extend's largest usable length (L - W) * G + W.
    this.limit = Math.min(
      session.options.contextSize,
      largestUsableContext(model.info.trainedContext, session.options.selfExtend),
    );
    this.history =
      options.systemPrompt === undefined ? [] : [{ role: "system", content: options.systemPrompt }];
  }

  /** The history so far (system prompt, user messages, model responses). */
  get chatHistory(): readonly ChatMessage[] {
    return this.history;
  }

  /** Replaces the history; the next prompt reuses whatever prefix of it the session still holds. */
  setChatHistory(history: readonly ChatMessage[]): void {
    this.history = history.map((message) => ({ ...message }));
  }

  /** The template's rendering of `messages` with the generation prompt, as text. */
  render(messages: readonly ChatMessage[]): string {
    return renderParsedTemplate(this.template, messages, {
      bosToken: this.tokenText(this.tokenizer.bosToken),
      eosToken: this.tokenText(this.tokenizer.eosToken),
    });
  }

  /** `render(messages)` as the token ids the session evaluates. */
  tokenize(messages: readonly ChatMessage[]): number[] {
    return tokenizeRenderedChat(this.render(messages), this.tokenizer, this.vocabulary);
  }

  async prompt(text: string, options: ChatPromptOptions = {}): Promise<string> {
    return (await this.promptWithMeta(text, options)).text;
  }

  async promptWithMeta(text: string, options: ChatPromptOptions = {}): Promise<ChatResponse> {
    const { session, tokenizer } = this;
    const history: ChatMessage[] = [...this.history, { role: "user", content: text }];
    const promptTokens = this.tokenize(history);
    if (promptTokens.length + 1 > this.limit) {
      throw new ContextLengthError(
        promptTokens.length + 1,
        this.limit,
        `the rendered chat history (${promptTokens.length} tokens) leaves no room for an answer in a context of ${this.limit} tokens; start a new session or create the session with a larger contextSize or groupSize`,
      );
    }
    const sample = createSampler(options);
    // Reuse what the session already evaluated when the new rendering extends it.
    const reusable =
      session.tokenCount === this.evaluated.length &&
      this.evaluated.length < promptTokens.length &&
      this.evaluated.every((token, index) => token === promptTokens[index]);
    if (!reusable) {
      await session.reset();
      this.evaluated = [];
    }
    const pending = promptTokens.slice(this.evaluated.length);
    const room = this.limit - promptTokens.length;
    const maxTokens = Math.min(options.maxTokens ?? room, room);
    const stopsForRoom = maxTokens === room && options.maxTokens !== room;
    const evaluation = await session.evaluate(pending, {
      logits: "last",
      signal: options.signal,
      onProgress: options.onProgress,
    });
    this.evaluated = [...promptTokens];

    const endOfGeneration = new Set(this.vocabulary.endOfGenerationTokens);
    let logits = evaluation.logits;
    const tokens: number[] = [];
    let emitted = "";
    let stopReason: ChatStopReason = stopsForRoom ? "context-full" : "max-tokens";
    for (let step = 0; step < maxTokens; step++) {
      options.signal?.throwIfAborted();
      const token = sample(logits);
      tokens.push(token);
      if (endOfGeneration.has(token)) {
        stopReason = "end-of-generation";
        break;
      }
      const textSoFar = tokenizer.decode(tokens);
      // A token may end inside a UTF-8 character: wait for the rest before showing it.
      if (textSoFar.length > emitted.length && !textSoFar.endsWith("\uFFFD")) {
        options.onTextChunk?.(textSoFar.slice(emitted.length));
        emitted = textSoFar;
      }
      if (step < maxTokens - 1) {
        logits = await session.decode(token, { signal: options.signal });
        this.evaluated.push(token);
      }
    }
    const response = tokenizer.decode(stopReason === "end-of-generation" ? tokens.slice(0, -1) : tokens);
    if (response.length > emitted.length && response.startsWith(emitted)) {
      options.onTextChunk?.(response.slice(emitted.length));
    }
    this.history = [...history, { role: "assistant", content: response }];
    return { text: response, tokens, stopReason, evaluatedPromptTokens: pending.length };
  }

  private tokenText(token: number | undefined): string | undefined {
    return specialTokenText(this.vocabulary, token);
  }
}

function specialTokenText(vocabulary: ChatVocabulary, token: number | undefined): string | undefined {
  if (token === undefined) return undefined;
  for (const [text, id] of vocabulary.specialTokens) if (id === token) return text;
  return undefined;
}

/**
 * A rendered chat template as token ids, as llama.cpp tokenizes a chat prompt with special tokens
 * parsed: special token texts become those tokens (right-stripping ones drop the whitespace after
 * them), the text between them is encoded on its own, and a leading BOS text is dropped when the
 * tokenizer adds BOS itself.
 */
export function tokenizeRenderedChat(
  text: string,
  tokenizer: TokenizerV1,
  vocabulary: ChatVocabulary,
): number[] {
  const bosText = specialTokenText(vocabulary, tokenizer.bosToken);
  const tokens = tokenizer.encode("", { addEos: false });
  const addsBos = tokens.length > 0;
  const rendered =
    addsBos && bosText !== undefined && text.startsWith(bosText) ? text.slice(bosText.length) : text;
  const rightStripping = new Set(vocabulary.rightStrippingTokens ?? []);
  let stripNext = false;
  for (const piece of splitOnSpecialTokens(rendered, vocabulary.specialTokens)) {
    if (typeof piece === "number") {
      tokens.push(piece);
      stripNext = rightStripping.has(piece);
      continue;
    }
    // C's isspace, as llama.cpp strips.
    const plain = stripNext ? piece.replace(/^[ \t\n\v\f\r]+/, "") : piece;
    stripNext = false;
    if (plain.length > 0) tokens.push(...tokenizer.encode(plain, { addBos: false, addEos: false }));
  }
  return tokens;
}

export interface ChatTemplateTokens {
  /** Text of the BOS token (`bos_token` in templates); empty when absent. */
  readonly bosToken?: string;
  readonly eosToken?: string;
}

/**
 * Renders a Hugging Face chat template (a Jinja string) for `messages`, ending with the prompt for
 * the assistant's turn (`add_generation_prompt`), as llama.cpp does.
 */
export function renderChatTemplate(
  template: string,
  messages: readonly ChatMessage[],
  tokens: ChatTemplateTokens = {},
): string {
  return renderParsedTemplate(new Template(template), messages, tokens);
}

/**
 * The same for a template parsed once (sessions render it at every prompt). Not exported: the
 * public declarations never name @huggingface/jinja's types, whose own declaration files do not
 * type-check under `moduleResolution: nodenext` without `skipLibCheck`.
 */
function renderParsedTemplate(
  parsed: Template,
  messages: readonly ChatMessage[],
  tokens: ChatTemplateTokens,
): string {
  return parsed.render({
    messages: messages.map((message) => ({ ...message })),
    add_generation_prompt: true,
    bos_token: tokens.bosToken ?? "",
    eos_token: tokens.eosToken ?? "",
  });
}

/** Splits text into plain pieces and special token ids, longest special text first at each place. */
export function splitOnSpecialTokens(
  text: string,
  specialTokens: ReadonlyMap<string, number>,
): (string | number)[] {
  // By first character, longest first: a vocabulary may hold thousands (Gemma's 6,415).
  const byFirstCharacter = new Map<string, string[]>();
  for (const key of specialTokens.keys()) {
    if (key.length === 0) continue;
    const candidates = byFirstCharacter.get(key[0]) ?? [];
    candidates.push(key);
    byFirstCharacter.set(key[0], candidates);
  }
  for (const candidates of byFirstCharacter.values()) candidates.sort((a, b) => b.length - a.length);
  const pieces: (string | number)[] = [];
  let plainStart = 0;
  let index = 0;
  while (index < text.length) {
    const match = byFirstCharacter.get(text[index])?.find((special) => text.startsWith(special, index));
    if (match === undefined) {
      index++;
      continue;
    }
    if (index > plainStart) pieces.push(text.slice(plainStart, index));
    pieces.push(specialTokens.get(match) as number);
    index += match.length;
    plainStart = index;
  }
  if (plainStart < text.length) pieces.push(text.slice(plainStart));
  return pieces;
}
