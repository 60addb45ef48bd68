/**
 * Generated models quantized by llama.cpp's own llama-quantize, for the quantized-weights tests.
 * Every matrix row is 256 or 512 values long, so every K-quant (256-value super-blocks) applies to
 * every matrix and llama-quantize never falls back to another type for a row it cannot split.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { generateTinyModel, type TinyModelSpec, writeLlamaGguf } from "@self-extend/models/node";
import { runLlamaQuantize } from "./llama-quantize.js";

export const quantizableSpec: TinyModelSpec = {
  name: "llama-h64-gqa2-e256",
  architecture: "llama",
  layerCount: 2,
  headCount: 4,
  kvHeadCount: 2,
  headSize: 64,
  feedForwardSize: 512,
  vocabularySize: 256,
  trainedContext: 128,
  ropeBase: 10000,
  hasQkvBias: false,
};

/** The weight types checked, as llama-quantize names them, with the ggml type id of its matrices. */
export const pureWeightTypes = [
  { type: "Q4_0", typeId: 2 },
  { type: "Q4_1", typeId: 3 },
  { type: "Q5_0", typeId: 6 },
  { type: "Q5_1", typeId: 7 },
  { type: "Q8_0", typeId: 8 },
  { type: "Q2_K", typeId: 10 },
  { type: "Q3_K_M", typeId: 11 },
  { type: "Q4_K_M", typeId: 12 },
  { type: "Q5_K_M", typeId: 13 },
  { type: "Q6_K", typeId: 14 },
] as const;

/** The F32 source file, written once into `folder`. */
export function f32Model(folder: string): string {
  const path = join(folder, `${quantizableSpec.name}-F32.gguf`);
  if (!existsSync(path)) writeLlamaGguf(path, generateTinyModel(quantizableSpec, 16));
  return path;
}

/**
 * The model quantized to `type` by llama-quantize, written once into `folder`; `pure` puts every
 * matrix in that type (llama-quantize's own mix otherwise, e.g. Q4_K_M's Q4_K with some Q6_K).
 */
export function quantizedModel(folder: string, type: string, pure: boolean): string {
  const path = join(folder, `${quantizableSpec.name}-${type}${pure ? "-pure" : ""}.gguf`);
  if (!existsSync(path)) runLlamaQuantize(f32Model(folder), path, { type, pure });
  return path;
}
