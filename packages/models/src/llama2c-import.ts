/**
 * llama2.c checkpoint + tokenizer -> GGUF (architecture `llama`, F32, full SentencePiece vocabulary).
 * llama2.c weights already use interleaved RoPE, llama.cpp's `llama` convention, so Q/K rows are
 * written as they are. Output bytes depend only on the inputs.
 */
import { existsSync, realpathSync, statSync } from "node:fs";
import { basename, extname, resolve } from "node:path";
import { ModelFileError } from "./model-file-error.js";
import { readLlama2cCheckpoint, readLlama2cTokenizer, writeLlamaGguf } from "./model-files.js";

export interface ImportLlama2cOptions {
  readonly checkpointPath: string;
  readonly tokenizerPath: string;
  readonly outPath: string;
  /** general.name; defaults to the checkpoint's file name without extension. */
  readonly name?: string;
}

function sameFile(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true;
  if (!existsSync(a) || !existsSync(b)) return false;
  if (realpathSync(a) === realpathSync(b)) return true;
  const statA = statSync(a);
  const statB = statSync(b);
  return statA.dev === statB.dev && statA.ino === statB.ino;
}

export function importLlama2c(options: ImportLlama2cOptions): void {
  const { checkpointPath, tokenizerPath, outPath } = options;
  for (const input of [checkpointPath, tokenizerPath]) {
    if (sameFile(outPath, input)) {
      throw new ModelFileError(outPath, `is an input of the import (${input}); refusing to overwrite it`);
    }
  }
  const weights = readLlama2cCheckpoint(checkpointPath);
  const vocabulary = readLlama2cTokenizer(tokenizerPath);
  if (vocabulary.tokens.length !== weights.description.vocabularySize) {
    throw new ModelFileError(
      tokenizerPath,
      `holds ${vocabulary.tokens.length} tokens but ${checkpointPath} has a vocabulary of ${weights.description.vocabularySize}`,
    );
  }
  writeLlamaGguf(outPath, weights, {
    tensorType: "F32",
    vocabulary,
    name: options.name ?? basename(checkpointPath, extname(checkpointPath)),
  });
}
