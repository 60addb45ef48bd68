/**
 * Deterministic tiny random Llama-family models for conformance tests: every shape and RoPE
 * variant the adapters must handle, small enough to run anywhere. Only integer arithmetic and
 * float32 rounding are used (no Math.sin/log), so the same seed gives the same bits on every engine.
 */
import { createRandom } from "@self-extend/core";
import {
  type Gemma2Settings,
  type Gemma3Settings,
  gemma2Defaults,
  gemma3Features,
  gemmaFeatures,
  ropeLayoutOfArchitecture,
} from "./llama-description.js";
import type { LlamaArchitecture, LlamaLayerWeights, LlamaWeights } from "./llama-model.js";

export interface TinyModelSpec {
  readonly name: string;
  readonly architecture: LlamaArchitecture;
  readonly layerCount: number;
  /** Width of the residual stream; headCount * headSize unless set (Gemma 7B: 3072 with 16 x 256 heads). */
  readonly embeddingSize?: number;
  readonly headCount: number;
  readonly kvHeadCount: number;
  readonly headSize: number;
  readonly feedForwardSize: number;
  readonly vocabularySize: number;
  readonly trainedContext: number;
  readonly ropeBase: number;
  readonly hasQkvBias: boolean;
  /** Output projection shares the token embedding. */
  readonly tiedEmbeddings?: boolean;
  /**
   * Standard deviation of the token embedding's entries (default 1, the grid's). A tied LM head
   * gives logits of standard deviation about this times sqrt(embedding size): at real widths (896 to
   * 3072) the default makes every row one-hot (logits in the hundreds), which leaves a
   * log-probability comparison nothing to compare; real-shape models set about 3 / sqrt(width).
   */
  readonly embeddingStandardDeviation?: number;
  /** Llama 3.1-style rope scaling, written as a `rope_freqs.weight` tensor. */
  readonly llama3RopeScaling?: Llama3RopeScaling;
  /** gemma2: llama.cpp's defaults (50, 30, 4096, 2) unless set; small caps make them bite in tests. */
  readonly gemma2?: Partial<Gemma2Settings>;
  /** gemma3 (required for it): window, pattern, the local layers' RoPE base, final soft-cap (0: none). */
  readonly gemma3?: Gemma3Settings;
  /** Linear RoPE scaling of the (global) layers; 1 when absent. */
  readonly ropeLinearScalingFactor?: number;
}

/** Hugging Face's `rope_scaling` with `rope_type: "llama3"` (Llama 3.1/3.2: 32, 1, 4, 8192). */
export interface Llama3RopeScaling {
  readonly factor: number;
  readonly lowFrequencyFactor: number;
  readonly highFrequencyFactor: number;
  readonly originalContext: number;
}

/**
 * The per-pair divisors llama.cpp's converter writes as `rope_freqs.weight` for Llama 3.1+ rope
 * scaling: 1 for wavelengths shorter than originalContext / highFrequencyFactor, `factor` for those
 * longer than originalContext / lowFrequencyFactor, and a smooth blend between. Rounded to 2^-16 so
 * an engine's last-bit difference in `**` cannot change the generated file.
 */
export function llama3RopeFrequencyFactors(
  rotaryDimension: number,
  base: number,
  scaling: Llama3RopeScaling,
): number[] {
  const { factor, lowFrequencyFactor, highFrequencyFactor, originalContext } = scaling;
  const lowFrequencyWavelength = originalContext / lowFrequencyFactor;
  const highFrequencyWavelength = originalContext / highFrequencyFactor;
  return Array.from({ length: rotaryDimension / 2 }, (_, pair) => {
    const wavelength = 2 * Math.PI * base ** ((2 * pair) / rotaryDimension);
    let divisor: number;
    if (wavelength < highFrequencyWavelength) divisor = 1;
    else if (wavelength > lowFrequencyWavelength) divisor = factor;
    else {
      const smooth =
        (originalContext / wavelength - lowFrequencyFactor) / (highFrequencyFactor - lowFrequencyFactor);
      divisor = 1 / ((1 - smooth) / factor + smooth);
    }
    return Math.fround(Math.round(divisor * 65536) / 65536);
  });
}

