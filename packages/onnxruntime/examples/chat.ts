import { planSelfExtend } from "@self-extend/core";
import { demoModelPath } from "@self-extend/demo-model";
import { createOnnxRuntimeBackend, createSelfExtendChatSession } from "@self-extend/onnxruntime";

// The demo model's file has no tokenizer.chat_template, so this passes one; files that have one need none.
const chatTemplate =
  "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}[INST] {{ message['content'] }} [/INST]" +
  "{% elif message['role'] == 'assistant' %}{{ message['content'] }}{{ eos_token }}{% endif %}{% endfor %}";
// A document longer than the demo model's trained context (256 tokens), then a question.
const story = "Lily had a red ball. She played with it in the park every day. ".repeat(45);

const model = await createOnnxRuntimeBackend({ threads: 2 }).loadModel({ path: demoModelPath });
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
