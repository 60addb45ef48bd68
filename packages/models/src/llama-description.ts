/**
 * Reads a LlamaModelDescription from GGUF metadata (`<arch>.*` keys as llama.cpp names them).
 * llama and mistral weights are stored for interleaved-pair RoPE (llama.cpp's converter permutes
 * Q/K rows; see rope-permutation.ts); qwen2 keeps Hugging Face's half-split layout.
 */
import type { RopeLayout } from "@self-extend/core";
import type { GgufFile } from "./gguf-reader.js";
import {
  type LlamaArchitecture,
  type LlamaModelDescription,
  type LongRope,
  supportedArchitectures,
} from "./llama-model.js";
import { listForMessage, valueForMessage } from "./message-text.js";
import { ModelFileError, UnsupportedArchitectureError } from "./model-file-error.js";

const alibi = "it has ALiBi attention biases and no RoPE, and Self-Extend remaps RoPE positions";

/** Why architectures people commonly bring are refused, for the error message. */
const unsupportedArchitectureReasons: Readonly<Record<string, string>> = {
  qwen2vl:
    "it uses M-RoPE (rope.dimension_sections), whose per-section positions Self-Extend does not define",
  bloom: alibi,
  mpt: alibi,
  baichuan: alibi,
};

/** GGUF tensor of Llama 3's per-pair RoPE frequency factors (llama.cpp's LLM_TENSOR_ROPE_FREQS). */
export const ropeFrequenciesTensor = "rope_freqs.weight";

export const ropeLayoutOfArchitecture: Readonly<Record<LlamaArchitecture, RopeLayout>> = {
  llama: "interleaved",
  mistral: "interleaved",
  qwen2: "half-split",
  // Phi-3's converter stores Q/K unpermuted and llama.cpp rotates them NEOX-style.
  phi3: "half-split",
  // Gemma's converter keeps Hugging Face's rows too (llama.cpp: LLAMA_ROPE_TYPE_NEOX).
  gemma: "half-split",
  gemma2: "half-split",
  gemma3: "half-split",
};

/**
 * float32 metadata (1e-5 stored as 9.99999974e-6) read back as the shortest decimal with the same
 * float32 value, so a description survives a write/read round trip unchanged.
 */
function shortestFloat32(value: number): number {
  if (Math.fround(value) !== value) return value;
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(value.toPrecision(digits));
    if (Math.fround(candidate) === value) return candidate;
  }
  return value;
}

/**
 * A tensor of per-pair RoPE frequency divisors: Llama 3.1+ `rope_freqs.weight`, LongRoPE's two.
 * Absent, or every factor 1: undefined (plain rotation); anything malformed is refused rather than
 * run silently wrong.
 */
function readRopeFactorTensor(
  gguf: GgufFile,
  name: string,
  rotaryDimension: number,
  fail: (message: string) => never,
): number[] | undefined {
  const info = gguf.tensor(name);
  if (info === undefined) return undefined;
  if (info.shape.length !== 1 || info.shape[0] !== rotaryDimension / 2) {
    fail(
      `tensor ${name} has shape [${info.shape.join(", ")}], expected [${rotaryDimension / 2}] (rope.dimension_count / 2)`,
    );
  }
  const factors = Array.from(gguf.readTensor(name));
  const invalid = factors.findIndex((factor) => !(factor > 0) || !Number.isFinite(factor));
  if (invalid >= 0) {
    fail(`tensor ${name}[${invalid}] = ${factors[invalid]} is not a finite number > 0`);
  }
  return factors.every((factor) => factor === 1) ? undefined : factors;
}

/** GGUF tensors of LongRoPE's factors (llama.cpp's LLM_TENSOR_ROPE_FACTORS_SHORT / _LONG). */
export const longRopeTensors = {
  short: "rope_factors_short.weight",
  long: "rope_factors_long.weight",
} as const;

/**
 * LongRoPE as llama.cpp's Phi-3 converter writes it: both factor tensors, the original context
 * (`rope.scaling.original_context_length`) and the attention factor (`rope.scaling.attn_factor`,
 * default 1). The attention factor multiplies cos and sin, i.e. only rotated dimensions: with a
 * partial rotary dimension it is not a score scale, and such a file is refused.
 */
