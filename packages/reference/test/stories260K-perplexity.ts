/**
 * The spec's stories260K perplexity table (self-extend-spec.md, "Numbers to reproduce") and the
 * token stream it was measured on: TinyStories validation text as one document, 65,536 scored
 * positions (65,537 tokens: the last position predicts one more).
 */
import { readFileSync } from "node:fs";
import type { SelfExtendConfig } from "@self-extend/core";
import { createTokenizer, readLlama2cTokenizer } from "@self-extend/models/node";
import { tokenizeAsOneDocument } from "../src/index.js";
import { sharedModelPaths } from "./shared-data.js";

export interface PerplexityTableRow {
  readonly contextSize: number;
  readonly selfExtend: SelfExtendConfig;
  readonly perplexity: number;
  /** Perplexity on window positions 1024-2047, where the spec gives it. */
  readonly farPerplexity?: number;
}

const plain = { groupSize: 1, neighborWindow: 1 };

export const spec260KTable: readonly PerplexityTableRow[] = [
  { contextSize: 512, selfExtend: plain, perplexity: 3.721 },
  { contextSize: 1024, selfExtend: plain, perplexity: 3.834 },
  { contextSize: 1024, selfExtend: { groupSize: 4, neighborWindow: 256 }, perplexity: 3.673 },
  { contextSize: 2048, selfExtend: plain, perplexity: 4.324, farPerplexity: 4.935 },
  {
    contextSize: 2048,
    selfExtend: { groupSize: 8, neighborWindow: 256 },
    perplexity: 3.658,
    farPerplexity: 3.701,
  },
  {
    contextSize: 2048,
    selfExtend: { groupSize: 8, neighborWindow: 128 },
    perplexity: 3.692,
    farPerplexity: 3.749,
  },
  {
    contextSize: 2048,
    selfExtend: { groupSize: 8, neighborWindow: 64 },
    perplexity: 3.844,
    farPerplexity: 3.929,
  },
  {
    contextSize: 2048,
    selfExtend: { groupSize: 4, neighborWindow: 256 },
    perplexity: 3.79,
    farPerplexity: 3.974,
  },
];

export const scoredPositions = 65_536;

export function rowLabel(row: PerplexityTableRow): string {
  const { groupSize, neighborWindow } = row.selfExtend;
  return `${row.contextSize} ${groupSize === 1 ? "plain" : `Self-Extend W=${neighborWindow} G=${groupSize}`}`;
}

let cachedTokens: number[] | undefined;

/** The whole validation text as one document: 126,048 tokens, BOS first. */
export function validationTokens(): number[] {
  if (cachedTokens === undefined) {
    const tokenizer = createTokenizer(readLlama2cTokenizer(sharedModelPaths.tokenizer));
    cachedTokens = tokenizeAsOneDocument(readFileSync(sharedModelPaths.validationText, "utf8"), tokenizer);
  }
  return cachedTokens;
}
