/**
 * llama2.c legacy (version 0) checkpoints, as stories260K.bin: a header of 7 little-endian int32
 * (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len) and then float32 tensors in
 * a fixed order. A negative vocab_size means a separate classifier follows the freq_cis tables.
 */
import type { LlamaLayerWeights, LlamaModelDescription, LlamaWeights } from "./llama-model.js";
import { ModelFileError } from "./model-file-error.js";

const headerBytes = 28;

export function parseLlama2cCheckpoint(bytes: Uint8Array, path = "<llama2.c checkpoint>"): LlamaWeights {
  if (bytes.byteLength < headerBytes) {
    throw new ModelFileError(
      path,
      `too short for a llama2.c header (${bytes.byteLength} bytes, need ${headerBytes})`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = Array.from({ length: 7 }, (_, index) => view.getInt32(index * 4, true));
  const [dim, hiddenDim, layerCount, headCount, kvHeadCount, signedVocab, sequenceLength] = header;
  const vocabularySize = Math.abs(signedVocab);
  const sharedClassifier = signedVocab > 0;
  const positive = { dim, hiddenDim, layerCount, headCount, kvHeadCount, vocabularySize, sequenceLength };
  for (const [field, value] of Object.entries(positive)) {
    if (!(value > 0 && value < 1 << 24)) {
      throw new ModelFileError(
        path,
        `header field ${field} = ${value} is not a plausible size; not a llama2.c checkpoint`,
      );
    }
  }
  if (dim % headCount !== 0 || headCount % kvHeadCount !== 0) {
    throw new ModelFileError(
      path,
      `header dim = ${dim}, n_heads = ${headCount}, n_kv_heads = ${kvHeadCount} are inconsistent`,
    );
  }
  const headSize = dim / headCount;
  const kvDim = kvHeadCount * headSize;
  const sizes: number[] = [
    vocabularySize * dim,
    layerCount * dim,
    layerCount * dim * dim,
    layerCount * kvDim * dim,
    layerCount * kvDim * dim,
    layerCount * dim * dim,
    layerCount * dim,
    layerCount * hiddenDim * dim,
    layerCount * dim * hiddenDim,
    layerCount * hiddenDim * dim,
    dim,
    (sequenceLength * headSize) / 2,
    (sequenceLength * headSize) / 2,
    sharedClassifier ? 0 : vocabularySize * dim,
  ];
  const expectedFloats = sizes.reduce((total, size) => total + size, 0);
  const actualFloats = (bytes.byteLength - headerBytes) / 4;
  if (actualFloats !== expectedFloats) {
    throw new ModelFileError(
      path,
      `holds ${bytes.byteLength} bytes but its header (dim ${dim}, layers ${layerCount}, vocab ${signedVocab}) needs ${
        headerBytes + expectedFloats * 4
      }: truncated or not a llama2.c checkpoint`,
    );
  }
  // Copy once into an aligned buffer; every tensor is a view into it.
  const floats = new Float32Array(expectedFloats);
  new Uint8Array(floats.buffer).set(bytes.subarray(headerBytes, headerBytes + expectedFloats * 4));
  let cursor = 0;
  const take = (count: number): Float32Array => {
    const tensor = floats.subarray(cursor, cursor + count);
    cursor += count;
    return tensor;
  };
  const perLayer = (tensor: Float32Array, layer: number, count: number) =>
    tensor.subarray(layer * count, (layer + 1) * count);

  const tokenEmbedding = take(sizes[0]);
  const attentionNorm = take(sizes[1]);
  const query = take(sizes[2]);
  const key = take(sizes[3]);
  const value = take(sizes[4]);
  const output = take(sizes[5]);
  const feedForwardNorm = take(sizes[6]);
  const gate = take(sizes[7]);
  const down = take(sizes[8]);
  const up = take(sizes[9]);
  const outputNorm = take(sizes[10]);
  take(sizes[11]);
  take(sizes[12]);
  const classifier = sharedClassifier ? tokenEmbedding : take(sizes[13]);

  const layers: LlamaLayerWeights[] = Array.from({ length: layerCount }, (_, layer) => ({
    attentionNorm: perLayer(attentionNorm, layer, dim),
    query: perLayer(query, layer, dim * dim),
    key: perLayer(key, layer, kvDim * dim),
    value: perLayer(value, layer, kvDim * dim),
    output: perLayer(output, layer, dim * dim),
    feedForwardNorm: perLayer(feedForwardNorm, layer, dim),
    gate: perLayer(gate, layer, hiddenDim * dim),
    down: perLayer(down, layer, dim * hiddenDim),
    up: perLayer(up, layer, hiddenDim * dim),
  }));

  const description: LlamaModelDescription = {
    architecture: "llama",
    layerCount,
    headCount,
    kvHeadCount,
    headSize,
    embeddingSize: dim,
    feedForwardSize: hiddenDim,
    // llama2.c's run.c uses 1e-5 and interleaved RoPE with base 10000 over the whole head.
    normEpsilon: 1e-5,
    vocabularySize,
    trainedContext: sequenceLength,
    ropeBase: 10000,
    ropeLayout: "interleaved",
    rotaryDimension: headSize,
    ropeLinearScalingFactor: 1,
    hasQkvBias: false,
  };
  return { description, tokenEmbedding, outputNorm, output: classifier, layers };
}
