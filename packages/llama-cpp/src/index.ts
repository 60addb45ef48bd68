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
  LlamaCppModel,
  type LlamaCppSessionOptions,
  llamaCppCapabilities,
} from "./llama-cpp-backend.js";
export { conformanceDeclaration } from "./llama-cpp-conformance.js";
export {
  assertSupportedNodeLlamaCpp,
  installedNodeLlamaCppVersion,
  NodeLlamaCppVersionError,
  supportedNodeLlamaCppVersion,
} from "./node-llama-cpp-internals.js";
export {
  attentionModes,
  createSelfExtendContext,
  defaultThreadCount,
  describeModelFile,
  type GenerateTextOptions,
  getCpuLlama,
  type LlamaCppCachePrecision,
  llamaCppArchitectures,
  SelfExtendContext,
  type SelfExtendContextOptions,
  validateContextOptions,
} from "./self-extend-context.js";
