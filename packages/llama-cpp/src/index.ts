export {
  attentionModes,
  createSelfExtendContext,
  describeModelFile,
  type GenerateTextOptions,
  getCpuLlama,
  type LlamaCppCachePrecision,
  llamaCppArchitectures,
  SelfExtendContext,
  type SelfExtendContextOptions,
  validateContextOptions,
} from "./self-extend-context.js";
export { exactNeighborShift, exactQueryPosition } from "./exact-scheduler.js";
export { fastPrefillPositionError } from "./fast-prefill-scheduler.js";
export {
  assertSupportedNodeLlamaCpp,
  installedNodeLlamaCppVersion,
  NodeLlamaCppVersionError,
  supportedNodeLlamaCppVersion,
} from "./node-llama-cpp-internals.js";
export {
  createLlamaCppBackend,
  type LlamaCppBackend,
  type LlamaCppBackendOptions,
  llamaCppCapabilities,
  LlamaCppModel,
  type LlamaCppSessionOptions,
} from "./llama-cpp-backend.js";