function readLongRope(
  gguf: GgufFile,
  arch: string,
  shape: { rotaryDimension: number; headSize: number; trainedContext: number },
  number: (key: string, fallback?: number) => number,
  fail: (message: string) => never,
): LongRope | undefined {
  const present = [longRopeTensors.short, longRopeTensors.long].filter(
    (name) => gguf.tensor(name) !== undefined,
  );
  if (present.length === 0) return undefined;
  if (present.length === 1) {
    fail(
      `has tensor ${present[0]} without ${present[0] === longRopeTensors.short ? longRopeTensors.long : longRopeTensors.short}: LongRoPE needs both factor sets`,
    );
  }
  const { rotaryDimension, headSize, trainedContext } = shape;
  const plain = Array.from({ length: rotaryDimension / 2 }, () => 1);
  const shortFactors = readRopeFactorTensor(gguf, longRopeTensors.short, rotaryDimension, fail) ?? plain;
  const longFactors = readRopeFactorTensor(gguf, longRopeTensors.long, rotaryDimension, fail) ?? plain;
  const originalContextKey = `${arch}.rope.scaling.original_context_length`;
  if (gguf.metadata.get(originalContextKey) === undefined) {
    fail(`has LongRoPE factors but no ${originalContextKey}: LongRoPE picks its factors by it`);
  }
  const originalContext = number("rope.scaling.original_context_length");
  if (!Number.isInteger(originalContext) || originalContext < 1 || originalContext > trainedContext) {
    fail(
      `${originalContextKey} ${originalContext} must be an integer from 1 to the trained context ${trainedContext}`,
    );
  }
  const attentionFactor = shortestFloat32(number("rope.scaling.attn_factor", 1));
  if (!(attentionFactor > 0) || !Number.isFinite(attentionFactor)) {
    fail(`${arch}.rope.scaling.attn_factor ${attentionFactor} must be a finite number > 0`);
  }
  if (attentionFactor !== 1 && rotaryDimension !== headSize) {
    fail(
      `${arch}.rope.scaling.attn_factor ${attentionFactor} with rope.dimension_count ${rotaryDimension} < head size ${headSize}: a LongRoPE attention factor on partial rotary is not supported`,
    );
  }
  return { originalContext, shortFactors, longFactors, attentionFactor };
}

