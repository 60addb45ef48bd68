/**
 * Turns `--model` / `--tokenizer` into what every backend takes: a GGUF path, plus a tokenizer and
 * the model's shape. A llama2.c checkpoint is imported once into a GGUF in the cache folder (named
 * by the hash of its inputs), so all backends read the same file. With no `--model`, the project's
 * own demo model (@self-extend/demo-model) is used: it ships with the package, so a fresh clone
 * needs no flags.
 */
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { demoModelPath } from "@self-extend/demo-model";
import {
  createTokenizer,
  describeLlamaModel,
  importLlama2c,
  ModelFileError,
  readGguf,
  readLlama2cTokenizer,
  type Tokenizer,
  tokenizerFromGguf,
} from "@self-extend/models/node";
import { CliUsageError } from "./cli-error.js";

export interface ModelInput {
  readonly ggufPath: string;
  readonly tokenizer: Tokenizer;
  readonly trainedContext: number;
  readonly vocabularySize: number;
  readonly architecture: string;
}

function startsWithGgufMagic(path: string): boolean {
  if (!existsSync(path)) throw new ModelFileError(path, "does not exist");
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
  cacheFolder = join(tmpdir(), "self-extend-cli"),
): ModelInput {
  const modelPath = resolve(options.model ?? demoModelPath);
  const tokenizerPath = options.tokenizer;
  let ggufPath = modelPath;
  if (!startsWithGgufMagic(modelPath)) {
    if (tokenizerPath === undefined) {
      throw new CliUsageError(
        `${modelPath} is not a GGUF file; a llama2.c checkpoint needs --tokenizer <tok.bin>`,
      );
    }
    const hash = createHash("sha256")
      .update(readFileSync(modelPath))
      .update(readFileSync(tokenizerPath))
      .digest("hex");
    mkdirSync(cacheFolder, { recursive: true });
    ggufPath = join(cacheFolder, `llama2c-${hash.slice(0, 16)}.gguf`);
    if (!existsSync(ggufPath)) importLlama2c({ checkpointPath: modelPath, tokenizerPath, outPath: ggufPath });
  }
  const gguf = readGguf(ggufPath);
  try {
    const description = describeLlamaModel(gguf, ggufPath);
    const tokenizer =
      tokenizerPath !== undefined && !startsWithGgufMagic(resolve(tokenizerPath))
        ? createTokenizer(readLlama2cTokenizer(tokenizerPath))
        : tokenizerFromGguf(gguf);
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