export function generateTinyModel(spec: TinyModelSpec, seed: number): LlamaWeights {
  const random = createRandom(seed);
  const embeddingSize = spec.embeddingSize ?? spec.headCount * spec.headSize;
  const queryRows = spec.headCount * spec.headSize;
  const kvRows = spec.kvHeadCount * spec.headSize;
  // Uniform on [-a, a] has variance a^2 / 3; a = sqrt(3 / fanIn) gives variance 1 / fanIn.
  const uniform = (count: number, limit: number) =>
    Float32Array.from({ length: count }, () => (2 * random() - 1) * limit);
  const matrix = (rows: number, fanIn: number) => uniform(rows * fanIn, Math.sqrt(3 / fanIn));
  const norm = (count: number) => Float32Array.from({ length: count }, () => 1 + 0.2 * (random() - 0.5));

  const tokenEmbedding = uniform(
    spec.vocabularySize * embeddingSize,
    Math.sqrt(3) * (spec.embeddingStandardDeviation ?? 1),
  );
  const layers: LlamaLayerWeights[] = Array.from({ length: spec.layerCount }, () => {
    const attentionNorm = norm(embeddingSize);
    const query = matrix(queryRows, embeddingSize);
    const key = matrix(kvRows, embeddingSize);
    const value = matrix(kvRows, embeddingSize);
    const biases = spec.hasQkvBias
      ? { queryBias: uniform(queryRows, 0.1), keyBias: uniform(kvRows, 0.1), valueBias: uniform(kvRows, 0.1) }
      : {};
    const output = matrix(embeddingSize, queryRows);
    const feedForwardNorm = norm(embeddingSize);
    const gate = matrix(spec.feedForwardSize, embeddingSize);
    const up = matrix(spec.feedForwardSize, embeddingSize);
    const down = matrix(embeddingSize, spec.feedForwardSize);
    const postNorms =
      spec.architecture === "gemma2" || spec.architecture === "gemma3"
        ? { postAttentionNorm: norm(embeddingSize), postFeedForwardNorm: norm(embeddingSize) }
        : {};
    const headNorms =
      spec.architecture === "gemma3" ? { queryNorm: norm(spec.headSize), keyNorm: norm(spec.headSize) } : {};
    return {
      attentionNorm,
      query,
      key,
      value,
      ...biases,
      output,
      feedForwardNorm,
      gate,
      up,
      down,
      ...postNorms,
      ...headNorms,
    };
  });
  const outputNorm = norm(embeddingSize);
  const output = spec.tiedEmbeddings ? tokenEmbedding : matrix(spec.vocabularySize, embeddingSize);
  return {
    description: {
      architecture: spec.architecture,
      name: spec.name,
      layerCount: spec.layerCount,
      headCount: spec.headCount,
      kvHeadCount: spec.kvHeadCount,
      headSize: spec.headSize,
      embeddingSize,
      feedForwardSize: spec.feedForwardSize,
      normEpsilon: 1e-5,
      vocabularySize: spec.vocabularySize,
      trainedContext: spec.trainedContext,
      ropeBase: spec.ropeBase,
      ropeLayout: ropeLayoutOfArchitecture[spec.architecture],
      rotaryDimension: spec.headSize,
      ropeLinearScalingFactor: spec.ropeLinearScalingFactor ?? 1,
      ...(spec.llama3RopeScaling === undefined
        ? {}
        : {
            ropeFrequencyFactors: llama3RopeFrequencyFactors(
              spec.headSize,
              spec.ropeBase,
              spec.llama3RopeScaling,
            ),
          }),
      hasQkvBias: spec.hasQkvBias,
      ...(spec.architecture === "gemma" || spec.architecture === "gemma2"
        ? gemmaFeatures(
            spec.architecture,
            {
              layerCount: spec.layerCount,
              embeddingSize,
              headCount: spec.headCount,
              headSize: spec.headSize,
            },
            { ...gemma2Defaults, ...spec.gemma2 },
          )
        : {}),
      ...(spec.architecture === "gemma3"
        ? gemma3Features(
            {
              layerCount: spec.layerCount,
              embeddingSize,
              headCount: spec.headCount,
              headSize: spec.headSize,
            },
            spec.gemma3 ?? {
              slidingWindowSize: 0,
              slidingWindowPattern: 6,
              localRopeBase: 10000,
              finalLogitSoftCap: 0,
            },
          )
        : {}),
    },
    tokenEmbedding,
    outputNorm,
    output,
    layers,
  };
}

/**
 * The conformance grid: head sizes 8..64, GQA ratios 1, 2 and 4, interleaved (llama, mistral) and
 * half-split (qwen2) RoPE, bases 1e4 and 1e6, q/k/v biases on and off, trained contexts 64..256,
 * vocabularies 64..256, one or two layers.
 */