export function describeLlamaModel(gguf: GgufFile, path: string = gguf.path): LlamaModelDescription {
  const fail = (message: string): never => {
    throw new ModelFileError(path, message);
  };
  const architecture = gguf.metadata.get("general.architecture");
  if (typeof architecture !== "string") fail("general.architecture is missing or not a string");
  if (!supportedArchitectures.includes(architecture as LlamaArchitecture)) {
    throw new UnsupportedArchitectureError(
      path,
      architecture as string,
      supportedArchitectures,
      unsupportedArchitectureReasons[architecture as string],
    );
  }
  const arch = architecture as LlamaArchitecture;

  const number = (key: string, fallback?: number): number => {
    const value = gguf.metadata.get(`${arch}.${key}`);
    if (value === undefined) {
      if (fallback === undefined) fail(`metadata key ${arch}.${key} is missing`);
      return fallback as number;
    }
    if (typeof value === "number" || typeof value === "bigint") return Number(value);
    // Some converters store per-layer values; we run models whose layers all agree.
    if (ArrayBuffer.isView(value)) {
      const values = Array.from(value as unknown as ArrayLike<number | bigint>, Number);
      if (values.length > 0 && values.every((item) => item === values[0])) return values[0];
      fail(`metadata key ${arch}.${key} differs between layers (${listForMessage(values)}); not supported`);
    }
    return fail(`metadata key ${arch}.${key} is ${typeof value}, expected a number`);
  };
  const count = (key: string, fallback?: number): number => {
    const value = number(key, fallback);
    if (!Number.isInteger(value) || value < 1)
      fail(`metadata key ${arch}.${key} = ${value} is not a positive integer`);
    return value;
  };

  const layerCount = count("block_count");
  const embeddingSize = count("embedding_length");
  const feedForwardSize = count("feed_forward_length");
  const headCount = count("attention.head_count");
  const kvHeadCount = count("attention.head_count_kv", headCount);
  if (headCount % kvHeadCount !== 0)
    fail(`head_count ${headCount} is not a multiple of head_count_kv ${kvHeadCount}`);
  const headSize = count("attention.key_length", embeddingSize / headCount);
  const rotaryDimension = count("rope.dimension_count", headSize);
  if (rotaryDimension > headSize || rotaryDimension % 2 !== 0) {
    fail(`rope.dimension_count ${rotaryDimension} must be even and at most the head size ${headSize}`);
  }
  const trainedContext = count("context_length");
  const normEpsilon = shortestFloat32(number("attention.layer_norm_rms_epsilon"));
  const ropeBase = shortestFloat32(number("rope.freq_base", 10000));

  let ropeLinearScalingFactor = 1;
  const scalingType = gguf.metadata.get(`${arch}.rope.scaling.type`);
  if (scalingType === "linear") {
    ropeLinearScalingFactor = shortestFloat32(number("rope.scaling.factor", 1));
  } else if (scalingType !== undefined && scalingType !== "none") {
    fail(
      `${arch}.rope.scaling.type ${valueForMessage(scalingType)} is not supported (only "linear" and "none")`,
    );
  } else if (scalingType === undefined) {
    // Older files spell linear scaling as rope.scale_linear.
    ropeLinearScalingFactor = shortestFloat32(number("rope.scale_linear", 1));
  }

  const ropeFrequencyFactors = readRopeFactorTensor(gguf, ropeFrequenciesTensor, rotaryDimension, fail);
  const longRope = readLongRope(gguf, arch, { rotaryDimension, headSize, trainedContext }, number, fail);
  if (longRope !== undefined && ropeFrequencyFactors !== undefined) {
    fail(
      `has both ${ropeFrequenciesTensor} and LongRoPE factors (${longRopeTensors.long}): llama.cpp would use ${ropeFrequenciesTensor} alone; refused as ambiguous`,
    );
  }
  if (gguf.metadata.get(`${arch}.rope.dimension_sections`) !== undefined) {
    fail(
      `${arch}.rope.dimension_sections is set: M-RoPE (multimodal sections) is not supported, only 1-D RoPE positions`,
    );
  }
  const gemmaFeatures =
    arch === "gemma" || arch === "gemma2" || arch === "gemma3"
      ? readGemmaFeatures(arch, { layerCount, embeddingSize, headCount, headSize, ropeBase }, number, fail)
      : {};
  // A model trained with a sliding window never attended past it; Self-Extend's grouped attention
  // shows every earlier token, so such a file would run but not as trained. llama.cpp's llama arch
  // ignores the key; we refuse rather than run it silently differently from its training. (Gemma 2
  // says which layers are local; those keep their window, see readGemmaFeatures. Phi-3's converter
  // writes the Hugging Face config's window, 2047 for Phi-3-mini-4k, and llama.cpp runs phi3 with
  // full attention whatever it says (src/models/phi3.cpp: "Phi SWA is currently disabled"); we run
  // the file as llama.cpp does, so every real Phi-3 GGUF loads and means what it means there.)
  const slidingWindow = gguf.metadata.get(`${arch}.attention.sliding_window`);
  if (
    arch !== "gemma2" &&
    arch !== "gemma3" &&
    arch !== "phi3" &&
    slidingWindow !== undefined &&
    Number(slidingWindow) > 0 &&
    Number(slidingWindow) < trainedContext
  ) {
    fail(
      `${arch}.attention.sliding_window = ${Number(slidingWindow)} is below the trained context ${trainedContext}: sliding-window attention is not supported with Self-Extend`,
    );
  }

  const tokens = gguf.metadata.get("tokenizer.ggml.tokens");
  const embedding = gguf.tensor("token_embd.weight");
  const vocabularySize =
    gguf.metadata.get(`${arch}.vocab_size`) !== undefined
      ? count("vocab_size")
      : Array.isArray(tokens)
        ? tokens.length
        : (gguf.tensor("output.weight")?.dimensions[1] ??
          embedding?.dimensions[1] ??
          fail("cannot tell the vocabulary size"));

  const name = gguf.metadata.get("general.name");
  return {
    architecture: arch,
    ...(typeof name === "string" ? { name } : {}),
    layerCount,
    headCount,
    kvHeadCount,
    headSize,
    embeddingSize,
    feedForwardSize,
    normEpsilon,
    vocabularySize,
    trainedContext,
    ropeBase,
    ropeLayout: ropeLayoutOfArchitecture[arch],
    rotaryDimension,
    ropeLinearScalingFactor,
    ...(ropeFrequencyFactors === undefined ? {} : { ropeFrequencyFactors }),
    hasQkvBias: gguf.tensor("blk.0.attn_q.bias") !== undefined,
    ...gemmaFeatures,
    ...(longRope === undefined
      ? {}
      : {
          longRope,
          // cos and sin times the factor on both query and key: every score times its square.
          attentionScale: Math.fround(
            (longRope.attentionFactor * longRope.attentionFactor) / Math.sqrt(headSize),
          ),
        }),
  };
}

