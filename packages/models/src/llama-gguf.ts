/**
 * Llama-family weights to and from GGUF, with llama.cpp's tensor names (`token_embd`,
 * `blk.N.attn_q`, ...) and the metadata llama.cpp needs to load the file. Our matrices are
 * row-major [out, in]; GGUF lists dimensions fastest first (ne0 = in), so the bytes are the same and
 * only the dimension list is reversed.
 */
import type { GgufFile } from "./gguf-reader.js";
import type { GgufTypedValue } from "./gguf-types.js";
import { ggufFileTypes } from "./gguf-types.js";
import { syntheticVocabulary, vocabularyFromGguf, vocabularyMetadata } from "./gguf-vocabulary.js";
import type { GgufContents, GgufTensorToWrite, GgufWritableTensorType } from "./gguf-writer.js";
import {
  describeLlamaModel,
  longRopeTensors,
  ropeFrequenciesTensor,
  ropeLayoutOfArchitecture,
} from "./llama-description.js";
import type { LlamaLayerWeights, LlamaModelDescription, LlamaWeights } from "./llama-model.js";
import { ModelFileError } from "./model-file-error.js";
import { permuteForInterleavedRope } from "./rope-permutation.js";
import type { Vocabulary } from "./tokenizer.js";

/** Row-major shapes of every tensor of a model, by GGUF name. */
function expectedShapes(description: LlamaModelDescription, tiedOutput: boolean): Map<string, number[]> {
  const {
    embeddingSize: embedding,
    headCount,
    kvHeadCount,
    headSize,
    feedForwardSize,
    vocabularySize,
  } = description;
  const shapes = new Map<string, number[]>();
  shapes.set("token_embd.weight", [vocabularySize, embedding]);
  shapes.set("output_norm.weight", [embedding]);
  if (!tiedOutput) shapes.set("output.weight", [vocabularySize, embedding]);
  for (let layer = 0; layer < description.layerCount; layer++) {
    const block = `blk.${layer}`;
    shapes.set(`${block}.attn_norm.weight`, [embedding]);
    if (description.architecture === "phi3") {
      // Phi-3 fuses q, k and v into one matrix, rows in that order.
      shapes.set(`${block}.attn_qkv.weight`, [(headCount + 2 * kvHeadCount) * headSize, embedding]);
    } else {
      shapes.set(`${block}.attn_q.weight`, [headCount * headSize, embedding]);
      shapes.set(`${block}.attn_k.weight`, [kvHeadCount * headSize, embedding]);
      shapes.set(`${block}.attn_v.weight`, [kvHeadCount * headSize, embedding]);
    }
    if (description.hasQkvBias) {
      shapes.set(`${block}.attn_q.bias`, [headCount * headSize]);
      shapes.set(`${block}.attn_k.bias`, [kvHeadCount * headSize]);
      shapes.set(`${block}.attn_v.bias`, [kvHeadCount * headSize]);
    }
    shapes.set(`${block}.attn_output.weight`, [embedding, headCount * headSize]);
    shapes.set(`${block}.ffn_norm.weight`, [embedding]);
    if (description.architecture === "phi3") {
      // Phi-3 fuses gate and up: gate rows first, then up (llama.cpp's SwiGLU on the split halves).
      shapes.set(`${block}.ffn_up.weight`, [2 * feedForwardSize, embedding]);
    } else {
      shapes.set(`${block}.ffn_gate.weight`, [feedForwardSize, embedding]);
      shapes.set(`${block}.ffn_up.weight`, [feedForwardSize, embedding]);
    }
    shapes.set(`${block}.ffn_down.weight`, [embedding, feedForwardSize]);
    if (description.hasPostNorms === true) {
      shapes.set(`${block}.post_attention_norm.weight`, [embedding]);
      shapes.set(`${block}.post_ffw_norm.weight`, [embedding]);
    }
    if (description.hasQueryKeyNorms === true) {
      shapes.set(`${block}.attn_q_norm.weight`, [headSize]);
      shapes.set(`${block}.attn_k_norm.weight`, [headSize]);
    }
  }
  return shapes;
}

