import type { ModelInfoV1 } from "@self-extend/core";
import type { LlamaModelDescription } from "./llama-model.js";

/** The part of a model description that every backend reports through the v1 contract. */
export function modelInfoFromDescription(description: LlamaModelDescription): ModelInfoV1 {
  return Object.freeze({
    architecture: description.architecture,
    trainedContext: description.trainedContext,
    vocabularySize: description.vocabularySize,
    layerCount: description.layerCount,
    headCount: description.headCount,
    kvHeadCount: description.kvHeadCount,
    headSize: description.headSize,
    ...(description.name === undefined ? {} : { name: description.name }),
  });
}
