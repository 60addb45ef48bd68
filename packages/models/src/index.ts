/**
 * @self-extend/models: everything that works on bytes in memory, so it runs in browsers and
 * bundlers too. Reading and writing files is in `@self-extend/models/node`.
 */

export { knownPreTokenizers } from "./byte-level-bpe.js";
export * from "./chat-vocabulary.js";
export { bfloat16BitsToNumber, float16BitsToNumber, numberToFloat16Bits, roundToFloat16 } from "./float16.js";
export { dequantizableTypeNames } from "./ggml-dequantize.js";
export { type GgufFile, type GgufTensorInfo, hasGgufMagic, parseGguf } from "./gguf-reader.js";
export * from "./gguf-types.js";
export * from "./gguf-vocabulary.js";
export {
  encodeGguf,
  type GgufContents,
  type GgufTensorToWrite,
  type GgufWritableTensorType,
} from "./gguf-writer.js";
export * from "./llama-description.js";
export * from "./llama-gguf.js";
export * from "./llama-model.js";
export * from "./llama2c-checkpoint.js";
export * from "./llama2c-tokenizer.js";
export * from "./model-file-error.js";
export { modelInfoFromDescription } from "./model-info.js";
export * from "./rope-permutation.js";
export * from "./tiny-model.js";
export * from "./tokenizer.js";
export { createTokenizerFromJson, type JsonTokenizer } from "./tokenizer-json.js";
