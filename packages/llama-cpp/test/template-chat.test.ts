/**
 * The template chat session that ONNX Runtime, WebGPU and the reference backend share (core's
 * TemplateChatSession, reached here through the reference adapter's createSelfExtendChatSession),
 * checked against llama.cpp's own template application on the same GGUF (the demo model with a chat
 * template added): node-llama-cpp's JinjaTemplateChatWrapper renders the history, and llama.cpp
 * tokenizes the whole rendered prompt with special tokens parsed, as llama-server does. (The Jinja
 * wrapper alone tokenizes each piece between its template placeholders on its own, which splits
 * SentencePiece words differently; the text it renders is the same.)
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ContextLengthError, planSelfExtend, renderChatTemplate } from "@self-extend/core";
import { loadLlamaWeights, writeLlamaGguf } from "@self-extend/models/node";
import {
  createReferenceBackend,
  createSelfExtendChatSession as createTemplateChatSession,
} from "@self-extend/reference";
import { sharedModelPaths } from "@self-extend/test-fixtures";
import {
  type ChatHistoryItem,
  ChatWrapper,
  type ChatWrapperGenerateContextStateOptions,
  type ChatWrapperGeneratedContextState,
  JinjaTemplateChatWrapper,
  type LlamaModel,
  LlamaText,
  SpecialToken,
  SpecialTokensText,
} from "node-llama-cpp";
import { afterAll, describe, expect, it } from "vitest";
import { createSelfExtendChatSession, createSelfExtendContext } from "../src/index.js";

const demoModelPath = join(import.meta.dirname, "..", "..", "demo-model", "demo-model.gguf");
const stories = readFileSync(sharedModelPaths.validationText, "utf8");

// A Llama 2 style template written for this test: BOS, [INST] turns, EOS after each answer.
const chatTemplate =
  "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}[INST] {{ message['content'] }} [/INST]" +
  "{% elif message['role'] == 'assistant' %}{{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}";

const folder = mkdtempSync(join(tmpdir(), "template-chat-"));
const templatedModelPath = join(folder, "demo-model-chat.gguf");
writeLlamaGguf(templatedModelPath, loadLlamaWeights(demoModelPath), {
  extraMetadata: { "tokenizer.chat_template": { type: "string", value: chatTemplate } },
});
afterAll(() => rmSync(folder, { recursive: true, force: true }));

/** node-llama-cpp's rendering of a history as plain text (special tokens spelled out). */
function renderedText(model: LlamaModel, history: readonly ChatHistoryItem[]): string {
  const state = new JinjaTemplateChatWrapper({ template: chatTemplate }).generateContextState({
    chatHistory: [...history],
  });
  return state.contextText.values
    .map((value) => {
      if (typeof value === "string") return value;
      if (value instanceof SpecialTokensText) return value.value;
      if (value.value === "BOS") return model.tokens.bosString ?? "";
      if (value.value === "EOS") return model.tokens.eosString ?? "";
      throw new Error(`unexpected special token ${value.value} in the rendered template`);
    })
    .join("");
}

/** JinjaTemplateChatWrapper's text, tokenized by llama.cpp in one piece with special tokens parsed. */
class WholePromptJinjaChatWrapper extends ChatWrapper {
  readonly wrapperName = "WholePromptJinja";
  constructor(private readonly model: LlamaModel) {
    super();
  }
  /** No system prompt, as our session without one (ChatWrapper's default adds node-llama-cpp's own). */
  override generateInitialChatHistory(): ChatHistoryItem[] {
    return [];
  }
  override generateContextState({
    chatHistory,
  }: ChatWrapperGenerateContextStateOptions): ChatWrapperGeneratedContextState {
    return {
      contextText: LlamaText(new SpecialTokensText(renderedText(this.model, chatHistory))),
      stopGenerationTriggers: [LlamaText(new SpecialToken("EOS"))],
    };
  }
}