export const tinyModelGrid: readonly TinyModelSpec[] = [
  {
    name: "llama-h8-mha",
    architecture: "llama",
    layerCount: 1,
    headCount: 4,
    kvHeadCount: 4,
    headSize: 8,
    feedForwardSize: 48,
    vocabularySize: 64,
    trainedContext: 64,
    ropeBase: 10000,
    hasQkvBias: false,
  },
  {
    name: "llama-h16-gqa2",
    architecture: "llama",
    layerCount: 2,
    headCount: 4,
    kvHeadCount: 2,
    headSize: 16,
    feedForwardSize: 96,
    vocabularySize: 128,
    trainedContext: 128,
    ropeBase: 10000,
    hasQkvBias: false,
    tiedEmbeddings: true,
  },
  {
    name: "llama-h32-gqa4-base1e6",
    architecture: "llama",
    layerCount: 1,
    headCount: 4,
    kvHeadCount: 1,
    headSize: 32,
    feedForwardSize: 160,
    vocabularySize: 96,
    trainedContext: 256,
    ropeBase: 1e6,
    hasQkvBias: false,
  },
  {
    name: "mistral-h64-gqa2",
    architecture: "mistral",
    layerCount: 1,
    headCount: 2,
    kvHeadCount: 1,
    headSize: 64,
    feedForwardSize: 192,
    vocabularySize: 64,
    trainedContext: 128,
    ropeBase: 10000,
    hasQkvBias: false,
  },
  {
    // Llama-3.2-1B's attention layout (head 64, 4 query heads per KV head, base 5e5, llama3
    // rope_freqs) at CPU size; the blend region sits inside the trained context so the factors change
    // the output. Untied, unlike the real model: a tiny tied model's logits are dominated by each
    // token's own embedding (x . x), so nearly every distribution is one-hot and hides attention.
    name: "llama3-h64-gqa4-rope-freqs",
    architecture: "llama",
    layerCount: 1,
    headCount: 4,
    kvHeadCount: 1,
    headSize: 64,
    feedForwardSize: 192,
    vocabularySize: 128,
    trainedContext: 128,
    ropeBase: 500000,
    hasQkvBias: false,
    llama3RopeScaling: { factor: 32, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContext: 128 },
  },
  {
    // Phi-3-mini's layout (multi-head attention, fused QKV and gate/up, NEOX RoPE) at CPU size. Not
    // named "phi3": llama.cpp then looks up Phi-3's own special tokens, which a synthetic vocabulary lacks.
    name: "phi-h32-mha-fused",
    architecture: "phi3",
    layerCount: 2,
    headCount: 4,
    kvHeadCount: 4,
    headSize: 32,
    feedForwardSize: 128,
    vocabularySize: 128,
    trainedContext: 128,
    ropeBase: 10000,
    hasQkvBias: false,
  },
  {
    name: "qwen2-h8-gqa2-bias-base1e6",
    architecture: "qwen2",
    layerCount: 1,
    headCount: 4,
    kvHeadCount: 2,
    headSize: 8,
    feedForwardSize: 64,
    vocabularySize: 256,
    trainedContext: 64,
    ropeBase: 1e6,
    hasQkvBias: true,
  },
  {
    name: "qwen2-h16-mha-bias",
    architecture: "qwen2",
    layerCount: 2,
    headCount: 2,
    kvHeadCount: 2,
    headSize: 16,
    feedForwardSize: 64,
    vocabularySize: 128,
    trainedContext: 128,
    ropeBase: 10000,
    hasQkvBias: true,
    tiedEmbeddings: true,
  },
  {
    name: "qwen2-h32-gqa4-nobias-base1e6",
    architecture: "qwen2",
    layerCount: 1,
    headCount: 8,
    kvHeadCount: 2,
    headSize: 32,
    feedForwardSize: 256,
    vocabularySize: 96,
    trainedContext: 256,
    ropeBase: 1e6,
    hasQkvBias: false,
  },
  {
    name: "qwen2-h64-gqa4-bias",
    architecture: "qwen2",
    layerCount: 2,
    headCount: 4,
    kvHeadCount: 1,
    headSize: 64,
    feedForwardSize: 256,
    vocabularySize: 128,
    trainedContext: 256,
    ropeBase: 1e6,
    hasQkvBias: true,
  },
  {
    // Gemma 7B's shape at CPU size: heads wider than the residual stream (4 x 32 = 128 > 64),
    // scaled embeddings, GeGLU, tied classifier (llama.cpp's Gemma always ties it).
    name: "gemma-h32-gqa2-wide-heads",
    architecture: "gemma",
    layerCount: 2,
    embeddingSize: 64,
    headCount: 4,
    kvHeadCount: 2,
    headSize: 32,
    feedForwardSize: 128,
    vocabularySize: 128,
    trainedContext: 64,
    ropeBase: 10000,
    hasQkvBias: false,
    tiedEmbeddings: true,
  },
  {
    // Gemma 2: local, global, local layers (pattern 2) with a window below L, caps small enough to
    // bite, post-norms.
    name: "gemma2-h16-gqa2-window40",
    architecture: "gemma2",
    layerCount: 3,
    headCount: 4,
    kvHeadCount: 2,
    headSize: 16,
    feedForwardSize: 128,
    vocabularySize: 128,
    trainedContext: 64,
    ropeBase: 10000,
    hasQkvBias: false,
    tiedEmbeddings: true,
    gemma2: {
      attentionLogitSoftCap: 5,
      finalLogitSoftCap: 15,
      slidingWindowSize: 40,
      slidingWindowPattern: 2,
    },
  },
  {
    // Gemma 3: local, local, global (pattern 3), per-head q/k norms, local layers at their own RoPE
    // base (1e4), the global one at 1e5 with linear scaling 2. The window (8) is at most every W the
    // cases use, so llama.cpp runs every case too (W < window is the converter-file tests' job).
    name: "gemma3-h16-gqa2-window8",
    architecture: "gemma3",
    layerCount: 3,
    headCount: 4,
    kvHeadCount: 2,
    headSize: 16,
    feedForwardSize: 128,
    vocabularySize: 128,
    trainedContext: 64,
    ropeBase: 100000,
    ropeLinearScalingFactor: 2,
    hasQkvBias: false,
    tiedEmbeddings: true,
    gemma3: { slidingWindowSize: 8, slidingWindowPattern: 3, localRopeBase: 10000, finalLogitSoftCap: 0 },
  },
];

