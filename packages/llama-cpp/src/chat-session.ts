/**
 * Chat on a Self-Extend context through node-llama-cpp's own chat wrappers (the model's chat
 * template), for users of `LlamaChatSession`, which itself cannot run here: it evaluates through a
 * `LlamaContextSequence`, whose position bookkeeping cannot follow keys that Self-Extend moves.
 *
 * Each prompt renders the whole history with the chat wrapper (`generateContextState`), as
 * LlamaChatSession does, evaluates only what the context has not seen yet (the rendered history
 * usually extends what was evaluated before; otherwise the context is reset and the history
 * evaluated again), and generates until an end-of-generation token, one of the wrapper's stop
 * triggers, `maxTokens`, or a full context (stop reason "context-full"). A history that leaves no
 * room for an answer is a ContextLengthError before anything is evaluated. Function calling,
 * grammars, prefix triggers and context shifting (dropping old messages) are not offered.
 */
import {
  ContextLengthError,
  createSampler,
  type EvaluationProgress,
  type SamplingOptions,
} from "@self-extend/core";
import type { ChatHistoryItem, ChatWrapper, LlamaText, Token } from "node-llama-cpp";
import type { SelfExtendContext } from "./llama-cpp-session.js";

export interface SelfExtendChatSessionOptions {
  readonly context: SelfExtendContext;
  /** Default: node-llama-cpp's `resolveChatWrapper(model)` (the model's own template when known). */
  readonly chatWrapper?: ChatWrapper;
  /** Passed to the wrapper's `generateInitialChatHistory`, as LlamaChatSession does. */
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
export type ChatStopReason = "end-of-generation" | "stop-trigger" | "max-tokens" | "context-full";

export interface ChatResponse {
  readonly text: string;
  /** The generated tokens, the stop token or trigger included. */
  readonly tokens: readonly number[];
  readonly stopReason: ChatStopReason;
  /** Tokens of the rendered history that were evaluated for this prompt (the rest was reused). */
  readonly evaluatedPromptTokens: number;
}

interface StopTriggers {
  readonly texts: readonly string[];
  readonly tokenSequences: readonly (readonly number[])[];
}

export class SelfExtendChatSession {
  readonly context: SelfExtendContext;
  readonly chatWrapper: ChatWrapper;
  private history: ChatHistoryItem[];

  private constructor(
    context: SelfExtendContext,
    chatWrapper: ChatWrapper,
    systemPrompt: string | undefined,
  ) {
    this.context = context;
    this.chatWrapper = chatWrapper;
    this.history = chatWrapper.generateInitialChatHistory({ systemPrompt });
  }

  static async create(options: SelfExtendChatSessionOptions): Promise<SelfExtendChatSession> {
    let chatWrapper = options.chatWrapper;
    if (chatWrapper === undefined) {
      const { resolveChatWrapper } = await import("node-llama-cpp");
      chatWrapper = resolveChatWrapper(options.context.model);
    }
    return new SelfExtendChatSession(options.context, chatWrapper, options.systemPrompt);
  }

  /** The history so far (system prompt, user messages, model responses). */
  get chatHistory(): readonly ChatHistoryItem[] {
    return this.history;
  }

  /** Replaces the history; the next prompt reuses whatever prefix of it the context still holds. */
  setChatHistory(history: readonly ChatHistoryItem[]): void {
    this.history = structuredClone([...history]);
  }

  async prompt(text: string, options: ChatPromptOptions = {}): Promise<string> {
    return (await this.promptWithMeta(text, options)).text;
  }

