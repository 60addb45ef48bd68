/**
 * Model files on disk (Node only): Llama weights from a GGUF file or a llama2.c checkpoint, the
 * llama2.c tokenizer file, and a llama.cpp-loadable GGUF written atomically.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync } from "node:fs";
import { join } from "node:path";
import { readGguf, writeGguf } from "./gguf-file.js";
import { hasGgufMagic } from "./gguf-reader.js";
import { llamaGgufContents, llamaWeightsFromGguf, type WriteLlamaGgufOptions } from "./llama-gguf.js";
import type { LlamaWeights } from "./llama-model.js";
import { parseLlama2cCheckpoint } from "./llama2c-checkpoint.js";
import { parseLlama2cTokenizer } from "./llama2c-tokenizer.js";
import { ModelFileError } from "./model-file-error.js";
import {
  fullDepthRealShapeSpec,
  generateTinyModel,
  gpuScaleModelSpec,
  realShapeModelSpecs,
  type TinyModelSpec,
} from "./tiny-model.js";
import type { Vocabulary } from "./tokenizer.js";

/** Loads a GGUF file or a llama2.c checkpoint, told apart by the GGUF magic. */
export function loadLlamaWeights(path: string): LlamaWeights {
  const head = new Uint8Array(4);
  let length = 0;
  try {
    const descriptor = openSync(path, "r");
    try {
      length = readSync(descriptor, head, 0, 4, 0);
    } finally {
      closeSync(descriptor);
    }
  } catch (error) {
    throw new ModelFileError(
      path,
      `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
  if (length === 4 && hasGgufMagic(head)) {
    const gguf = readGguf(path);
    try {
      return llamaWeightsFromGguf(gguf);
    } finally {
      gguf.close();
    }
  }
  return readLlama2cCheckpoint(path);
}

/** Writes a complete, deterministic llama.cpp-loadable GGUF (tied output: no output.weight). */
export function writeLlamaGguf(
  path: string,
  weights: LlamaWeights,
  options: WriteLlamaGgufOptions = {},
): void {
  writeGguf(path, llamaGgufContents(weights, options, path));
}

export function readLlama2cCheckpoint(path: string): LlamaWeights {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new ModelFileError(
      path,
      `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
  return parseLlama2cCheckpoint(bytes, path);
}

export function readLlama2cTokenizer(path: string): Vocabulary {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new ModelFileError(
      path,
      `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
  return parseLlama2cTokenizer(bytes, path);
}

/**
 * Writes, once, the model every adapter's GPU scale benchmark runs (gpuScaleModelSpec, seed 1,
 * float16 matrices) into `folder`, and returns its path; an existing file is reused.
 */
export function writeGpuScaleModel(
  folder: string,
  trainedContext: number,
  smoke = false,
  log: (line: string) => void = console.log,
): string {
  const path = join(folder, `llama-3.2-1b-shape-L${trainedContext}${smoke ? "-smoke" : ""}-f16.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(folder, { recursive: true });
  let start = performance.now();
  const weights = generateTinyModel(gpuScaleModelSpec(trainedContext, smoke), 1);
  log(`generated weights in ${((performance.now() - start) / 1000).toFixed(1)} s`);
  start = performance.now();
  writeLlamaGguf(path, weights, { tensorType: "F16" });
  log(`wrote ${path} in ${((performance.now() - start) / 1000).toFixed(1)} s`);
  return path;
}

/**
 * Writes, once, the real-shape model `name` (realShapeModelSpecs, seed 1, float32) into `folder`,
 * and returns its path; an existing file is reused.
 */
export function writeRealShapeModel(
  folder: string,
  name: string,
  log: (line: string) => void = console.log,
): string {
  const spec = realShapeModelSpecs.find((entry) => entry.name === name);
  if (spec === undefined) {
    throw new RangeError(
      `no real-shape model named ${JSON.stringify(name)} (known: ${realShapeModelSpecs.map((entry) => entry.name).join(", ")})`,
    );
  }
  return writeSpecOnce(folder, spec, log);
}

/**
 * Writes, once, the real-shape model `name` at its released model's full depth with trained context
 * `trainedContext` (fullDepthRealShapeSpec, seed 1, float32) into `folder`, and returns its path;
 * an existing file is reused. Llama-3.2-1B's is 4.9 GB: the GPU machine's model, not the CPU's.
 */
export function writeFullDepthRealShapeModel(
  folder: string,
  name: string,
  trainedContext: number,
  log: (line: string) => void = console.log,
): string {
  return writeSpecOnce(folder, fullDepthRealShapeSpec(name, trainedContext), log);
}

/** `<folder>/<spec name>.gguf`, generated (seed 1, float32) and written unless it exists. */
function writeSpecOnce(folder: string, spec: TinyModelSpec, log: (line: string) => void): string {
  const path = join(folder, `${spec.name}.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(folder, { recursive: true });
  const start = performance.now();
  writeLlamaGguf(path, generateTinyModel(spec, 1));
  log(`wrote ${path} in ${((performance.now() - start) / 1000).toFixed(1)} s`);
  return path;
}