/**
 * The real widths of the models users bring, each at one layer (two for Gemma 2: a local and a
 * global one) and a trained context of 64 so the conformance suite runs them on a CPU: real
 * vocabulary sizes, embedding widths, head counts and sizes, key/value sharing, feed-forward
 * widths, biases, tying and RoPE bases (from each model's Hugging Face config). Random weights,
 * tied embeddings of standard deviation 3 / sqrt(width) so logits stay in a range where the logits
 * tier compares more than the top token. Run them with `self-extend conformance --model`; written
 * by `writeRealShapeModel` (Node entry). Not in the grid: each file is 0.4 to 2.4 GB of float32.
 */
export const realShapeModelSpecs: readonly TinyModelSpec[] = [
  {
    // meta-llama/Llama-3.2-1B: llama3 rope scaling 32 / 1 / 4 / 8192 as rope_freqs.
    name: "llama-3.2-1b-widths",
    architecture: "llama",
    layerCount: 1,
    headCount: 32,
    kvHeadCount: 8,
    headSize: 64,
    feedForwardSize: 8192,
    vocabularySize: 128256,
    trainedContext: 64,
    ropeBase: 500000,
    hasQkvBias: false,
    tiedEmbeddings: true,
    embeddingStandardDeviation: 3 / Math.sqrt(2048),
    llama3RopeScaling: { factor: 32, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContext: 8192 },
  },
  {
    // Qwen/Qwen2.5-0.5B: q/k/v biases, 14 query heads over 2 key/value heads.
    name: "qwen2.5-0.5b-widths",
    architecture: "qwen2",
    layerCount: 1,
    headCount: 14,
    kvHeadCount: 2,
    headSize: 64,
    feedForwardSize: 4864,
    vocabularySize: 151936,
    trainedContext: 64,
    ropeBase: 1000000,
    hasQkvBias: true,
    tiedEmbeddings: true,
    embeddingStandardDeviation: 3 / Math.sqrt(896),
  },
  {
    // google/gemma-2-2b: heads of 256 (8 x 256 = 2048 < width 2304), soft-caps 50 / 30; the window
    // (4096 there) scaled with the context to 16, so the local layer's window bites.
    name: "gemma-2-2b-widths",
    architecture: "gemma2",
    layerCount: 2,
    embeddingSize: 2304,
    headCount: 8,
    kvHeadCount: 4,
    headSize: 256,
    feedForwardSize: 9216,
    vocabularySize: 256000,
    trainedContext: 64,
    ropeBase: 10000,
    hasQkvBias: false,
    tiedEmbeddings: true,
    embeddingStandardDeviation: 3 / Math.sqrt(2304),
    gemma2: {
      attentionLogitSoftCap: 50,
      finalLogitSoftCap: 30,
      slidingWindowSize: 16,
      slidingWindowPattern: 2,
    },
  },
  {
    // microsoft/Phi-3-mini-4k-instruct: 32 heads of 96, no key/value sharing, untied LM head. Not
    // named "phi-3"/"phi3": llama.cpp then looks up Phi-3's own special tokens (`<|endoftext|>`) by
    // the model's name, which the synthetic vocabulary lacks, and fails to load the file.
    name: "phi-mini-4k-widths",
    architecture: "phi3",
    layerCount: 1,
    headCount: 32,
    kvHeadCount: 32,
    headSize: 96,
    feedForwardSize: 8192,
    vocabularySize: 32064,
    trainedContext: 64,
    ropeBase: 10000,
    hasQkvBias: false,
    tiedEmbeddings: false,
  },
];

