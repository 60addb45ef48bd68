/**
 * @self-extend/demo-model: the project's own small Llama, trained on TinyStories plus synthetic
 * passkey examples with a trained context of 256 tokens (see MODEL_CARD.md). The package holds one
 * GGUF file (F32, llama architecture, with its SentencePiece-style vocabulary); this module only
 * says where it is, so any backend can load it by path.
 */
import { fileURLToPath } from "node:url";

/** Absolute path of demo-model.gguf (the same file from src/ and from dist/). */
export const demoModelPath: string = fileURLToPath(new URL("../demo-model.gguf", import.meta.url));

/** What the model card states, for callers that want to plan without reading the file. */
export const demoModelInfo = {
  architecture: "llama",
  parameterCount: 2_558_400,
  layerCount: 6,
  embeddingSize: 192,
  feedForwardSize: 512,
  headCount: 6,
  kvHeadCount: 2,
  headSize: 32,
  vocabularySize: 1024,
  trainedContext: 256,
  ropeBase: 10000,
} as const;
