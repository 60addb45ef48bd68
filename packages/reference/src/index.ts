export {
  type ChatMessage,
  type ChatPromptOptions,
  type ChatResponse,
  type ChatStopReason,
  createSelfExtendChatSession,
  SelfExtendChatSession,
  type SelfExtendChatSessionOptions,
} from "./chat-session.js";
export { createModelRopeTable, ForwardPass } from "./forward-pass.js";
export { KeyValueCache, type LayerCache } from "./kv-cache.js";
export {
  type BucketPerplexity,
  computePerplexity,
  type DocumentEncoder,
  joinBlocksAsOneDocument,
  negativeLogLikelihood,
  type PerplexityOptions,
  type PerplexityProgress,
  type PerplexityResult,
  type PositionRange,
  tokenizeAsOneDocument,
} from "./perplexity.js";
export { createReferenceBackend, type ReferenceBackend, referenceCapabilities } from "./reference-backend.js";
export { createReferenceModel, ReferenceModel } from "./reference-model.js";
export { defaultBlockSize, ReferenceSession, type ReferenceSessionOptions } from "./reference-session.js";
