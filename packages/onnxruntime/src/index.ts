export {
  buildDecoderGraph,
  type DecoderAttention,
  externalDataFileName,
  graphNames,
  modelFileName,
  writeDecoderExport,
} from "./decoder-export.js";
export { ExportCacheError, OnnxRuntimeUnavailableError } from "./errors.js";
export {
  checkExportFolder,
  defaultExportCacheFolder,
  type EnsureExportOptions,
  type ExportLocation,
  type ExportManifest,
  ensureDecoderExport,
  exportKey,
  hashModelFile,
  hashModelWeights,
  manifestFileName,
} from "./export-cache.js";
export { encodeModel, exportIrVersion, exportOpsetVersion, OnnxGraphBuilder } from "./onnx-graph-builder.js";
export {
  createOnnxRuntimeBackend,
  type OnnxRuntimeBackend,
  type OnnxRuntimeBackendOptions,
  onnxRuntimeCapabilities,
} from "./onnxruntime-backend.js";
export { conformanceDeclaration } from "./onnxruntime-conformance.js";
export {
  createOnnxRuntimeModel,
  OnnxRuntimeModel,
  type OnnxRuntimeModelOptions,
} from "./onnxruntime-model.js";
export {
  type AttentionGraphKind,
  defaultPrefillChunkSize,
  expandedRopeTable,
  OnnxRuntimeSession,
  type OnnxRuntimeSessionOptions,
} from "./onnxruntime-session.js";
export { ropeRotationMatrix } from "./self-extend-attention-graph.js";
export { exporterVersion } from "./version.js";