  async promptWithMeta(text: string, options: ChatPromptOptions = {}): Promise<ChatResponse> {
    const { context } = this;
    const rendered: ChatHistoryItem[] = [
      ...this.history,
      { type: "user", text },
      { type: "model", response: [] },
    ];
    const state = this.chatWrapper.generateContextState({ chatHistory: rendered });
    const promptTokens = state.contextText.tokenize(context.model.tokenizer) as number[];
    const triggers = this.resolveStopTriggers(state.stopGenerationTriggers);

    // Room for the answer: the context, and Self-Extend's largest usable length (L - W) * G + W.
    const limit = Math.min(context.options.contextSize, context.largestUsableContext);
    if (promptTokens.length + 1 > limit) {
      throw new ContextLengthError(
        promptTokens.length + 1,
        limit,
        `the rendered chat history (${promptTokens.length} tokens) leaves no room for an answer in a context of ${limit} tokens; start a new session or create the context with a larger contextSize or groupSize`,
      );
    }
    // Reuse what the context already evaluated when the new rendering extends it.
    const evaluated = context.evaluatedTokens;
    let reused = 0;
    if (
      evaluated.length < promptTokens.length &&
      evaluated.every((token, index) => token === promptTokens[index])
    ) {
      reused = evaluated.length;
    } else {
      await context.reset();
    }
    const pending = promptTokens.slice(reused);
    const room = limit - promptTokens.length;
    const maxTokens = Math.min(options.maxTokens ?? room, room);
    const stopsForRoom = maxTokens === room && options.maxTokens !== room;
    const sample = createSampler(options);
    const evaluation = await context.evaluate(pending, {
      logits: "last",
      signal: options.signal,
      onProgress: options.onProgress,
    });

    let logits = evaluation.logits;
    const tokens: number[] = [];
    let emitted = "";
    let stopReason: ChatStopReason = stopsForRoom ? "context-full" : "max-tokens";
    let cut: number | undefined;
    for (let step = 0; step < maxTokens; step++) {
      options.signal?.throwIfAborted();
      const token = sample(logits);
      tokens.push(token);
      if (context.model.isEogToken(token as Token)) {
        stopReason = "end-of-generation";
        break;
      }
      const textSoFar = context.detokenize(tokens);
      // Nothing from `emitted` on can hold a trigger's start (it is held back below), and one token
      // may complete a trigger and carry text past it: search, do not just compare the end.
      const found = triggers.texts
        .map((trigger) => textSoFar.indexOf(trigger, emitted.length))
        .filter((index) => index >= 0);
      if (found.length > 0) {
        stopReason = "stop-trigger";
        cut = Math.min(...found);
        break;
      }
      if (triggers.tokenSequences.some((sequence) => endsWith(tokens, sequence))) {
        stopReason = "stop-trigger";
        break;
      }
      // Hold back what could still become a trigger (the start of a text trigger, the first tokens
      // of a special-token trigger) and partial characters.
      const heldTokens = longestTriggerPrefix(tokens, triggers.tokenSequences);
      const visible =
        heldTokens === 0 ? textSoFar : context.detokenize(tokens.slice(0, tokens.length - heldTokens));
      const safe = safePrefixLength(visible, triggers.texts);
      if (safe > emitted.length && !visible.slice(0, safe).endsWith("\uFFFD")) {
        options.onTextChunk?.(visible.slice(emitted.length, safe));
        emitted = visible.slice(0, safe);
      }
      if (step < maxTokens - 1) logits = await context.decode(token, { signal: options.signal });
    }
    let response =
      stopReason === "max-tokens" || stopReason === "context-full" ? context.detokenize(tokens) : "";
    if (stopReason === "stop-trigger") {
      const all = context.detokenize(tokens);
      response =
        cut !== undefined ? all.slice(0, cut) : context.detokenize(trimTriggerTokens(tokens, triggers));
    } else if (stopReason === "end-of-generation") {
      response = context.detokenize(tokens.slice(0, -1));
    }
    if (response.length > emitted.length && response.startsWith(emitted)) {
      options.onTextChunk?.(response.slice(emitted.length));
    }
    this.history = [...this.history, { type: "user", text }, { type: "model", response: [response] }];
    return { text: response, tokens, stopReason, evaluatedPromptTokens: pending.length };
  }

  /** Text triggers stay text (matched on the decoded response); those with special tokens become token sequences. */
  private resolveStopTriggers(triggers: readonly LlamaText[]): StopTriggers {
    const texts: string[] = [];
    const tokenSequences: number[][] = [];
    for (const trigger of triggers) {
      if (trigger.values.every((value) => typeof value === "string")) {
        const text = trigger.values.join("");
        if (text.length > 0) texts.push(text);
      } else {
        const sequence = trigger.tokenize(this.context.model.tokenizer) as number[];
        if (sequence.length > 0) tokenSequences.push(sequence);
      }
    }
    return { texts, tokenSequences };
  }
}

function endsWith(tokens: readonly number[], sequence: readonly number[]): boolean {
  if (sequence.length > tokens.length) return false;
  const offset = tokens.length - sequence.length;
  return sequence.every((token, index) => tokens[offset + index] === token);
}

/** The most trailing tokens that are a proper prefix of some token-sequence trigger. */
function longestTriggerPrefix(tokens: readonly number[], sequences: readonly (readonly number[])[]): number {
  let longest = 0;
  for (const sequence of sequences) {
    for (let length = Math.min(sequence.length - 1, tokens.length); length > longest; length--) {
      if (endsWith(tokens, sequence.slice(0, length))) {
        longest = length;
        break;
      }
    }
  }
  return longest;
}

function trimTriggerTokens(tokens: readonly number[], triggers: StopTriggers): number[] {
  for (const sequence of triggers.tokenSequences) {
    if (endsWith(tokens, sequence)) return tokens.slice(0, tokens.length - sequence.length);
  }
  return [...tokens];
}

/** Length of the text that cannot be the beginning of a stop trigger still being generated. */
function safePrefixLength(text: string, triggers: readonly string[]): number {
  let safe = text.length;
  for (const trigger of triggers) {
    for (let length = Math.min(trigger.length - 1, text.length); length > 0; length--) {
      if (text.endsWith(trigger.slice(0, length))) {
        safe = Math.min(safe, text.length - length);
        break;
      }
    }
  }
  return safe;
}

/** Friendly entry point: `await createSelfExtendChatSession({ context })`. */
export function createSelfExtendChatSession(
  options: SelfExtendChatSessionOptions,
): Promise<SelfExtendChatSession> {
  return SelfExtendChatSession.create(options);
}
