/**
 * Turns `--model` / `--tokenizer` into what every backend takes: a GGUF path, plus a tokenizer and
 * the model's shape. A llama2.c checkpoint is imported once into a GGUF in the per-user cache
 * folder (llama2c-cache.ts), so all backends read the same file. With no `--model`, the project's
 * own demo model (@self-extend/demo-model) is used: it ships with the package, so a fresh clone
 * needs no flags.
 */
import { closeSync, existsSync, openSync, readSync } from "node:fs";
import { resolve } from "node:path";
import {
  requireTokenizer,
  type SelfExtendBackendV1,
  type SelfExtendModelV1,
  type TokenizerV1,
} from "@self-extend/core";
import { demoModelPath } from "@self-extend/demo-model";
import {
  createTokenizer,
  describeLlamaModel,
  isOnnxExportPath,
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

export interface OpenedModel {
  /** Loads the model on the backend (GGUF: only now, after the flags were checked against the header). */
  readonly load: () => Promise<SelfExtendModelV1>;
  readonly tokenizer: TokenizerV1;
  readonly trainedContext: number;
  readonly vocabularySize: number;
  /** What --model named, as the backend loaded it. */
  readonly modelPath: string;
}

/**
 * Opens `--model` on the chosen backend with the tokenizer the text goes through: a GGUF or
 * llama2.c model as resolveModelInput reads it, or an ONNX export (onnxruntime only) with its own
 * tokenizer.json.
 */
export async function openModel(
  backend: SelfExtendBackendV1,
  options: { model?: string; tokenizer?: string },
): Promise<OpenedModel> {
  if (options.model !== undefined && isOnnxExportPath(resolve(options.model))) {
    const modelPath = resolve(options.model);
    if (!existsSync(modelPath)) throw new CliUsageError(`--model ${options.model} does not exist`);
    if (backend.name !== "onnxruntime") {
      throw new CliUsageError(
        `--model ${options.model} is an ONNX export; it runs on --backend onnxruntime only (${backend.name} reads GGUF files)`,
      );
    }
    if (options.tokenizer !== undefined) {
      throw new CliUsageError("--tokenizer does not apply to an ONNX export: its tokenizer.json is used");
    }
    // The export's shape and tokenizer come from the loaded model (config.json, tokenizer.json).
    const model = await backend.loadModel({ path: modelPath });
    return {
      load: async () => model,
      tokenizer: requireTokenizer(model),
      trainedContext: model.info.trainedContext,
      vocabularySize: model.info.vocabularySize,
      modelPath,
    };
  }
  const input = resolveModelInput(options);
  return {
    load: () => backend.loadModel({ path: input.ggufPath }),
    tokenizer: input.tokenizer,
    trainedContext: input.trainedContext,
    vocabularySize: input.vocabularySize,
    modelPath: input.ggufPath,
  };
}
