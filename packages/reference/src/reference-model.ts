/**
 * A model held in memory as LlamaWeights, opened as a v1 model. Sessions share the weights and own
 * their KV caches, so many sessions of one model cost the weights once.
 */
import {
  type ModelInfoV1,
  SelfExtendConfigError,
  type SelfExtendModelV1,
  SessionDisposedError,
} from "@self-extend/core";
import {
  createTokenizer,
  type LlamaWeights,
  modelInfoFromDescription,
  supportedArchitectures,
  type Tokenizer,
} from "@self-extend/models";
import { ReferenceSession, type ReferenceSessionOptions } from "./reference-session.js";

export class ReferenceModel implements SelfExtendModelV1 {
  readonly info: ModelInfoV1;
  /** The GGUF file's vocabulary; undefined for llama2.c checkpoints and generated weights. */
  readonly tokenizer: Tokenizer | undefined;
  /** The GGUF file's `tokenizer.chat_template`, when it has one. */
  readonly chatTemplate: string | undefined;
  private disposed = false;

  constructor(readonly weights: LlamaWeights) {
    const { architecture } = weights.description;
    if (!supportedArchitectures.includes(architecture)) {
      throw new SelfExtendConfigError(
        "architecture",
        architecture,
        `the reference backend runs ${supportedArchitectures.join(", ")}`,
      );
    }
    this.info = modelInfoFromDescription(weights.description);
    this.tokenizer = weights.vocabulary === undefined ? undefined : createTokenizer(weights.vocabulary);
    this.chatTemplate = weights.chatTemplate;
  }

  async createSession(options: ReferenceSessionOptions): Promise<ReferenceSession> {
    if (this.disposed) throw new SessionDisposedError("model");
    return new ReferenceSession(this.weights, options);
  }

  async dispose(): Promise<void> {
    this.disposed = true;
  }
}

/** Opens weights already in memory (a generated test model, weights read by other code). */
export function createReferenceModel(weights: LlamaWeights): ReferenceModel {
  return new ReferenceModel(weights);
}
