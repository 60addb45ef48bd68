import { planSelfExtend } from "@self-extend/core";
import { demoModelPath } from "@self-extend/demo-model";
import { createSelfExtendChatSession, createWebGpuBackend } from "@self-extend/webgpu";

// The demo model's file has no tokenizer.chat_template, so this passes one; files that have one need none.
const chatTemplate =
  "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}[INST] {{ message['content'] }} [/INST]" +
  "{% elif message['role'] == 'assistant' %}{{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}";
// A document longer than the demo model's trained context (256 tokens), then a question.
const story = "Lily had a red ball. She played with it in the park every day. ".repeat(45);

const backend = createWebGpuBackend(); // Dawn in Node, navigator.gpu in a browser (the chat code is browser-safe)
const availability = await backend.checkAvailability();
if (!availability.available) throw new Error(`no WebGPU here: ${availability.reason}`);
const model = await backend.loadModel({ path: demoModelPath }); // in a browser: { url } or { bytes }
const contextSize = 1024;
const plan = planSelfExtend({ trainedContext: model.info.trainedContext, targetContext: contextSize });
const session = await model.createSession({ selfExtend: plan.config, contextSize });
const chat = createSelfExtendChatSession({ model, session, chatTemplate });
const answer = await chat.promptWithMeta(`${story}\n\nWhat did Lily have?`, {
  maxTokens: 24, // greedy unless a temperature is given
  onProgress: ({ evaluated, total }) => {
    if (evaluated === total) console.log(`read ${total} tokens`);
  },
});
console.log(`stop reason: ${answer.stopReason}, ${answer.tokens.length} tokens`);
console.log(`answer: ${answer.text}`);
// The second turn evaluates only what the session has not seen yet.
const followUp = await chat.promptWithMeta("And where did she play?", { maxTokens: 24 });
console.log(`second turn evaluated ${followUp.evaluatedPromptTokens} new prompt tokens`);

await session.dispose();
await model.dispose();