export type GemmaFeatures = Pick<
  LlamaModelDescription,
  | "embeddingScale"
  | "feedForwardActivation"
  | "attentionScale"
  | "attentionLogitSoftCap"
  | "finalLogitSoftCap"
  | "hasPostNorms"
  | "hasQueryKeyNorms"
  | "slidingWindow"
>;

/** What a Gemma 2 file may set (llama.cpp's defaults are the values every Gemma 2 was trained with). */
export interface Gemma2Settings {
  readonly attentionLogitSoftCap: number;
  readonly finalLogitSoftCap: number;
  readonly slidingWindowSize: number;
  readonly slidingWindowPattern: number;
}

export const gemma2Defaults: Gemma2Settings = {
  attentionLogitSoftCap: 50,
  finalLogitSoftCap: 30,
  slidingWindowSize: 4096,
  slidingWindowPattern: 2,
};

/**
 * Gemma and Gemma 2 as llama.cpp builds them (src/models/gemma.cpp, gemma2.cpp), for the GGUF
 * reader and the tiny-model generator alike. Their norm weights need nothing here: llama.cpp's
 * converter stores Gemma's (1 + w) already added.
 */
export function gemmaFeatures(
  architecture: "gemma" | "gemma2",
  shape: { layerCount: number; embeddingSize: number; headCount: number; headSize: number },
  settings: Gemma2Settings = gemma2Defaults,
): GemmaFeatures {
  const common: GemmaFeatures = {
    embeddingScale: Math.fround(Math.sqrt(shape.embeddingSize)),
    feedForwardActivation: "gelu-tanh",
  };
  if (architecture === "gemma") return common;
  const { slidingWindowPattern: pattern } = settings;
  return {
    ...common,
    // llama.cpp scales the 27B (46 layers) by the model width per head, as gemma_pytorch does.
    attentionScale: Math.fround(
      shape.layerCount === 46
        ? 1 / Math.sqrt(Math.floor(shape.embeddingSize / shape.headCount))
        : 1 / Math.sqrt(shape.headSize),
    ),
    attentionLogitSoftCap: settings.attentionLogitSoftCap,
    finalLogitSoftCap: settings.finalLogitSoftCap,
    hasPostNorms: true,
    // llama.cpp's set_swa_pattern: layer l is local unless it is the last of each group of `pattern`.
    slidingWindow: {
      size: settings.slidingWindowSize,
      localLayers: Array.from({ length: shape.layerCount }, (_, layer) => layer % pattern < pattern - 1),
    },
  };
}

/** What a Gemma 3 file may set (llama.cpp's defaults: no window, pattern 6, local base 10000, no final cap). */
export interface Gemma3Settings {
  /** 0: no local layers (every layer global). */
  readonly slidingWindowSize: number;
  readonly slidingWindowPattern: number;
  readonly localRopeBase: number;
  /** 0: none. */
  readonly finalLogitSoftCap: number;
}

/**
 * Gemma 3 as llama.cpp builds it (src/models/gemma3.cpp): Gemma 2's scaled embeddings, GeGLU and
 * post-norms, plus an RMSNorm over each query and key head before RoPE; no attention soft-cap, and a
 * final one only where the file sets it. Local layers (when the file has a sliding window) follow
 * the pattern (default 6: five local, then one global) and rotate with their own base
 * (`rope.freq_base_swa`, default 10000) and no scaling; global layers with `rope.freq_base` and the
 * file's linear scaling. Score scale 1/sqrt(head_dim), the 27B's (62 layers) 1/sqrt(n_embd/n_head).
 * For the GGUF reader and the tiny-model generator alike.
 */
