/**
 * @self-extend/onnxruntime: the ONNX Runtime backend (spec v1), its model and session. The
 * exporter (graph builders, export cache) is in `@self-extend/onnxruntime/export`.
 */

export {
  type ChatMessage,
  type ChatPromptOptions,
  type ChatResponse,
  type ChatStopReason,
  createSelfExtendChatSession,
  SelfExtendChatSession,
  type SelfExtendChatSessionOptions,
} from "./chat-session.js";
export { ExportCacheError, OnnxRuntimeUnavailableError } from "./errors.js";
export { defaultExportCacheFolder } from "./export-cache.js";
export { UnsupportedOnnxGraphError } from "./imported/find-attention.js";
export {
  ImportedOnnxModel,
  type ImportedOnnxModelOptions,
  loadImportedOnnxModel,
} from "./imported/imported-model.js";
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
  OnnxRuntimeSession,
  type OnnxRuntimeSessionOptions,
} from "./onnxruntime-session.js";
export { exporterVersion } from "./version.js";
