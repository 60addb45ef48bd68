import { generateTokens, requireTokenizer } from "@self-extend/core";
import { createWebGpuBackend } from "@self-extend/webgpu";

// In a page: the device comes from navigator.gpu, the model from a URL (or { bytes } of a File).
const backend = createWebGpuBackend();
const model = await backend.loadModel({ url: "/models/demo-model.gguf" }); // fetch(url, init?)
const tokenizer = requireTokenizer(model);
const session = await model.createSession({
  selfExtend: { groupSize: 6, neighborWindow: 36 },
  contextSize: 1024,
});
const story: number[] = [];
for await (const token of generateTokens(session, tokenizer.encode("Once upon a time"), { maxTokens: 64 })) {
  story.push(token);
  console.log(tokenizer.decode(story));
}
await session.dispose();
await model.dispose();