describe.sequential("template chat (ONNX Runtime, WebGPU, reference) against llama.cpp's", () => {
  it("answers a message of 3x the trained context with llama.cpp's prompt and greedy tokens, then reuses the history", async () => {
    const trainedContext = 256;
    const contextSize = 4 * trainedContext;
    const selfExtend = planSelfExtend({ trainedContext, targetContext: contextSize }).config;
    const context = await createSelfExtendContext({
      model: templatedModelPath,
      ...selfExtend,
      contextSize,
      threads: 1,
    });
    const model = await createReferenceBackend().loadModel({ path: templatedModelPath });
    try {
      expect(model.chatTemplate).toBe(chatTemplate);
      const theirs = await createSelfExtendChatSession({
        context,
        chatWrapper: new WholePromptJinjaChatWrapper(context.model),
      });
      const session = await model.createSession({ selfExtend, contextSize });
      const ours = createTemplateChatSession({ model, session });

      const longMessage = `${stories.slice(0, 2000)}\nWhat happened in these stories?`;
      const expected = await theirs.promptWithMeta(longMessage, { maxTokens: 24 });
      const chunks: string[] = [];
      const actual = await ours.promptWithMeta(longMessage, {
        maxTokens: 24,
        onTextChunk: (chunk) => chunks.push(chunk),
      });
      // node-llama-cpp's rendering, and the prompt llama.cpp evaluated, token for token.
      const userTurn = ours.chatHistory.slice(0, -1);
      expect(ours.render(userTurn)).toBe(
        renderedText(context.model, [
          { type: "user", text: longMessage },
          { type: "model", response: [] },
        ]),
      );
      const llamaPrompt = context.evaluatedTokens.slice(0, expected.evaluatedPromptTokens);
      expect(ours.tokenize(userTurn)).toEqual(llamaPrompt);
      expect(actual.evaluatedPromptTokens).toBe(llamaPrompt.length);
      expect(llamaPrompt.length).toBeGreaterThan(2.5 * trainedContext);
      expect(actual.tokens).toEqual(expected.tokens);
      expect(actual.text).toBe(expected.text);
      expect(chunks.join("")).toBe(actual.text);

      const second = await ours.promptWithMeta("And then?", { maxTokens: 8 });
      const secondExpected = await theirs.promptWithMeta("And then?", { maxTokens: 8 });
      expect(second.tokens).toEqual(secondExpected.tokens);
      // Only the end of the previous answer, the new user message and the model prefix are new.
      expect(second.evaluatedPromptTokens).toBeGreaterThan(0);
      expect(second.evaluatedPromptTokens).toBeLessThan(40);
      expect(ours.chatHistory.at(-1)).toEqual({ role: "assistant", content: second.text });
    } finally {
      await context.dispose();
      await model.dispose();
    }
  });

  it("refuses a history with no room for an answer, and recovers from an abort mid-answer", async () => {
    const model = await createReferenceBackend().loadModel({ path: templatedModelPath });
    try {
      const plain = { selfExtend: { groupSize: 1, neighborWindow: 1 }, contextSize: 256 };
      const session = await model.createSession(plain);
      const chat = createTemplateChatSession({ model, session });
      await expect(chat.prompt(stories.slice(0, 2000))).rejects.toBeInstanceOf(ContextLengthError);
      expect(session.tokenCount).toBe(0);
      expect(chat.chatHistory).toEqual([]);

      const controller = new AbortController();
      const aborted = chat.prompt("Tell me a story about a dog.", {
        maxTokens: 32,
        signal: controller.signal,
        onTextChunk: () => controller.abort(),
      });
      await expect(aborted).rejects.toThrow(/abort/i);
      expect(chat.chatHistory).toEqual([]);
      const answer = await chat.promptWithMeta("Tell me a story about a dog.", { maxTokens: 16 });

      const fresh = createTemplateChatSession({ model, session: await model.createSession(plain) });
      const expected = await fresh.promptWithMeta("Tell me a story about a dog.", { maxTokens: 16 });
      expect(answer.tokens).toEqual(expected.tokens);
      expect(answer.text).toBe(expected.text);
    } finally {
      await model.dispose();
    }
  });

  // Qwen3 is left to core's hand-checked test: node-llama-cpp renders the open model turn as an empty
  // assistant message, which that template prefixes with an empty <think> block; llama.cpp's own
  // template application (add_generation_prompt, as ours) does not.
  it("renders real Llama 3 and Gemma 3 templates as node-llama-cpp's JinjaTemplateChatWrapper does", () => {
    const { templates } = JSON.parse(
      readFileSync(
        join(import.meta.dirname, "..", "..", "core", "test", "fixtures", "chat-templates.json"),
        "utf8",
      ),
    ) as {
      templates: Record<
        string,
        { chat_template: string; bos_token: string | null; eos_token: string | null }
      >;
    };
    const history: ChatHistoryItem[] = [
      { type: "system", text: "You are terse." },
      { type: "user", text: "Hi there" },
      { type: "model", response: ["Hello."] },
      { type: "user", text: "Name a colour." },
      { type: "model", response: [] },
    ];
    for (const name of ["llama3", "gemma3"]) {
      const fixture = templates[name];
      // reasoning: null leaves the template's own default (no enable_thinking), as our rendering does.
      const state = new JinjaTemplateChatWrapper({
        template: fixture.chat_template,
        reasoning: null,
      }).generateContextState({ chatHistory: history });
      const theirs = state.contextText.values
        .map((value) => {
          if (typeof value === "string") return value;
          if (value instanceof SpecialTokensText) return value.value;
          return value.value === "BOS" ? (fixture.bos_token ?? "") : (fixture.eos_token ?? "");
        })
        .join("");
      const ours = renderChatTemplate(
        fixture.chat_template,
        [
          { role: "system", content: "You are terse." },
          { role: "user", content: "Hi there" },
          { role: "assistant", content: "Hello." },
          { role: "user", content: "Name a colour." },
        ],
        { bosToken: fixture.bos_token ?? undefined, eosToken: fixture.eos_token ?? undefined },
      );
      expect(ours, name).toBe(theirs);
    }
  });

  it("names the missing GGUF key for a model without a chat template, and takes an explicit one", async () => {
    const model = await createReferenceBackend().loadModel({ path: demoModelPath });
    try {
      const session = await model.createSession({
        selfExtend: { groupSize: 1, neighborWindow: 1 },
        contextSize: 256,
      });
      expect(() => createTemplateChatSession({ model, session })).toThrow(
        'the model "demo-model" has no chat template: its file lacks the GGUF key tokenizer.chat_template; pass the chatTemplate option',
      );
      const chat = createTemplateChatSession({
        model,
        session,
        chatTemplate,
        systemPrompt: "ignored by this template",
      });
      expect(chat.render([{ role: "user", content: "Hi" }])).toBe("<s>[INST] Hi [/INST]");
      const answer = await chat.promptWithMeta("Tell me a story.", { maxTokens: 4 });
      expect(answer.stopReason).toBe("max-tokens");
      expect(answer.tokens).toHaveLength(4);
    } finally {
      await model.dispose();
    }
  });
});
