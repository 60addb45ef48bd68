/**
 * Chat with the file's template on WebGPU: the same greedy answer, turn after turn, as the
 * reference adapter's chat session (core's TemplateChatSession, which the llama-cpp package's
 * template-chat test ties to llama.cpp's own template application and greedy tokens on the same
 * file, template and message) for a user message of about 3x the trained context.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { planSelfExtend } from "@self-extend/core";
import { demoModelPath } from "@self-extend/demo-model";
import { loadLlamaWeights, writeLlamaGguf } from "@self-extend/models/node";
import {
  createReferenceBackend,
  createSelfExtendChatSession as createReferenceChatSession,
} from "@self-extend/reference";
import { sharedModelPaths } from "@self-extend/test-fixtures";
import { afterAll, expect, it } from "vitest";
import { createSelfExtendChatSession, createWebGpuBackend } from "../src/index.js";

const stories = readFileSync(sharedModelPaths.validationText, "utf8");
// The template and message of packages/llama-cpp/test/template-chat.test.ts.
const chatTemplate =
  "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}[INST] {{ message['content'] }} [/INST]" +
  "{% elif message['role'] == 'assistant' %}{{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}";
const longMessage = `${stories.slice(0, 2000)}\nWhat happened in these stories?`;

const folder = mkdtempSync(join(tmpdir(), "webgpu-chat-"));
const templatedModelPath = join(folder, "demo-model-chat.gguf");
writeLlamaGguf(templatedModelPath, loadLlamaWeights(demoModelPath), {
  extraMetadata: { "tokenizer.chat_template": { type: "string", value: chatTemplate } },
});
afterAll(() => rmSync(folder, { recursive: true, force: true }));

it("answers a message of 3x the trained context with the reference's greedy tokens, then reuses the history", async () => {
  const trainedContext = 256;
  const contextSize = 4 * trainedContext;
  const selfExtend = planSelfExtend({ trainedContext, targetContext: contextSize }).config;
  const model = await createWebGpuBackend().loadModel({ path: templatedModelPath });
  const reference = await createReferenceBackend().loadModel({ path: templatedModelPath });
  try {
    expect(model.chatTemplate).toBe(chatTemplate);
    const ours = createSelfExtendChatSession({
      model,
      session: await model.createSession({ selfExtend, contextSize }),
    });
    const expected = createReferenceChatSession({
      model: reference,
      session: await reference.createSession({ selfExtend, contextSize }),
    });
    for (const [message, maxTokens] of [
      [longMessage, 24],
      ["And then?", 8],
    ] as const) {
      const want = await expected.promptWithMeta(message, { maxTokens });
      const got = await ours.promptWithMeta(message, { maxTokens });
      expect(got.tokens).toEqual(want.tokens);
      expect(got.text).toBe(want.text);
      expect(got.evaluatedPromptTokens).toBe(want.evaluatedPromptTokens);
      if (message === longMessage) expect(got.evaluatedPromptTokens).toBeGreaterThan(2.5 * trainedContext);
      else expect(got.evaluatedPromptTokens).toBeLessThan(40);
    }
  } finally {
    await model.dispose();
    await reference.dispose();
  }
});
