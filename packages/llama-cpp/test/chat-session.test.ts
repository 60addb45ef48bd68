/**
 * The chat session: with G = 1 it answers exactly as node-llama-cpp's own LlamaChatSession does
 * (same chat wrapper, same greedy tokens, turn after turn); with Self-Extend a user message of
 * three times the trained context is answered with the reference backend's greedy tokens for the
 * same rendered history; a second turn evaluates only the new part of the history.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { argmax, ContextLengthError, planSelfExtend } from "@self-extend/core";
import { createReferenceBackend } from "@self-extend/reference";
import { sharedModelPaths } from "@self-extend/test-fixtures";
import { GeneralChatWrapper, LlamaChatSession, LlamaText } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import { createSelfExtendChatSession, createSelfExtendContext } from "../src/index.js";

const demoModelPath = join(import.meta.dirname, "..", "..", "demo-model", "demo-model.gguf");
const stories = readFileSync(sharedModelPaths.validationText, "utf8");

/** The demo model without Self-Extend (G = 1), as plain node-llama-cpp would run it. */
function plainDemoContext() {
  return createSelfExtendContext({
    model: demoModelPath,
    groupSize: 1,
    neighborWindow: 1,
    contextSize: 256,
    threads: 1,
  });
}

describe.sequential("SelfExtendChatSession", () => {
  it("with G = 1 answers exactly as LlamaChatSession, over two turns", async () => {
    const context = await plainDemoContext();
    const plainContext = await context.model.createContext({
      contextSize: 256,
      sequences: 1,
      threads: 1,
      flashAttention: false,
      experimentalKvCacheKeyType: "F32",
      experimentalKvCacheValueType: "F32",
    });
    try {
      const ours = await createSelfExtendChatSession({ context });
      const theirs = new LlamaChatSession({ contextSequence: plainContext.getSequence() });
      expect(ours.chatWrapper.wrapperName).toBe(theirs.chatWrapper.wrapperName);
      for (const message of ["Tell me a story about a cat.", "What did the cat do next?"]) {
        const expected = await theirs.prompt(message, { maxTokens: 24, temperature: 0 });
        const chunks: string[] = [];
        const actual = await ours.promptWithMeta(message, {
          maxTokens: 24,
          onTextChunk: (chunk) => chunks.push(chunk),
        });
        expect(actual.text).toBe(expected);
        expect(chunks.join("")).toBe(actual.text);
      }
      expect(ours.chatHistory).toEqual(theirs.getChatHistory());
    } finally {
      await plainContext.dispose();
      await context.dispose();
    }
  });

  it("answers a message of 3x the trained context with the reference's tokens, then reuses the history", async () => {
    const trainedContext = 256;
    const contextSize = 4 * trainedContext;
    const selfExtend = planSelfExtend({ trainedContext, targetContext: contextSize }).config;
    const context = await createSelfExtendContext({
      model: demoModelPath,
      ...selfExtend,
      contextSize,
      threads: 1,
    });
    try {
      const session = await createSelfExtendChatSession({ context });
      // About 3 L tokens of TinyStories text (the demo model's pieces average ~2.5 characters).
      const longMessage = `${stories.slice(0, 2000)}\nWhat happened in these stories?`;
      const first = await session.promptWithMeta(longMessage, { maxTokens: 40 });
      const rendered = context.evaluatedTokens.slice(
        0,
        context.evaluatedTokens.length - (first.tokens.length - 1),
      );
      expect(rendered.length).toBe(first.evaluatedPromptTokens);
      expect(rendered.length).toBeGreaterThan(2.5 * trainedContext);

      const reference = await (
        await createReferenceBackend().loadModel({ path: demoModelPath })
      ).createSession({
        selfExtend,
        contextSize,
      });
      let logits = (await reference.evaluate(rendered, { logits: "last" })).logits;
      const expected: number[] = [];
      for (let step = 0; step < first.tokens.length; step++) {
        expected.push(argmax(logits));
        if (step < first.tokens.length - 1) logits = await reference.decode(expected[step]);
      }
      expect(first.tokens).toEqual(expected);

      const second = await session.promptWithMeta("And then?", { maxTokens: 8 });
      // Only the end of the previous answer, the new user message and the model prefix are new.
      expect(second.evaluatedPromptTokens).toBeGreaterThan(0);
      expect(second.evaluatedPromptTokens).toBeLessThan(40);
      expect(session.chatHistory.at(-1)).toEqual({ type: "model", response: [second.text] });
    } finally {
      await context.dispose();
    }
  });

  it("refuses a history with no room for an answer, and recovers from an abort mid-answer", async () => {
    const context = await plainDemoContext();
    try {
      const session = await createSelfExtendChatSession({ context });
      await expect(session.prompt(stories.slice(0, 2000))).rejects.toBeInstanceOf(ContextLengthError);
      expect(context.tokenCount).toBe(0);
      expect(session.chatHistory.filter((item) => item.type === "user")).toHaveLength(0);

      const controller = new AbortController();
      const aborted = session.prompt("Tell me a story about a dog.", {
        maxTokens: 32,
        signal: controller.signal,
        onTextChunk: () => controller.abort(),
      });
      await expect(aborted).rejects.toThrow(/abort/i);
      const answer = await session.promptWithMeta("Tell me a story about a dog.", { maxTokens: 16 });

      const fresh = await createSelfExtendChatSession({ context });
      await context.reset();
      const expected = await fresh.promptWithMeta("Tell me a story about a dog.", { maxTokens: 16 });
      expect(answer.text).toBe(expected.text);
      expect(answer.tokens).toEqual(expected.tokens);
    } finally {
      await context.dispose();
    }
  });

  it("stops at a stop trigger, cuts it from the answer and never streams it", async () => {
    const context = await plainDemoContext();
    try {
      const message = "Tell me a story about a bird.";
      const free = await createSelfExtendChatSession({ context, chatWrapper: new GeneralChatWrapper() });
      const answer = await free.prompt(message, { maxTokens: 32 });
      expect(answer.length).toBeGreaterThan(16);
      // A trigger taken from the middle of the answer the model gives without it.
      const trigger = answer.slice(9, 14);
      class TriggerChatWrapper extends GeneralChatWrapper {
        override generateContextState(options: Parameters<GeneralChatWrapper["generateContextState"]>[0]) {
          return { ...super.generateContextState(options), stopGenerationTriggers: [LlamaText(trigger)] };
        }
      }
      await context.reset();
      const session = await createSelfExtendChatSession({ context, chatWrapper: new TriggerChatWrapper() });
      const chunks: string[] = [];
      const response = await session.promptWithMeta(message, {
        maxTokens: 32,
        onTextChunk: (chunk) => chunks.push(chunk),
      });
      expect(response.stopReason).toBe("stop-trigger");
      expect(response.text).toBe(answer.slice(0, answer.indexOf(trigger)));
      expect(chunks.join("")).toBe(response.text);
    } finally {
      await context.dispose();
    }
  });
});