/** Reads every tensor of an open Llama-family GGUF as float32. */
export function llamaWeightsFromGguf(gguf: GgufFile): LlamaWeights {
  const description = describeLlamaModel(gguf);
  // llama.cpp's Gemma always classifies with token_embd.weight (an output.weight is ignored).
  const tiedOutput =
    gguf.tensor("output.weight") === undefined || description.architecture.startsWith("gemma");
  const shapes = expectedShapes(description, tiedOutput);
  const tensors = new Map<string, Float32Array>();
  for (const [name, shape] of shapes) {
    const info = gguf.tensor(name);
    if (info === undefined) throw new ModelFileError(gguf.path, `has no tensor ${JSON.stringify(name)}`);
    if (info.shape.length !== shape.length || info.shape.some((size, axis) => size !== shape[axis])) {
      throw new ModelFileError(
        gguf.path,
        `tensor ${JSON.stringify(name)} has shape [${info.shape.join(", ")}], expected [${shape.join(", ")}] from the metadata`,
      );
    }
    tensors.set(name, gguf.readTensor(name));
  }
  const get = (name: string) => tensors.get(name) as Float32Array;
  const { embeddingSize, headCount, kvHeadCount, headSize, feedForwardSize } = description;
  if (description.architecture === "phi3") {
    // Split the fused matrices into the views every backend reads (row-major: rows are contiguous).
    for (let layer = 0; layer < description.layerCount; layer++) {
      const block = `blk.${layer}`;
      const qkv = get(`${block}.attn_qkv.weight`);
      const queryEnd = headCount * headSize * embeddingSize;
      const keyEnd = queryEnd + kvHeadCount * headSize * embeddingSize;
      tensors.set(`${block}.attn_q.weight`, qkv.subarray(0, queryEnd));
      tensors.set(`${block}.attn_k.weight`, qkv.subarray(queryEnd, keyEnd));
      tensors.set(`${block}.attn_v.weight`, qkv.subarray(keyEnd));
      const gateUp = get(`${block}.ffn_up.weight`);
      tensors.set(`${block}.ffn_gate.weight`, gateUp.subarray(0, feedForwardSize * embeddingSize));
      tensors.set(`${block}.ffn_up.weight`, gateUp.subarray(feedForwardSize * embeddingSize));
    }
  }
  const layers: LlamaLayerWeights[] = Array.from({ length: description.layerCount }, (_, layer) => {
    const block = `blk.${layer}`;
    return {
      attentionNorm: get(`${block}.attn_norm.weight`),
      query: get(`${block}.attn_q.weight`),
      key: get(`${block}.attn_k.weight`),
      value: get(`${block}.attn_v.weight`),
      output: get(`${block}.attn_output.weight`),
      ...(description.hasQkvBias
        ? {
            queryBias: get(`${block}.attn_q.bias`),
            keyBias: get(`${block}.attn_k.bias`),
            valueBias: get(`${block}.attn_v.bias`),
          }
        : {}),
      feedForwardNorm: get(`${block}.ffn_norm.weight`),
      gate: get(`${block}.ffn_gate.weight`),
      up: get(`${block}.ffn_up.weight`),
      down: get(`${block}.ffn_down.weight`),
      ...(description.hasPostNorms === true
        ? {
            postAttentionNorm: get(`${block}.post_attention_norm.weight`),
            postFeedForwardNorm: get(`${block}.post_ffw_norm.weight`),
          }
        : {}),
      ...(description.hasQueryKeyNorms === true
        ? { queryNorm: get(`${block}.attn_q_norm.weight`), keyNorm: get(`${block}.attn_k_norm.weight`) }
        : {}),
    };
  });
  const tokenEmbedding = get("token_embd.weight");
  return {
    description,
    tokenEmbedding,
    outputNorm: get("output_norm.weight"),
    output: tiedOutput ? tokenEmbedding : get("output.weight"),
    layers,
    // Other tokenizer models are not read here; such weights have no vocabulary.
    ...(["llama", "gpt2"].includes(gguf.metadata.get("tokenizer.ggml.model") as string)
      ? { vocabulary: vocabularyFromGguf(gguf) }
      : {}),
    ...chatTemplateOf(gguf),
  };
}

