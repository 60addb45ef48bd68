import { fileURLToPath } from "node:url";
import { generateTokens, planSelfExtend, requireTokenizer } from "@self-extend/core";
import { createOnnxRuntimeBackend } from "@self-extend/onnxruntime";

// Your export's folder: model.onnx (or transformers.js's onnx/model.onnx) with its external data, config.json or
// genai_config.json, and tokenizer.json. Here: a tiny random Llama exported by Optimum (this package's test files).
const folder =
  process.env.MODEL_FOLDER ??
  fileURLToPath(new URL("../test/fixtures/imported/optimum/llama", import.meta.url));

const backend = createOnnxRuntimeBackend({ threads: 2 });
const model = await backend.loadModel({ path: folder }); // finds each layer's attention, or says why it cannot
const tokenizer = requireTokenizer(model); // tokenizer.json, through @huggingface/tokenizers
const prompt = tokenizer.encode("Once upon a time, there was a little girl named Lily. ".repeat(36));

// Four times the trained context (config.json's max_position_embeddings).
const contextSize = prompt.length + 16;
const plan = planSelfExtend({ trainedContext: model.info.trainedContext, targetContext: contextSize });
const session = await model.createSession({ selfExtend: plan.config, contextSize }); // rewrites the graph once, cached

const generated: number[] = [];
for await (const token of generateTokens(session, prompt, { maxTokens: 16 })) generated.push(token);
console.log(`${prompt.length} prompt tokens, trained context ${model.info.trainedContext}`);
console.log(
  `G = ${plan.config.groupSize}, W = ${plan.config.neighborWindow}, ${generated.length} tokens generated`,
);
console.log(`text: ${JSON.stringify(tokenizer.decode(generated))}`); // random weights: random text

await session.dispose();
await model.dispose();