/** The layer counts of the released models whose widths realShapeModelSpecs take. */
const publishedLayerCounts: Readonly<Record<string, number>> = {
  "llama-3.2-1b-widths": 16,
  "qwen2.5-0.5b-widths": 24,
  "gemma-2-2b-widths": 26,
  "phi-mini-4k-widths": 32,
};

/**
 * A real-shape model at its released model's full depth with trained context `trainedContext`:
 * the full-shape models of the GPU runs (issue 16), random weights as every spec here. Named
 * `<name>-full-depth-L<trainedContext>` (the name keeps what llama.cpp keys on by name, e.g. no
 * "phi-3").
 */
export function fullDepthRealShapeSpec(name: string, trainedContext: number): TinyModelSpec {
  const spec = realShapeModelSpecs.find((entry) => entry.name === name);
  if (spec === undefined) {
    throw new RangeError(
      `no real-shape model named ${JSON.stringify(name)} (known: ${realShapeModelSpecs.map((entry) => entry.name).join(", ")})`,
    );
  }
  if (!Number.isSafeInteger(trainedContext) || trainedContext < 2) {
    throw new RangeError(`trained context ${trainedContext} is invalid: must be an integer >= 2`);
  }
  return {
    ...spec,
    name: `${name}-full-depth-L${trainedContext}`,
    layerCount: publishedLayerCounts[name],
    trainedContext,
  };
}

/**
 * Llama-3.2-1B's real layout (32 query / 8 KV heads of 64, tied embeddings, base 5e5, llama3 rope
 * scaling 32/1/4/8192, vocabulary 128256) with layers and feed-forward width scaled down for CPU.
 * Not in the grid: its 128k x 2048 embedding alone is 1 GiB of float32.
 */
export const llama32OneBLayout: TinyModelSpec = {
  name: "llama3.2-1b-layout",
  architecture: "llama",
  layerCount: 2,
  headCount: 32,
  kvHeadCount: 8,
  headSize: 64,
  feedForwardSize: 1024,
  vocabularySize: 128256,
  trainedContext: 131072,
  ropeBase: 500000,
  hasQkvBias: false,
  tiedEmbeddings: true,
  llama3RopeScaling: { factor: 32, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContext: 8192 },
};

/**
 * Llama-3.2-1B's layout at full depth (16 layers, 32 query and 8 key/value heads of 64, feed-forward
 * 8192, vocabulary 128256, tied embeddings, RoPE base 500000; no rope_freqs) with trained context
 * `trainedContext`: the model of the GPU scale benchmarks of every adapter, so their numbers are for
 * the same file. `smoke` shrinks it to 1 layer and 1024 tokens, to try a script on a CPU first.
 */
export function gpuScaleModelSpec(trainedContext: number, smoke = false): TinyModelSpec {
  return {
    name: "llama-3.2-1b-shape",
    architecture: "llama",
    layerCount: smoke ? 1 : 16,
    headCount: 32,
    kvHeadCount: 8,
    headSize: 64,
    feedForwardSize: 8192,
    vocabularySize: smoke ? 1024 : 128256,
    trainedContext,
    ropeBase: 500000,
    hasQkvBias: false,
    tiedEmbeddings: true,
  };
}

export function tinyModelSpec(name: string): TinyModelSpec {
  const spec = tinyModelGrid.find((entry) => entry.name === name);
  if (spec === undefined) {
    throw new RangeError(
      `no tiny model named ${JSON.stringify(name)} (known: ${tinyModelGrid.map((entry) => entry.name).join(", ")})`,
    );
  }
  return spec;
}