function chatTemplateOf(gguf: GgufFile): { chatTemplate?: string } {
  const template = gguf.metadata.get("tokenizer.chat_template");
  return typeof template === "string" ? { chatTemplate: template } : {};
}

function concatenate(parts: readonly Float32Array[]): Float32Array {
  const result = new Float32Array(parts.reduce((total, part) => total + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    result.set(part, offset);
    offset += part.length;
  }
  return result;
}

export interface WriteLlamaGgufOptions {
  /** Storage of the matrices; norms and biases stay F32, as llama.cpp's converters keep them. */
  readonly tensorType?: GgufWritableTensorType;
  /** Defaults to the weights' own vocabulary, else a synthetic placeholder so llama.cpp can load the file. */
  readonly vocabulary?: Vocabulary;
  readonly name?: string;
  /** Added after the standard keys (for example `general.description`). */
  readonly extraMetadata?: Readonly<Record<string, GgufTypedValue>>;
}

/** The metadata llama.cpp reads for a Llama-family model, in the types it checks. */
export function llamaMetadata(
  description: LlamaModelDescription,
  tensorType: GgufWritableTensorType,
  name?: string,
) {
  const arch = description.architecture;
  const metadata: Record<string, GgufTypedValue> = {
    "general.architecture": { type: "string", value: arch },
  };
  const modelName = name ?? description.name;
  if (modelName !== undefined) metadata["general.name"] = { type: "string", value: modelName };
  Object.assign(metadata, {
    "general.file_type": {
      type: "uint32",
      value: tensorType === "F16" ? ggufFileTypes.mostlyF16 : ggufFileTypes.allF32,
    },
    "general.quantization_version": { type: "uint32", value: 2 },
    [`${arch}.vocab_size`]: { type: "uint32", value: description.vocabularySize },
    [`${arch}.context_length`]: { type: "uint32", value: description.trainedContext },
    [`${arch}.embedding_length`]: { type: "uint32", value: description.embeddingSize },
    [`${arch}.block_count`]: { type: "uint32", value: description.layerCount },
    [`${arch}.feed_forward_length`]: { type: "uint32", value: description.feedForwardSize },
    [`${arch}.rope.dimension_count`]: { type: "uint32", value: description.rotaryDimension },
    [`${arch}.rope.freq_base`]: { type: "float32", value: description.ropeBase },
    [`${arch}.attention.head_count`]: { type: "uint32", value: description.headCount },
    [`${arch}.attention.head_count_kv`]: { type: "uint32", value: description.kvHeadCount },
    [`${arch}.attention.layer_norm_rms_epsilon`]: { type: "float32", value: description.normEpsilon },
  } satisfies Record<string, GgufTypedValue>);
  if (description.headSize * description.headCount !== description.embeddingSize) {
    metadata[`${arch}.attention.key_length`] = { type: "uint32", value: description.headSize };
    metadata[`${arch}.attention.value_length`] = { type: "uint32", value: description.headSize };
  }
  if (description.attentionLogitSoftCap !== undefined) {
    metadata[`${arch}.attn_logit_softcapping`] = {
      type: "float32",
      value: description.attentionLogitSoftCap,
    };
  }
  if (description.finalLogitSoftCap !== undefined) {
    metadata[`${arch}.final_logit_softcapping`] = { type: "float32", value: description.finalLogitSoftCap };
  }
  if (description.slidingWindow !== undefined) {
    const { size, localLayers } = description.slidingWindow;
    metadata[`${arch}.attention.sliding_window`] = { type: "uint32", value: size };
    // The reader's (llama.cpp's) rule: layer l is local iff l % pattern < pattern - 1.
    const follows = (pattern: number) =>
      localLayers.every((local, layer) => local === layer % pattern < pattern - 1);
    const pattern = Array.from({ length: localLayers.length + 1 }, (_, index) => index + 1).find(follows);
    if (pattern === undefined) {
      throw new ModelFileError(
        name ?? "<GGUF metadata>",
        `cannot be written: local layers [${localLayers.map(Number).join("")}] follow no sliding_window_pattern`,
      );
    }
    metadata[`${arch}.attention.sliding_window_pattern`] = { type: "uint32", value: pattern };
    if (description.slidingWindow.ropeBase !== undefined) {
      metadata[`${arch}.rope.freq_base_swa`] = { type: "float32", value: description.slidingWindow.ropeBase };
    }
  }
  if (description.ropeLinearScalingFactor !== 1) {
    metadata[`${arch}.rope.scaling.type`] = { type: "string", value: "linear" };
    metadata[`${arch}.rope.scaling.factor`] = { type: "float32", value: description.ropeLinearScalingFactor };
  }
  if (description.longRope !== undefined) {
    // As llama.cpp's Phi-3 converter writes it; the reader folds attn_factor into the score scale.
    metadata[`${arch}.rope.scaling.original_context_length`] = {
      type: "uint32",
      value: description.longRope.originalContext,
    };
    metadata[`${arch}.rope.scaling.attn_factor`] = {
      type: "float32",
      value: description.longRope.attentionFactor,
    };
  }
  return metadata;
}

/**
 * The contents of a complete, deterministic llama.cpp-loadable GGUF (tied output: no
 * output.weight), for `encodeGguf` or the Node entry's `writeLlamaGguf`. `path` names the file in
 * errors.
 */
export function llamaGgufContents(
  weights: LlamaWeights,
  options: WriteLlamaGgufOptions = {},
  path = "<in-memory GGUF>",
): GgufContents {
  const { description } = weights;
  const tensorType = options.tensorType ?? "F32";
  const vocabulary =
    options.vocabulary ?? weights.vocabulary ?? syntheticVocabulary(description.vocabularySize);
  if (vocabulary.tokens.length !== description.vocabularySize) {
    throw new ModelFileError(
      path,
      `cannot be written: the vocabulary has ${vocabulary.tokens.length} tokens but the model ${description.vocabularySize}`,
    );
  }
  // The file's architecture fixes the RoPE pair layout its readers assume (llama, mistral:
  // interleaved). Half-split (Hugging Face) Q/K rows are permuted as llama.cpp's converter does,
  // so the written file means what the weights meant.
  const fileLayout = ropeLayoutOfArchitecture[description.architecture];
  let toFileLayout = (rows: Float32Array | undefined, _heads: number, _inputSize: number) => rows;
  // An architecture no reader knows (written by tests of the readers' refusals) is written as is.
  if (fileLayout !== undefined && description.ropeLayout !== fileLayout) {
    if (fileLayout !== "interleaved" || description.rotaryDimension !== description.headSize) {
      throw new ModelFileError(
        path,
        `cannot be written: ${description.architecture} files hold ${fileLayout} RoPE and the weights are ${description.ropeLayout}${description.rotaryDimension !== description.headSize ? " with partial rotary" : ""}`,
      );
    }
    toFileLayout = (rows, heads, inputSize) =>
      rows === undefined ? undefined : permuteForInterleavedRope(rows, heads, inputSize);
  }
  const { headCount, kvHeadCount, embeddingSize } = description;
  // llama.cpp's Gemma reads its classifier from token_embd.weight whatever else the file holds.
  if (description.architecture.startsWith("gemma") && weights.output !== weights.tokenEmbedding) {
    throw new ModelFileError(
      path,
      `cannot be written: ${description.architecture} ties its output to the token embedding`,
    );
  }
  // llama.cpp requires phi3's output.weight, so a tied phi3 model is written with a copy.
  const tiedOutput = weights.output === weights.tokenEmbedding && description.architecture !== "phi3";
  const shapes = expectedShapes(description, tiedOutput);
  const arrays = new Map<string, Float32Array | undefined>([
    ["token_embd.weight", weights.tokenEmbedding],
    ["output_norm.weight", weights.outputNorm],
    ["output.weight", weights.output],
  ]);
  weights.layers.forEach((layer, index) => {
    const block = `blk.${index}`;
    arrays.set(`${block}.attn_norm.weight`, layer.attentionNorm);
    arrays.set(`${block}.attn_q.weight`, toFileLayout(layer.query, headCount, embeddingSize));
    arrays.set(`${block}.attn_k.weight`, toFileLayout(layer.key, kvHeadCount, embeddingSize));
    arrays.set(`${block}.attn_v.weight`, layer.value);
    arrays.set(`${block}.attn_q.bias`, toFileLayout(layer.queryBias, headCount, 1));
    arrays.set(`${block}.attn_k.bias`, toFileLayout(layer.keyBias, kvHeadCount, 1));
    arrays.set(`${block}.attn_v.bias`, layer.valueBias);
    arrays.set(`${block}.attn_output.weight`, layer.output);
    arrays.set(`${block}.ffn_norm.weight`, layer.feedForwardNorm);
    arrays.set(`${block}.ffn_gate.weight`, layer.gate);
    arrays.set(`${block}.ffn_up.weight`, layer.up);
    arrays.set(`${block}.ffn_down.weight`, layer.down);
    arrays.set(`${block}.post_attention_norm.weight`, layer.postAttentionNorm);
    arrays.set(`${block}.post_ffw_norm.weight`, layer.postFeedForwardNorm);
    arrays.set(`${block}.attn_q_norm.weight`, layer.queryNorm);
    arrays.set(`${block}.attn_k_norm.weight`, layer.keyNorm);
    if (description.architecture === "phi3") {
      arrays.set(`${block}.attn_qkv.weight`, concatenate([layer.query, layer.key, layer.value]));
      arrays.set(`${block}.ffn_up.weight`, concatenate([layer.gate, layer.up]));
    }
  });
  if (weights.layers.length !== description.layerCount) {
    throw new ModelFileError(
      path,
      `cannot be written: ${weights.layers.length} layers but the description says ${description.layerCount}`,
    );
  }
  const tensors: GgufTensorToWrite[] = [];
  for (const [name, shape] of shapes) {
    const data = arrays.get(name);
    if (data === undefined) throw new ModelFileError(path, `cannot be written: tensor ${name} is missing`);
    // llama.cpp expects 1-D tensors (norms, biases) in F32 whatever the matrices use.
    tensors.push({ name, shape, type: shape.length === 1 ? "F32" : tensorType, data });
  }
  const factors = description.ropeFrequencyFactors;
  if (factors !== undefined) {
    if (factors.length !== description.rotaryDimension / 2) {
      throw new ModelFileError(
        path,
        `cannot be written: ${factors.length} RoPE frequency factors but rotaryDimension / 2 = ${description.rotaryDimension / 2}`,
      );
    }
    tensors.push({
      name: ropeFrequenciesTensor,
      shape: [factors.length],
      type: "F32",
      data: Float32Array.from(factors),
    });
  }
  if (description.longRope !== undefined) {
    for (const [name, values] of [
      [longRopeTensors.short, description.longRope.shortFactors],
      [longRopeTensors.long, description.longRope.longFactors],
    ] as const) {
      if (values.length !== description.rotaryDimension / 2) {
        throw new ModelFileError(
          path,
          `cannot be written: ${values.length} values for ${name} but rotaryDimension / 2 = ${description.rotaryDimension / 2}`,
        );
      }
      tensors.push({ name, shape: [values.length], type: "F32", data: Float32Array.from(values) });
    }
  }
  return {
    metadata: {
      ...llamaMetadata(description, tensorType, options.name),
      ...vocabularyMetadata(vocabulary),
      ...options.extraMetadata,
    },
    tensors,
  };
}
