/**
 * Turns `--model` / `--tokenizer` into what every backend takes: a GGUF path, plus a tokenizer and
 * the model's shape. A llama2.c checkpoint is imported once into a GGUF in the per-user cache
 * folder (llama2c-cache.ts), so all backends read the same file. With no `--model`, the project's
 * own demo model (@self-extend/demo-model) is used: it ships with the package, so a fresh clone
 * needs no flags.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { resolve } from "node:path";
import { demoModelPath } from "@self-extend/demo-model";
import {
  createTokenizer,
  describeLlamaModel,
  readGguf,
  readLlama2cTokenizer,
  type Tokenizer,
  tokenizerFromGguf,
} from "@self-extend/models/node";
import { CliUsageError } from "./cli-error.js";
import { requireInputFile } from "./input-paths.js";
import { cachedLlama2cGguf, defaultCacheFolder } from "./llama2c-cache.js";

export interface ModelInput {
  readonly ggufPath: string;
  readonly tokenizer: Tokenizer;
  readonly trainedContext: number;
  readonly vocabularySize: number;
  readonly architecture: string;
}

function startsWithGgufMagic(path: string): boolean {
  const descriptor = openSync(path, "r");
  try {
    const head = Buffer.alloc(4);
    readSync(descriptor, head, 0, 4, 0);
    return head.toString("latin1") === "GGUF";
  } finally {
    closeSync(descriptor);
  }
}

export function resolveModelInput(
  options: { model?: string; tokenizer?: string },
  cacheFolder = defaultCacheFolder(),
): ModelInput {
  const modelPath = resolve(options.model ?? demoModelPath);
  const tokenizerPath = options.tokenizer;
  requireInputFile("model", modelPath);
  if (tokenizerPath !== undefined) requireInputFile("tokenizer", tokenizerPath);
  let ggufPath = modelPath;
  if (!startsWithGgufMagic(modelPath)) {
    if (tokenizerPath === undefined) {
      throw new CliUsageError(
        `${modelPath} is not a GGUF file; a llama2.c checkpoint needs --tokenizer <tok.bin>`,
      );
    }
    ggufPath = cachedLlama2cGguf(modelPath, tokenizerPath, cacheFolder);
  }
  const gguf = readGguf(ggufPath);
  try {
    const description = describeLlamaModel(gguf, ggufPath);
    const tokenizer =
      tokenizerPath !== undefined && !startsWithGgufMagic(resolve(tokenizerPath))
        ? createTokenizer(readLlama2cTokenizer(tokenizerPath))
        : tokenizerFromGguf(gguf);
    // A tokenizer of another size gives ids the model cannot read or never produces: garbage text.
    const tokenizerSize = tokenizer.vocabulary.tokens.length;
    if (tokenizerSize !== description.vocabularySize) {
      throw new CliUsageError(
        `--tokenizer ${tokenizerPath} has ${tokenizerSize} tokens but the model ${modelPath} has a vocabulary of ${description.vocabularySize}; give the tokenizer the model was trained with`,
      );
    }
    return {
      ggufPath,
      tokenizer,
      trainedContext: description.trainedContext,
      vocabularySize: description.vocabularySize,
      architecture: description.architecture,
    };
  } finally {
    gguf.close();
  }
}
