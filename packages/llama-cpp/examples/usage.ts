import { argmax } from "@self-extend/core";
import { demoModelPath } from "@self-extend/demo-model";
import { createSelfExtendContext } from "@self-extend/llama-cpp";

// A pass key hidden in about three times the demo model's trained context (256 tokens).
const filler = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";
const text = `${filler.repeat(12)}The pass key is 71432. Remember it. 71432 is the pass key. ${filler.repeat(12)}What is the pass key? The pass key is`;

// `model` is a GGUF path (loaded on node-llama-cpp's CPU build, disposed with the context) or a
// LlamaModel you loaded yourself. With a target context the planner picks G and W; or pass
// groupSize and neighborWindow.
const context = await createSelfExtendContext({ model: demoModelPath, targetContext: 1024, threads: 1 });
const { groupSize, neighborWindow } = context.config;
console.log(`G = ${groupSize}, W = ${neighborWindow}, mode ${context.mode}, rows are ${context.logitKind}`);

let answer = "";
for await (const piece of context.generateText(text, { maxTokens: 8 })) answer += piece;
console.log(`answer: ${answer}`);

// Lower level: text or tokens in, logit rows out, with progress and abort.
await context.reset();
const controller = new AbortController();
const evaluation = await context.evaluate(text, {
  logits: "last", // "all" | "none" | indices within the block
  signal: controller.signal,
  onProgress: ({ evaluated, total }) => {
    if (evaluated === total) console.log(`evaluated ${total} tokens`);
  },
});
const first = argmax(evaluation.logits);
const second = argmax(await context.decode(first)); // one token in, its logit row out
console.log(`${context.tokenCount} tokens, then ${JSON.stringify(context.detokenize([first, second]))}`);

await context.dispose();
