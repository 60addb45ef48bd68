/**
 * Chat from the model file's own template (GGUF `tokenizer.chat_template`) on a Self-Extend
 * session; the rendering and the prompt loop are core's TemplateChatSession, shared by the adapters.
 */
export {
  type ChatMessage,
  type ChatPromptOptions,
  type ChatResponse,
  type ChatStopReason,
  TemplateChatSession as SelfExtendChatSession,
} from "@self-extend/core";
export {
  createGgufChatSession as createSelfExtendChatSession,
  type GgufChatSessionOptions as SelfExtendChatSessionOptions,
} from "@self-extend/models";
