/**
 * @self-extend/onnxruntime/export: the exporter under the backend, for tools that want the ONNX
 * files themselves: the decoder graph with Self-Extend attention in standard ops, the protobuf
 * builder, and the on-disk export cache. The main entry (`@self-extend/onnxruntime`) is the
 * backend, its model and session.
 */
export {
  buildDecoderGraph,
  type DecoderAttention,
  externalDataFileName,
  graphNames,
  modelFileName,
  writeDecoderExport,
} from "./decoder-export.js";
export {
  checkExportFolder,
  type EnsureExportOptions,
  type ExportLocation,
  type ExportManifest,
  ensureDecoderExport,
  exportKey,
  hashModelFile,
  hashModelWeights,
  manifestFileName,
} from "./export-cache.js";
export { readImportedWeights } from "./imported/imported-weights.js";
export { encodeModel, exportIrVersion, exportOpsetVersion, OnnxGraphBuilder } from "./onnx-graph-builder.js";
export { expandedRopeTable } from "./onnxruntime-session.js";
export { ropeRotationMatrix } from "./self-extend-attention-graph.js";
