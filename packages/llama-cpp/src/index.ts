export {
  type ChatPromptOptions,
  type ChatResponse,
  type ChatStopReason,
  createSelfExtendChatSession,
  SelfExtendChatSession,
  type SelfExtendChatSessionOptions,
} from "./chat-session.js";
export { exactNeighborShift, exactQueryPosition } from "./exact-scheduler.js";
export { fastPrefillPositionError } from "./fast-prefill-scheduler.js";
export {
  createLlamaCppBackend,
  type LlamaCppBackend,
  type LlamaCppBackendOptions,
} from "./llama-cpp-backend.js";
export { attentionModes, llamaCppArchitectures, llamaCppCapabilities } from "./llama-cpp-capabilities.js";
export { conformanceDeclaration } from "./llama-cpp-conformance.js";
export { LlamaCppModel, type LlamaCppSessionOptions } from "./llama-cpp-model.js";
export {
  createSelfExtendContext,
  defaultThreadCount,
  describeModelFile,
  type GenerateTextOptions,
  getCpuLlama,
  type LlamaCppCachePrecision,
  SelfExtendContext,
  type SelfExtendContextOptions,
  validateContextOptions,
} from "./llama-cpp-session.js";
export {
  assertSupportedNodeLlamaCpp,
  installedNodeLlamaCppVersion,
  NodeLlamaCppVersionError,
  supportedNodeLlamaCppVersion,
} from "./node-llama-cpp-internals.js";
