/**
 * @self-extend/models/node: the main entry plus file access (Node only). Browser code imports
 * `@self-extend/models`, whose module graph has no `node:` import.
 */

export { readGguf, writeGguf } from "./gguf-file.js";
export * from "./index.js";
export { type ImportLlama2cOptions, importLlama2c } from "./llama2c-import.js";
export {
  loadLlamaWeights,
  readLlama2cCheckpoint,
  readLlama2cTokenizer,
  writeFullDepthRealShapeModel,
  writeGpuScaleModel,
  writeLlamaGguf,
  writeRealShapeModel,
} from "./model-files.js";
export { isOnnxExportPath } from "./onnx-export-path.js";
