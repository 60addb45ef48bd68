/** stories260K and its tokenizer from ../shared, loaded once per test file. */
import { readFileSync } from "node:fs";
import type { SelfExtendModelV1 } from "@self-extend/core";
import { createTokenizer, readLlama2cTokenizer, type Tokenizer } from "@self-extend/models/node";
import { createReferenceBackend, tokenizeAsOneDocument } from "@self-extend/reference";
import { sharedModelPaths } from "@self-extend/test-fixtures";

let tokenizer: Tokenizer | undefined;
let tokens: number[] | undefined;
let model: Promise<SelfExtendModelV1> | undefined;

export function stories260KTokenizer(): Tokenizer {
  tokenizer ??= createTokenizer(readLlama2cTokenizer(sharedModelPaths.tokenizer));
  return tokenizer;
}

/** The validation text as one document (126,048 tokens). */
export function validationTokens(): number[] {
  tokens ??= tokenizeAsOneDocument(
    readFileSync(sharedModelPaths.validationText, "utf8"),
    stories260KTokenizer(),
  );
  return tokens;
}

export function stories260KModel(): Promise<SelfExtendModelV1> {
  model ??= createReferenceBackend().loadModel({ path: sharedModelPaths.stories260K });
  return model;
}
