import { copyFileSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { applyRope, createRandom, createRopeTable } from "@self-extend/core";
import { sharedPath, useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { roundToFloat16 } from "../src/float16.js";
import { readGguf } from "../src/gguf-file.js";
import { parseGguf } from "../src/gguf-reader.js";
import { tokenizerFromGguf, vocabularyFromGguf } from "../src/gguf-vocabulary.js";
import { encodeGguf, type GgufContents } from "../src/gguf-writer.js";
import { describeLlamaModel } from "../src/llama-description.js";
import { llamaGgufContents } from "../src/llama-gguf.js";
import type { LlamaWeights } from "../src/llama-model.js";
import { importLlama2c } from "../src/llama2c-import.js";
import { ModelFileError, UnsupportedArchitectureError } from "../src/model-file-error.js";
import { loadLlamaWeights, readLlama2cCheckpoint, writeLlamaGguf } from "../src/model-files.js";
import { permuteForInterleavedRope, unpermuteFromInterleavedRope } from "../src/rope-permutation.js";
import {
  generateTinyModel,
  llama3RopeFrequencyFactors,
  llama32OneBLayout,
  tinyModelGrid,
  tinyModelSpec,
} from "../src/tiny-model.js";

const checkpointPath = sharedPath("models", "stories260K.bin");
const tokenizerPath = sharedPath("models", "tok512.bin");
const newFolder = useTemporaryFolder();

/** Every float32 array of a model, with a label, in a fixed order. */
function tensorsOf(weights: LlamaWeights): [string, Float32Array][] {
  const list: [string, Float32Array][] = [
    ["tokenEmbedding", weights.tokenEmbedding],
    ["outputNorm", weights.outputNorm],
    ["output", weights.output],
  ];
  const keys = [
    "attentionNorm",
    "query",
    "key",
    "value",
    "queryBias",
    "keyBias",
    "valueBias",
    "output",
  ] as const;
  const feedForward = [
    "feedForwardNorm",
    "gate",
    "up",
    "down",
    "postAttentionNorm",
    "postFeedForwardNorm",
  ] as const;
  weights.layers.forEach((layer, index) => {
    for (const key of [...keys, ...feedForward]) {
      const value = layer[key];
      if (value !== undefined) list.push([`layer ${index} ${key}`, value]);
    }
  });
  return list;
}

function expectSameWeights(
  actual: LlamaWeights,
  expected: LlamaWeights,
  round: (value: number) => number = (value) => value,
) {
  const actualTensors = tensorsOf(actual);
  const expectedTensors = tensorsOf(expected);
  expect(actualTensors.map(([label]) => label)).toEqual(expectedTensors.map(([label]) => label));
  actualTensors.forEach(([label, values], index) => {
    const reference = expectedTensors[index][1];
    expect(values.length, label).toBe(reference.length);
    let mismatches = 0;
    for (let at = 0; at < values.length; at++) if (values[at] !== round(reference[at])) mismatches++;
    expect(mismatches, label).toBe(0);
  });
}

describe("tiny model generator", () => {
  it("covers the grid the adapters need", () => {
    const headSizes = new Set(tinyModelGrid.map((spec) => spec.headSize));
    expect([...headSizes].sort((a, b) => a - b)).toEqual([8, 16, 32, 64]);
    expect(new Set(tinyModelGrid.map((spec) => spec.headCount / spec.kvHeadCount))).toEqual(
      new Set([1, 2, 4]),
    );
    expect(new Set(tinyModelGrid.map((spec) => spec.architecture))).toEqual(
      new Set(["llama", "mistral", "qwen2", "phi3", "gemma", "gemma2", "gemma3"]),
    );
    expect(new Set(tinyModelGrid.map((spec) => spec.ropeBase))).toEqual(
      new Set([10000, 1e6, 500000, 100000]),
    );
    expect(tinyModelGrid.some((spec) => spec.llama3RopeScaling !== undefined)).toBe(true);
    expect(new Set(tinyModelGrid.map((spec) => spec.hasQkvBias))).toEqual(new Set([true, false]));
    for (const spec of tinyModelGrid) {
      expect(spec.trainedContext).toBeGreaterThanOrEqual(64);
      expect(spec.trainedContext).toBeLessThanOrEqual(256);
      expect(spec.vocabularySize).toBeGreaterThanOrEqual(64);
      expect(spec.vocabularySize).toBeLessThanOrEqual(256);
    }
  });

  it("mulberry32 gives its published first outputs", () => {
    // mulberry32(0) as in the reference JavaScript snippet; the first value is 0.26642920868471265.
    const random = createRandom(0);
    expect(random()).toBeCloseTo(0.26642920868471265, 15);
  });

  it("gives identical GGUF bytes for the same seed and different bytes for another seed", () => {
    const folder = newFolder();
    for (const spec of tinyModelGrid) {
      const paths = ["a", "b", "c"].map((label) => join(folder, `${spec.name}-${label}.gguf`));
      writeLlamaGguf(paths[0], generateTinyModel(spec, 7));
      writeLlamaGguf(paths[1], generateTinyModel(spec, 7));
      writeLlamaGguf(paths[2], generateTinyModel(spec, 8));
      expect(readFileSync(paths[0]).equals(readFileSync(paths[1])), spec.name).toBe(true);
      expect(readFileSync(paths[0]).equals(readFileSync(paths[2])), spec.name).toBe(false);
    }
  });

  it("scales weights like 1/sqrt(fan_in) and keeps norms near 1", () => {
    const weights = generateTinyModel(tinyModelSpec("qwen2-h64-gqa4-bias"), 1);
    const { query } = weights.layers[0];
    const variance = query.reduce((sum, value) => sum + value * value, 0) / query.length;
    expect(variance * weights.description.embeddingSize).toBeGreaterThan(0.9);
    expect(variance * weights.description.embeddingSize).toBeLessThan(1.1);
    for (const value of weights.layers[0].attentionNorm) expect(Math.abs(value - 1)).toBeLessThanOrEqual(0.1);
  });
});

describe("Llama GGUF round trip", () => {
  it("reads back every tiny model exactly in F32 and to the nearest half in F16", () => {
    const folder = newFolder();
    for (const spec of tinyModelGrid) {
      const weights = generateTinyModel(spec, 3);
      const path32 = join(folder, `${spec.name}.f32.gguf`);
      const path16 = join(folder, `${spec.name}.f16.gguf`);
      writeLlamaGguf(path32, weights);
      writeLlamaGguf(path16, weights, { tensorType: "F16" });
      const loaded = loadLlamaWeights(path32);
      expect(loaded.description).toEqual(weights.description);
      expectSameWeights(loaded, weights);
      expect(loaded.output === loaded.tokenEmbedding).toBe(spec.tiedEmbeddings === true);

      const half = loadLlamaWeights(path16);
      // Norms and biases stay F32; matrices are rounded to F16.
      const rounded: LlamaWeights = {
        ...weights,
        tokenEmbedding: weights.tokenEmbedding.map(roundToFloat16),
        output: spec.tiedEmbeddings
          ? weights.tokenEmbedding.map(roundToFloat16)
          : weights.output.map(roundToFloat16),
        layers: weights.layers.map((layer) => {
          const copy: Record<string, Float32Array> = {};
          for (const [key, value] of Object.entries(layer)) {
            const vector = key.endsWith("Norm") || key.endsWith("Bias");
            copy[key] = vector ? (value as Float32Array) : (value as Float32Array).map(roundToFloat16);
          }
          return copy as unknown as LlamaWeights["layers"][number];
        }),
      };
      expectSameWeights(half, rounded);
    }
  });

  it("writes the metadata llama.cpp reads, with the types it checks", () => {
    const path = join(newFolder(), "meta.gguf");
    writeLlamaGguf(path, generateTinyModel(tinyModelSpec("qwen2-h8-gqa2-bias-base1e6"), 1), { name: "tiny" });
    const gguf = readGguf(path);
    try {
      const types = Object.fromEntries([...gguf.typedMetadata].map(([key, entry]) => [key, entry.type]));
      expect(types).toMatchObject({
        "general.architecture": "string",
        "general.name": "string",
        "general.file_type": "uint32",
        "qwen2.context_length": "uint32",
        "qwen2.embedding_length": "uint32",
        "qwen2.block_count": "uint32",
        "qwen2.feed_forward_length": "uint32",
        "qwen2.rope.dimension_count": "uint32",
        "qwen2.rope.freq_base": "float32",
        "qwen2.attention.head_count": "uint32",
        "qwen2.attention.head_count_kv": "uint32",
        "qwen2.attention.layer_norm_rms_epsilon": "float32",
        "tokenizer.ggml.model": "string",
        "tokenizer.ggml.tokens": "array",
        "tokenizer.ggml.scores": "array",
        "tokenizer.ggml.token_type": "array",
        "tokenizer.ggml.bos_token_id": "uint32",
        "tokenizer.ggml.add_bos_token": "bool",
      });
      expect(gguf.typedMetadata.get("tokenizer.ggml.token_type")).toMatchObject({ itemType: "int32" });
      expect(gguf.typedMetadata.get("tokenizer.ggml.scores")).toMatchObject({ itemType: "float32" });
      expect(gguf.tensor("blk.0.attn_k.weight")?.dimensions).toEqual([32, 16]); // ne0 = input width
      expect(gguf.tensor("blk.0.attn_k.bias")?.dimensions).toEqual([16]);
      expect(gguf.tensor("token_embd.weight")?.dimensions).toEqual([32, 256]);
      expect(gguf.tensor("output.weight")?.dimensions).toEqual([32, 256]);
      expect(gguf.tensor("blk.0.ffn_down.weight")?.dimensions).toEqual([64, 32]);
      const description = describeLlamaModel(gguf);
      expect(description).toMatchObject({
        architecture: "qwen2",
        ropeLayout: "half-split",
        hasQkvBias: true,
        ropeBase: 1e6,
      });
    } finally {
      gguf.close();
    }
  });

  it("describes llama as interleaved and refuses other architectures by name", () => {
    const base = {
      "llama.block_count": { type: "uint32", value: 1 },
      "llama.embedding_length": { type: "uint32", value: 8 },
      "llama.feed_forward_length": { type: "uint32", value: 16 },
      "llama.attention.head_count": { type: "uint32", value: 2 },
      "llama.context_length": { type: "uint32", value: 32 },
      "llama.attention.layer_norm_rms_epsilon": { type: "float32", value: 1e-6 },
      "llama.rope.scaling.type": { type: "string", value: "linear" },
      "llama.rope.scaling.factor": { type: "float32", value: 4 },
      "llama.vocab_size": { type: "uint32", value: 10 },
    } as const;
    const llama = parseGguf(
      encodeGguf({
        metadata: { "general.architecture": { type: "string", value: "llama" }, ...base },
        tensors: [],
      }),
    );
    expect(describeLlamaModel(llama, "m.gguf")).toEqual({
      architecture: "llama",
      layerCount: 1,
      headCount: 2,
      kvHeadCount: 2,
      headSize: 4,
      embeddingSize: 8,
      feedForwardSize: 16,
      normEpsilon: 1e-6,
      vocabularySize: 10,
      trainedContext: 32,
      ropeBase: 10000,
      ropeLayout: "interleaved",
      rotaryDimension: 4,
      ropeLinearScalingFactor: 4,
      hasQkvBias: false,
    });
    const phi = parseGguf(
      encodeGguf({
        metadata: { "general.architecture": { type: "string", value: "phi2" }, ...base },
        tensors: [],
      }),
    );
    expect(() => describeLlamaModel(phi, "phi.gguf")).toThrow(UnsupportedArchitectureError);
    expect(() => describeLlamaModel(phi, "phi.gguf")).toThrow(
      /phi\.gguf: architecture "phi2" is not supported/,
    );
    const missing = parseGguf(
      encodeGguf({ metadata: { "general.architecture": { type: "string", value: "llama" } }, tensors: [] }),
    );
    expect(() => describeLlamaModel(missing, "x.gguf")).toThrow(
      /x\.gguf: metadata key llama\.block_count is missing/,
    );
  });
});

describe("RoPE layout on write", () => {
  it("permutes half-split (Hugging Face) Q/K rows of a llama model as llama.cpp's converter does", () => {
    // The generator's llama weights are interleaved, as llama files hold them; un-permuted they are
    // what a Hugging Face (or ONNX) export holds. Written, they must read back as the originals.
    const original = generateTinyModel(tinyModelSpec("llama-h16-gqa2"), 3);
    const { headCount, kvHeadCount, embeddingSize } = original.description;
    const halfSplit: LlamaWeights = {
      ...original,
      description: { ...original.description, ropeLayout: "half-split" },
      layers: original.layers.map((layer) => ({
        ...layer,
        query: unpermuteFromInterleavedRope(layer.query, headCount, embeddingSize),
        key: unpermuteFromInterleavedRope(layer.key, kvHeadCount, embeddingSize),
      })),
    };
    const path = join(newFolder(), "half-split.gguf");
    writeLlamaGguf(path, halfSplit);
    const read = loadLlamaWeights(path);
    expect(read.description.ropeLayout).toBe("interleaved");
    read.layers.forEach((layer, index) => {
      expect(layer.query).toEqual(original.layers[index].query);
      expect(layer.key).toEqual(original.layers[index].key);
    });
  });

  it("refuses interleaved weights for an architecture whose files hold half-split RoPE", () => {
    const weights = generateTinyModel(tinyModelSpec("qwen2-h16-mha-bias"), 3);
    const interleaved = {
      ...weights,
      description: { ...weights.description, ropeLayout: "interleaved" as const },
    };
    expect(() => writeLlamaGguf(join(newFolder(), "x.gguf"), interleaved)).toThrow(
      "qwen2 files hold half-split RoPE and the weights are interleaved",
    );
  });
});

describe("Llama 3 rope_freqs", () => {
  it("Llama-3.2-1B's factors: 1 below wavelength 2048, 32 above 8192, a blend for pairs 15-17", () => {
    // wavelength_k = 2 pi 500000^(2k/64): < 2048 up to k = 14, > 8192 from k = 18.
    const factors = llama3RopeFrequencyFactors(64, 500000, llama32OneBLayout.llama3RopeScaling!);
    expect(factors.slice(0, 15)).toEqual(Array(15).fill(1));
    expect(factors.slice(18)).toEqual(Array(14).fill(32));
    for (const factor of factors.slice(15, 18)) {
      expect(factor).toBeGreaterThan(1);
      expect(factor).toBeLessThan(32);
    }
    expect(factors[15]).toBeLessThan(factors[16]);
    expect(factors[16]).toBeLessThan(factors[17]);
  });

  it("writes rope_freqs.weight as llama.cpp names it and reads it back into the description", () => {
    const spec = tinyModelSpec("llama3-h64-gqa4-rope-freqs");
    const weights = generateTinyModel(spec, 5);
    const path = join(newFolder(), "llama3.gguf");
    writeLlamaGguf(path, weights);
    const gguf = readGguf(path);
    try {
      expect(gguf.tensor("rope_freqs.weight")?.shape).toEqual([32]);
      // ggml type 0 is F32, the type llama.cpp creates rope_freqs with.
      expect(gguf.tensor("rope_freqs.weight")?.type).toBe(0);
      const factors = describeLlamaModel(gguf).ropeFrequencyFactors;
      expect(factors).toEqual(weights.description.ropeFrequencyFactors);
      // The blend region lies inside the tiny model's trained context (wavelengths 32 to 128).
      expect(factors?.filter((factor) => factor > 1 && factor < 32).length).toBeGreaterThan(0);
    } finally {
      gguf.close();
    }
  });

  it("refuses a rope_freqs tensor of the wrong size or with a non-positive factor", () => {
    const metadata = {
      "general.architecture": { type: "string", value: "llama" },
      "llama.block_count": { type: "uint32", value: 1 },
      "llama.embedding_length": { type: "uint32", value: 8 },
      "llama.feed_forward_length": { type: "uint32", value: 16 },
      "llama.attention.head_count": { type: "uint32", value: 2 },
      "llama.context_length": { type: "uint32", value: 32 },
      "llama.attention.layer_norm_rms_epsilon": { type: "float32", value: 1e-6 },
      "llama.vocab_size": { type: "uint32", value: 10 },
    } as const;
    const withFactors = (data: number[]) =>
      parseGguf(
        encodeGguf({
          metadata,
          tensors: [
            { name: "rope_freqs.weight", shape: [data.length], type: "F32", data: Float32Array.from(data) },
          ],
        }),
      );
    expect(() => describeLlamaModel(withFactors([1, 2, 4]), "r.gguf")).toThrow(
      "r.gguf: tensor rope_freqs.weight has shape [3], expected [2] (rope.dimension_count / 2)",
    );
    expect(() => describeLlamaModel(withFactors([1, 0]), "r.gguf")).toThrow(
      "r.gguf: tensor rope_freqs.weight[1] = 0 is not a finite number > 0",
    );
    expect(describeLlamaModel(withFactors([1, 1]), "r.gguf").ropeFrequencyFactors).toBeUndefined();
    expect(describeLlamaModel(withFactors([1, 8]), "r.gguf").ropeFrequencyFactors).toEqual([1, 8]);
  });
});

describe("Phi-3 fused tensors", () => {
  it("writes attn_qkv (q, k, v rows) and ffn_up (gate, up rows) as llama.cpp names them and splits them back", () => {
    const spec = tinyModelSpec("phi-h32-mha-fused");
    const weights = generateTinyModel(spec, 9);
    const path = join(newFolder(), "phi3.gguf");
    writeLlamaGguf(path, weights);
    const gguf = readGguf(path);
    try {
      const embedding = spec.headCount * spec.headSize;
      expect(gguf.metadata.get("general.architecture")).toBe("phi3");
      expect(gguf.tensor("blk.0.attn_q.weight")).toBeUndefined();
      expect(gguf.tensor("blk.0.ffn_gate.weight")).toBeUndefined();
      expect(gguf.tensor("blk.0.attn_qkv.weight")?.shape).toEqual([3 * embedding, embedding]);
      expect(gguf.tensor("blk.0.ffn_up.weight")?.shape).toEqual([2 * spec.feedForwardSize, embedding]);
      // llama.cpp requires phi3's output.weight.
      expect(gguf.tensor("output.weight")).toBeDefined();
      const fused = gguf.readTensor("blk.1.attn_qkv.weight");
      // Row 0 of k is row headCount * headSize of the fused matrix.
      expect(fused.subarray(embedding * embedding, embedding * embedding + embedding)).toEqual(
        weights.layers[1].key.subarray(0, embedding),
      );
      const gateUp = gguf.readTensor("blk.1.ffn_up.weight");
      expect(gateUp.subarray(0, embedding)).toEqual(weights.layers[1].gate.subarray(0, embedding));
    } finally {
      gguf.close();
    }
    const loaded = loadLlamaWeights(path);
    expect(loaded.description.ropeLayout).toBe("half-split");
    expectSameWeights(loaded, weights);
  });

  describe("LongRoPE (Phi-3-mini-128k)", () => {
    const weights = generateTinyModel(tinyModelSpec("phi-h32-mha-fused"), 9);
    const contents = llamaGgufContents(weights);
    const pairs = weights.description.rotaryDimension / 2;
    const factors = (value: number, length = pairs) =>
      Float32Array.from({ length }, (_, pair) => value + pair / 8);
    const factorTensor = (name: string, data: Float32Array) => ({
      name,
      shape: [data.length],
      type: "F32" as const,
      data,
    });
    const longRopeFile = (metadata: GgufContents["metadata"], tensors: ReturnType<typeof factorTensor>[]) =>
      parseGguf(
        encodeGguf({
          ...contents,
          metadata: { ...contents.metadata, ...metadata },
          tensors: [...contents.tensors, ...tensors],
        }),
      );
    const both = [
      factorTensor("rope_factors_short.weight", factors(1)),
      factorTensor("rope_factors_long.weight", factors(2)),
    ];
    const originalContext = {
      "phi3.rope.scaling.original_context_length": { type: "uint32" as const, value: 16 },
    };

    it("reads both factor sets, the original context and the attention factor (folded into the score scale)", () => {
      const description = describeLlamaModel(
        longRopeFile(
          { ...originalContext, "phi3.rope.scaling.attn_factor": { type: "float32", value: 1.25 } },
          both,
        ),
        "long.gguf",
      );
      expect(description.longRope).toEqual({
        originalContext: 16,
        shortFactors: Array.from(factors(1)),
        longFactors: Array.from(factors(2)),
        attentionFactor: 1.25,
      });
      expect(description.attentionScale).toBe(Math.fround(1.25 ** 2 / Math.sqrt(description.headSize)));
      expect(description.ropeFrequencyFactors).toBeUndefined();
    });

    it("survives a write/read round trip through the writer", () => {
      const description = describeLlamaModel(
        longRopeFile(
          { ...originalContext, "phi3.rope.scaling.attn_factor": { type: "float32", value: 1.25 } },
          both,
        ),
        "long.gguf",
      );
      const written = parseGguf(encodeGguf(llamaGgufContents({ ...weights, description })));
      expect(describeLlamaModel(written, "written.gguf")).toEqual(description);
    });

    const refusals: [string, GgufContents["metadata"], ReturnType<typeof factorTensor>[], string][] = [
      [
        "one factor set",
        originalContext,
        [factorTensor("rope_factors_long.weight", factors(2))],
        "long.gguf: has tensor rope_factors_long.weight without rope_factors_short.weight: LongRoPE needs both factor sets",
      ],
      [
        "no original context",
        {},
        both,
        "long.gguf: has LongRoPE factors but no phi3.rope.scaling.original_context_length: LongRoPE picks its factors by it",
      ],
      [
        "an original context past the trained context",
        { "phi3.rope.scaling.original_context_length": { type: "uint32", value: 100_000 } },
        both,
        "long.gguf: phi3.rope.scaling.original_context_length 100000 must be an integer from 1 to the trained context",
      ],
      [
        "factors of the wrong length",
        originalContext,
        [factorTensor("rope_factors_short.weight", factors(1, pairs + 1)), both[1]],
        `long.gguf: tensor rope_factors_short.weight has shape [${pairs + 1}], expected [${pairs}]`,
      ],
      [
        "both rope_freqs and LongRoPE",
        originalContext,
        [...both, factorTensor("rope_freqs.weight", factors(3))],
        "long.gguf: has both rope_freqs.weight and LongRoPE factors (rope_factors_long.weight)",
      ],
      [
        "an attention factor on partial rotary",
        {
          ...originalContext,
          "phi3.rope.dimension_count": { type: "uint32", value: pairs },
          "phi3.rope.scaling.attn_factor": { type: "float32", value: 1.25 },
        },
        [
          factorTensor("rope_factors_short.weight", factors(1, pairs / 2)),
          factorTensor("rope_factors_long.weight", factors(2, pairs / 2)),
        ],
        `long.gguf: phi3.rope.scaling.attn_factor 1.25 with rope.dimension_count ${pairs} < head size ${2 * pairs}: a LongRoPE attention factor on partial rotary is not supported`,
      ],
    ];
    for (const [name, metadata, tensors, message] of refusals) {
      it(`refuses ${name} in one line`, () => {
        expect(() => describeLlamaModel(longRopeFile(metadata, tensors), "long.gguf")).toThrow(message);
      });
    }
  });
});

describe("Gemma files", () => {
  const gemma2Spec = {
    name: "gemma2-h16-gqa2",
    architecture: "gemma2",
    layerCount: 3,
    headCount: 4,
    kvHeadCount: 2,
    headSize: 16,
    feedForwardSize: 96,
    vocabularySize: 128,
    trainedContext: 64,
    ropeBase: 10000,
    hasQkvBias: false,
    tiedEmbeddings: true,
    gemma2: {
      attentionLogitSoftCap: 5,
      finalLogitSoftCap: 10,
      slidingWindowSize: 24,
      slidingWindowPattern: 3,
    },
  } as const;

  it("round-trips a Gemma 2 model: post-norms, soft-caps and llama.cpp's sliding-window pattern", () => {
    const weights = generateTinyModel(gemma2Spec, 5);
    const path = join(newFolder(), "gemma2.gguf");
    writeLlamaGguf(path, weights);
    const gguf = readGguf(path);
    try {
      expect(gguf.metadata.get("gemma2.attention.sliding_window")).toBe(24);
      expect(gguf.metadata.get("gemma2.attention.sliding_window_pattern")).toBe(3);
      expect(gguf.tensor("blk.2.post_ffw_norm.weight")?.shape).toEqual([64]);
      expect(gguf.tensor("output.weight")).toBeUndefined();
    } finally {
      gguf.close();
    }
    const loaded = loadLlamaWeights(path);
    expectSameWeights(loaded, weights);
    const { description } = loaded;
    // llama.cpp's set_swa_pattern(3): layers 0 and 1 local, layer 2 global.
    expect(description.slidingWindow).toEqual({ size: 24, localLayers: [true, true, false] });
    expect(description.embeddingScale).toBe(Math.fround(8));
    expect(description.attentionScale).toBe(Math.fround(1 / 4));
    expect([description.attentionLogitSoftCap, description.finalLogitSoftCap]).toEqual([5, 10]);
    expect(description.feedForwardActivation).toBe("gelu-tanh");
    expect(description.ropeLayout).toBe("half-split");
    expect(loaded.output).toBe(loaded.tokenEmbedding);
  });

  it("gives a Gemma 2 file without those keys llama.cpp's defaults, and the 27B its own score scale", () => {
    const metadata = (layers: number) =>
      parseGguf(
        encodeGguf({
          metadata: {
            "general.architecture": { type: "string", value: "gemma2" },
            "gemma2.block_count": { type: "uint32", value: layers },
            "gemma2.embedding_length": { type: "uint32", value: 4608 },
            "gemma2.feed_forward_length": { type: "uint32", value: 36864 },
            "gemma2.attention.head_count": { type: "uint32", value: 32 },
            "gemma2.attention.head_count_kv": { type: "uint32", value: 16 },
            "gemma2.attention.key_length": { type: "uint32", value: 128 },
            "gemma2.context_length": { type: "uint32", value: 8192 },
            "gemma2.vocab_size": { type: "uint32", value: 256000 },
            "gemma2.attention.layer_norm_rms_epsilon": { type: "float32", value: 1e-6 },
          },
          tensors: [],
        }),
        "m.gguf",
      );
    const small = describeLlamaModel(metadata(42), "m.gguf");
    expect(small.attentionLogitSoftCap).toBe(50);
    expect(small.finalLogitSoftCap).toBe(30);
    expect(small.slidingWindow?.size).toBe(4096);
    expect(small.slidingWindow?.localLayers.slice(0, 4)).toEqual([true, false, true, false]);
    expect(small.attentionScale).toBe(Math.fround(1 / Math.sqrt(128)));
    // 46 layers is the 27B: llama.cpp scales by 1/sqrt(4608 / 32) = 1/12, as gemma_pytorch does.
    expect(describeLlamaModel(metadata(46), "m.gguf").attentionScale).toBe(Math.fround(1 / 12));
  });

  it("round-trips the grid's Gemma 3 model: head norms, pattern, the local RoPE base and the global linear scaling", () => {
    const spec = tinyModelGrid.find((candidate) => candidate.architecture === "gemma3");
    if (spec === undefined) throw new Error("the grid has no gemma3 model");
    const weights = generateTinyModel(spec, 5);
    const path = join(newFolder(), "gemma3.gguf");
    writeLlamaGguf(path, weights);
    const gguf = readGguf(path);
    try {
      expect(gguf.metadata.get("gemma3.attention.sliding_window_pattern")).toBe(3);
      expect(gguf.metadata.get("gemma3.rope.freq_base_swa")).toBe(10000);
      expect(gguf.metadata.get("gemma3.rope.scaling.type")).toBe("linear");
      expect(gguf.tensor("blk.0.attn_q_norm.weight")?.shape).toEqual([16]);
    } finally {
      gguf.close();
    }
    const loaded = loadLlamaWeights(path);
    expect(loaded.description).toEqual(weights.description);
    expect(loaded.description.slidingWindow).toEqual({
      size: 8,
      localLayers: [true, true, false],
      ropeBase: 10000,
    });
    loaded.layers.forEach((layer, index) => {
      expect(layer.queryNorm).toEqual(weights.layers[index].queryNorm);
      expect(layer.keyNorm).toEqual(weights.layers[index].keyNorm);
    });
  });

  it("reads a Gemma 3 file as llama.cpp does: pattern 6, local base 10000 and no soft-caps by default, every layer global without a window, the 27B's score scale", () => {
    const metadata = (layers: number, extra: Record<string, { type: "uint32" | "float32"; value: number }>) =>
      parseGguf(
        encodeGguf({
          metadata: {
            "general.architecture": { type: "string", value: "gemma3" },
            "gemma3.block_count": { type: "uint32", value: layers },
            "gemma3.embedding_length": { type: "uint32", value: 5376 },
            "gemma3.feed_forward_length": { type: "uint32", value: 21504 },
            "gemma3.attention.head_count": { type: "uint32", value: 32 },
            "gemma3.attention.head_count_kv": { type: "uint32", value: 16 },
            "gemma3.attention.key_length": { type: "uint32", value: 128 },
            "gemma3.context_length": { type: "uint32", value: 131072 },
            "gemma3.vocab_size": { type: "uint32", value: 262208 },
            "gemma3.rope.freq_base": { type: "float32", value: 1e6 },
            "gemma3.attention.layer_norm_rms_epsilon": { type: "float32", value: 1e-6 },
            ...extra,
          },
          tensors: [],
        }),
        "m.gguf",
      );
    const windowed = describeLlamaModel(
      metadata(34, { "gemma3.attention.sliding_window": { type: "uint32", value: 1024 } }),
      "m.gguf",
    );
    expect(windowed.slidingWindow?.size).toBe(1024);
    expect(windowed.slidingWindow?.ropeBase).toBe(10000);
    expect(windowed.slidingWindow?.localLayers.slice(0, 12)).toEqual([
      true,
      true,
      true,
      true,
      true,
      false,
      true,
      true,
      true,
      true,
      true,
      false,
    ]);
    expect(windowed.hasQueryKeyNorms).toBe(true);
    expect(windowed.hasPostNorms).toBe(true);
    expect(windowed.attentionLogitSoftCap).toBeUndefined();
    expect(windowed.finalLogitSoftCap).toBeUndefined();
    expect(windowed.attentionScale).toBe(Math.fround(1 / Math.sqrt(128)));
    // 62 layers is the 27B: 1/sqrt(5376 / 32) = 1/sqrt(168), as llama.cpp's gemma3.cpp.
    expect(describeLlamaModel(metadata(62, {}), "m.gguf").attentionScale).toBe(
      Math.fround(1 / Math.sqrt(168)),
    );
    // No window key: every layer global (llama.cpp's LLAMA_SWA_TYPE_NONE).
    expect(describeLlamaModel(metadata(34, {}), "m.gguf").slidingWindow).toBeUndefined();
    const custom = describeLlamaModel(
      metadata(8, {
        "gemma3.attention.sliding_window": { type: "uint32", value: 512 },
        "gemma3.attention.sliding_window_pattern": { type: "uint32", value: 4 },
        "gemma3.rope.freq_base_swa": { type: "float32", value: 20000 },
        "gemma3.final_logit_softcapping": { type: "float32", value: 30 },
      }),
      "m.gguf",
    );
    expect(custom.slidingWindow).toEqual({
      size: 512,
      localLayers: [true, true, true, false, true, true, true, false],
      ropeBase: 20000,
    });
    expect(custom.finalLogitSoftCap).toBe(30);
    expect(() =>
      describeLlamaModel(
        metadata(8, { "gemma3.attention.sliding_window_pattern": { type: "uint32", value: 0 } }),
        "m.gguf",
      ),
    ).toThrow("gemma3.attention.sliding_window_pattern = 0 is not an integer >= 1");
  });

  it("refuses a Gemma model whose classifier is not its token embedding", () => {
    const weights = generateTinyModel({ ...gemma2Spec, tiedEmbeddings: false }, 5);
    expect(() => writeLlamaGguf(join(newFolder(), "g.gguf"), weights)).toThrow(
      "gemma2 ties its output to the token embedding",
    );
  });
});

describe("refused architectures and RoPE variants", () => {
  const metadataOf = (architecture: string, extra: Record<string, unknown> = {}) =>
    parseGguf(
      encodeGguf({
        metadata: {
          "general.architecture": { type: "string", value: architecture },
          [`${architecture}.block_count`]: { type: "uint32", value: 1 },
          [`${architecture}.embedding_length`]: { type: "uint32", value: 8 },
          [`${architecture}.feed_forward_length`]: { type: "uint32", value: 16 },
          [`${architecture}.attention.head_count`]: { type: "uint32", value: 2 },
          [`${architecture}.context_length`]: { type: "uint32", value: 32 },
          [`${architecture}.attention.layer_norm_rms_epsilon`]: { type: "float32", value: 1e-6 },
          [`${architecture}.vocab_size`]: { type: "uint32", value: 10 },
          ...(extra as Record<string, { type: "uint32"; value: number }>),
        },
        tensors: [],
      }),
    );

  it.each([
    ["qwen2vl", "M-RoPE"],
    ["bloom", "ALiBi"],
    ["mpt", "ALiBi"],
  ])("refuses %s in one line naming the architecture and why (%s)", (architecture, why) => {
    const attempt = () => describeLlamaModel(metadataOf(architecture), "m.gguf");
    expect(attempt).toThrow(UnsupportedArchitectureError);
    expect(attempt).toThrow(`m.gguf: architecture "${architecture}" is not supported: `);
    expect(attempt).toThrow(why);
    expect(attempt).toThrow("(supported: llama, mistral, qwen2, phi3, gemma, gemma2, gemma3)");
    expect(attempt).not.toThrow("\n");
  });

  it("refuses M-RoPE sections and a sliding window shorter than the trained context, naming the key", () => {
    const sections = metadataOf("qwen2", {
      "qwen2.rope.dimension_sections": { type: "uint32", value: 16 },
    });
    expect(() => describeLlamaModel(sections, "m.gguf")).toThrow(
      "m.gguf: qwen2.rope.dimension_sections is set: M-RoPE",
    );
    const window = metadataOf("llama", { "llama.attention.sliding_window": { type: "uint32", value: 16 } });
    expect(() => describeLlamaModel(window, "m.gguf")).toThrow(
      "m.gguf: llama.attention.sliding_window = 16 is below the trained context 32: sliding-window attention is not supported with Self-Extend",
    );
    // A window as long as the trained context changes nothing: such files (some Mistral exports) run.
    const wide = metadataOf("mistral", { "mistral.attention.sliding_window": { type: "uint32", value: 32 } });
    expect(describeLlamaModel(wide, "m.gguf").architecture).toBe("mistral");
  });

  it("runs a phi3 file whatever its sliding_window says, as llama.cpp does (Phi-3-mini-4k's converter writes 2047)", () => {
    const phi = metadataOf("phi3", { "phi3.attention.sliding_window": { type: "uint32", value: 16 } });
    const description = describeLlamaModel(phi, "m.gguf");
    expect(description.architecture).toBe("phi3");
    expect(description.slidingWindow).toBeUndefined();
  });
});

describe("llama2.c import", () => {
  it("imports stories260K losslessly with a complete SentencePiece vocabulary", () => {
    const folder = newFolder();
    const outPath = join(folder, "stories260K.gguf");
    importLlama2c({ checkpointPath, tokenizerPath, outPath });
    const reference = readLlama2cCheckpoint(checkpointPath);
    const loaded = loadLlamaWeights(outPath);
    expect(loaded.description).toEqual({ ...reference.description, name: "stories260K" });
    expectSameWeights(loaded, reference);
    expect(loaded.output).toBe(loaded.tokenEmbedding);

    const gguf = readGguf(outPath);
    try {
      expect(gguf.metadata.get("tokenizer.ggml.model")).toBe("llama");
      const tokens = gguf.metadata.get("tokenizer.ggml.tokens") as string[];
      expect(tokens.slice(0, 4)).toEqual(["<unk>", "<s>", "</s>", "<0x00>"]);
      expect(tokens).toContain("\u2581a");
      expect(tokens.some((token) => token.includes(" "))).toBe(false);
      const types = gguf.metadata.get("tokenizer.ggml.token_type") as Int32Array;
      expect([types[0], types[1], types[2], types[3], types[258], types[259]]).toEqual([2, 3, 3, 6, 6, 1]);
      expect(gguf.metadata.get("tokenizer.ggml.bos_token_id")).toBe(1);
      expect(gguf.metadata.get("tokenizer.ggml.eos_token_id")).toBe(2);
      expect(gguf.metadata.get("tokenizer.ggml.unknown_token_id")).toBe(0);
      expect(gguf.metadata.get("tokenizer.ggml.add_bos_token")).toBe(true);
      expect(gguf.metadata.get("tokenizer.ggml.add_eos_token")).toBe(false);
      expect(gguf.tensors.every((tensor) => tensor.typeName === "F32")).toBe(true);
      const tokenizer = tokenizerFromGguf(gguf);
      const text = "Once upon a time, there was a little girl named Lily.";
      expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
    } finally {
      gguf.close();
    }
  });

  it("gives byte-identical files when run twice", () => {
    const folder = newFolder();
    importLlama2c({ checkpointPath, tokenizerPath, outPath: join(folder, "a.gguf") });
    importLlama2c({ checkpointPath, tokenizerPath, outPath: join(folder, "b.gguf") });
    expect(readFileSync(join(folder, "a.gguf")).equals(readFileSync(join(folder, "b.gguf")))).toBe(true);
    expect(readdirSync(folder).sort()).toEqual(["a.gguf", "b.gguf"]);
  });

  it("refuses to overwrite an input", () => {
    const folder = newFolder();
    const copy = join(folder, "model.bin");
    copyFileSync(checkpointPath, copy);
    expect(() => importLlama2c({ checkpointPath: copy, tokenizerPath, outPath: copy })).toThrow(
      /refusing to overwrite/,
    );
    expect(() =>
      importLlama2c({ checkpointPath: copy, tokenizerPath, outPath: join(folder, ".", "model.bin") }),
    ).toThrow(ModelFileError);
    expect(readFileSync(copy).equals(readFileSync(checkpointPath))).toBe(true);
  });

  it("loadLlamaWeights still reads llama2.c checkpoints", () => {
    expectSameWeights(loadLlamaWeights(checkpointPath), readLlama2cCheckpoint(checkpointPath));
  });
});

describe("Q/K permutation for interleaved RoPE", () => {
  const headCount = 3;
  const headSize = 8;
  const inputSize = 5;
  const random = createRandom(11);
  const weights = Float32Array.from({ length: headCount * headSize * inputSize }, () => random() - 0.5);

  it("has an inverse", () => {
    const permuted = permuteForInterleavedRope(weights, headCount, inputSize);
    expect(permuted).not.toEqual(weights);
    expect(unpermuteFromInterleavedRope(permuted, headCount, inputSize)).toEqual(weights);
    expect(
      permuteForInterleavedRope(
        unpermuteFromInterleavedRope(weights, headCount, inputSize),
        headCount,
        inputSize,
      ),
    ).toEqual(weights);
  });

  it("maps half-split RoPE on the original rows to interleaved RoPE on the permuted rows", () => {
    const x = Float64Array.from({ length: inputSize }, () => random() - 0.5);
    const project = (matrix: Float32Array) => {
      const result = new Float64Array(headCount * headSize);
      for (let row = 0; row < result.length; row++) {
        for (let column = 0; column < inputSize; column++)
          result[row] += matrix[row * inputSize + column] * x[column];
      }
      return result;
    };
    const halfSplit = createRopeTable({ layout: "half-split", headSize }, 64);
    const interleaved = createRopeTable({ layout: "interleaved", headSize }, 64);
    for (const position of [0, 1, 7, 63]) {
      const original = project(weights);
      const permuted = project(permuteForInterleavedRope(weights, headCount, inputSize));
      for (let head = 0; head < headCount; head++) {
        applyRope(original, head * headSize, position, halfSplit);
        applyRope(permuted, head * headSize, position, interleaved);
      }
      const expected = permuteForInterleavedRope(Float32Array.from(original), headCount, 1);
      for (let index = 0; index < permuted.length; index++)
        expect(permuted[index]).toBeCloseTo(expected[index], 6);
    }
  });
});

describe("error messages about metadata values", () => {
  it("stay short however large the value in the file", () => {
    const gguf = parseGguf(
      encodeGguf({
        metadata: {
          "general.architecture": { type: "string", value: "x".repeat(1_000_000) },
          "tokenizer.ggml.model": { type: "array", itemType: "int32", value: new Int32Array(1_000_000) },
        },
        tensors: [],
      }),
      "big-values.gguf",
    );
    expect(() => describeLlamaModel(gguf)).toThrow(
      /^big-values\.gguf: architecture "x{60}"\.\.\. \(1000000 characters\) is not supported \(supported: .*\)$/,
    );
    expect(() => vocabularyFromGguf(gguf)).toThrow(
      /^big-values\.gguf: tokenizer\.ggml\.model is \[0, 0, 0, 0, 0, 0, 0, 0, \.\.\. \(1000000 items\)\]; the supported vocabularies are "llama"/,
    );
  });
});
