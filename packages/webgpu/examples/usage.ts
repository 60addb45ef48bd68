import { generateTokens, planSelfExtend, requireTokenizer } from "@self-extend/core";
import { demoModelPath } from "@self-extend/demo-model";
import { createWebGpuBackend } from "@self-extend/webgpu";

// A pass key hidden in about three times the demo model's trained context (256 tokens).
const filler = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. ";
const text = `${filler.repeat(12)}The pass key is 71432. Remember it. 71432 is the pass key. ${filler.repeat(12)}What is the pass key? The pass key is`;

const backend = createWebGpuBackend(); // Dawn in Node (the optional peer "webgpu"), navigator.gpu in a browser
const availability = await backend.checkAvailability();
if (!availability.available) throw new Error(`no WebGPU here: ${availability.reason}`);
const model = await backend.loadModel({ path: demoModelPath }); // in a browser: { url } or { bytes }
const tokenizer = requireTokenizer(model); // the vocabulary of the GGUF file
const prompt = tokenizer.encode(text); // BOS first, as the model file asks

// The planner picks G and W so every relative position stays below the trained context.
const contextSize = prompt.length + 8;
const plan = planSelfExtend({ trainedContext: model.info.trainedContext, targetContext: contextSize });
const session = await model.createSession({ selfExtend: plan.config, contextSize });

const answer: number[] = [];
for await (const token of generateTokens(session, prompt, { maxTokens: 8 })) answer.push(token);
console.log(
  `${prompt.length} prompt tokens, G = ${plan.config.groupSize}, W = ${plan.config.neighborWindow}`,
);
console.log(`answer: ${tokenizer.decode(answer)}`);

await session.dispose();
await model.dispose();
