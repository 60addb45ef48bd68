import { demoModelPath } from "@self-extend/demo-model";
import { createSelfExtendChatSession, createSelfExtendContext } from "@self-extend/llama-cpp";

// A document longer than the demo model's trained context (256 tokens), then a question.
const story = "Lily had a red ball. She played with it in the park every day. ".repeat(30);

const context = await createSelfExtendContext({ model: demoModelPath, targetContext: 1024, threads: 1 });
const chat = await createSelfExtendChatSession({ context, systemPrompt: "You are a helpful assistant." });
const answer = await chat.promptWithMeta(`${story}\n\nWhat did Lily have?`, {
  maxTokens: 24, // greedy unless a temperature is given
  onProgress: ({ evaluated, total }) => {
    if (evaluated === total) console.log(`read ${total} tokens`);
  },
});
console.log(`stop reason: ${answer.stopReason}, ${answer.tokens.length} tokens`);
console.log(`answer: ${answer.text}`);
// The second turn evaluates only what the context has not seen yet.
const followUp = await chat.promptWithMeta("And where did she play?", { maxTokens: 24 });
console.log(`second turn evaluated ${followUp.evaluatedPromptTokens} new prompt tokens`);

await context.dispose();