export function gemma3Features(
  shape: { layerCount: number; embeddingSize: number; headCount: number; headSize: number },
  settings: Gemma3Settings,
): GemmaFeatures {
  const {
    slidingWindowSize: windowSize,
    slidingWindowPattern: pattern,
    localRopeBase,
    finalLogitSoftCap,
  } = settings;
  return {
    embeddingScale: Math.fround(Math.sqrt(shape.embeddingSize)),
    feedForwardActivation: "gelu-tanh",
    attentionScale: Math.fround(
      shape.layerCount === 62
        ? 1 / Math.sqrt(Math.floor(shape.embeddingSize / shape.headCount))
        : 1 / Math.sqrt(shape.headSize),
    ),
    ...(finalLogitSoftCap > 0 ? { finalLogitSoftCap } : {}),
    hasPostNorms: true,
    hasQueryKeyNorms: true,
    // No window (or 0): every layer global, as llama.cpp's LLAMA_SWA_TYPE_NONE.
    ...(windowSize > 0
      ? {
          slidingWindow: {
            size: windowSize,
            localLayers: Array.from(
              { length: shape.layerCount },
              (_, layer) => layer % pattern < pattern - 1,
            ),
            ropeBase: localRopeBase,
          },
        }
      : {}),
  };
}

function readGemma3Features(
  shape: { layerCount: number; embeddingSize: number; headCount: number; headSize: number },
  number: (key: string, fallback?: number) => number,
  fail: (message: string) => never,
): GemmaFeatures {
  const finalLogitSoftCap = number("final_logit_softcapping", 0);
  if (!(finalLogitSoftCap >= 0)) {
    fail(`metadata key gemma3.final_logit_softcapping = ${finalLogitSoftCap} is not a number >= 0`);
  }
  const slidingWindowSize = number("attention.sliding_window", 0);
  if (!Number.isInteger(slidingWindowSize) || slidingWindowSize < 0) {
    fail(`metadata key gemma3.attention.sliding_window = ${slidingWindowSize} is not an integer >= 0`);
  }
  const slidingWindowPattern = number("attention.sliding_window_pattern", 6);
  if (!Number.isInteger(slidingWindowPattern) || slidingWindowPattern < 1) {
    fail(
      `metadata key gemma3.attention.sliding_window_pattern = ${slidingWindowPattern} is not an integer >= 1`,
    );
  }
  const localRopeBase = number("rope.freq_base_swa", 10000);
  if (!(localRopeBase > 0))
    fail(`metadata key gemma3.rope.freq_base_swa = ${localRopeBase} is not a number > 0`);
  return gemma3Features(shape, { slidingWindowSize, slidingWindowPattern, localRopeBase, finalLogitSoftCap });
}

function readGemmaFeatures(
  arch: "gemma" | "gemma2" | "gemma3",
  shape: { layerCount: number; embeddingSize: number; headCount: number; headSize: number; ropeBase: number },
  number: (key: string, fallback?: number) => number,
  fail: (message: string) => never,
): GemmaFeatures {
  if (arch === "gemma") return gemmaFeatures(arch, shape);
  if (arch === "gemma3") {
    return readGemma3Features(shape, number, fail);
  }
  const settings: Gemma2Settings = {
    attentionLogitSoftCap: number("attn_logit_softcapping", gemma2Defaults.attentionLogitSoftCap),
    finalLogitSoftCap: number("final_logit_softcapping", gemma2Defaults.finalLogitSoftCap),
    slidingWindowSize: number("attention.sliding_window", gemma2Defaults.slidingWindowSize),
    slidingWindowPattern: number("attention.sliding_window_pattern", gemma2Defaults.slidingWindowPattern),
  };
  for (const [key, value] of [
    ["attn_logit_softcapping", settings.attentionLogitSoftCap],
    ["final_logit_softcapping", settings.finalLogitSoftCap],
  ] as const) {
    if (!(value > 0)) fail(`metadata key ${arch}.${key} = ${value} is not a number > 0`);
  }
  for (const [key, value] of [
    ["attention.sliding_window", settings.slidingWindowSize],
    ["attention.sliding_window_pattern", settings.slidingWindowPattern],
  ] as const) {
    if (!Number.isInteger(value) || value < 1) {
      fail(`metadata key ${arch}.${key} = ${value} is not a positive integer`);
    }
  }
  const localBase = number("rope.freq_base_swa", shape.ropeBase);
  if (localBase !== shape.ropeBase) {
    fail(
      `${arch}.rope.freq_base_swa = ${localBase} differs from rope.freq_base = ${shape.ropeBase}: a second RoPE base for local layers is not supported`,
    );
  }
  return gemmaFeatures(arch, shape, settings);
}
