/**
 * The stories260K perplexity table of the project's spec (self-extend-spec.md, "Numbers to
 * reproduce"): TinyStories validation text as one document, the same 65,536 scored tokens for
 * every row, fp32 numbers from an independent implementation.
 */
import { largestRelativePosition, type SelfExtendConfig } from "@self-extend/core";
import type { EvaluationRun } from "./evaluation-runs.js";

export interface SpecPerplexityRow {
  readonly length: number;
  readonly selfExtend: SelfExtendConfig;
  readonly perplexity: number;
  /** Perplexity on window positions 1024-2047, where the spec gives it. */
  readonly farPerplexity?: number;
}

const plain = { groupSize: 1, neighborWindow: 1 };

export const stories260KSpecTable: readonly SpecPerplexityRow[] = [
  { length: 512, selfExtend: plain, perplexity: 3.721 },
  { length: 1024, selfExtend: plain, perplexity: 3.834 },
  { length: 1024, selfExtend: { groupSize: 4, neighborWindow: 256 }, perplexity: 3.673 },
  { length: 2048, selfExtend: plain, perplexity: 4.324, farPerplexity: 4.935 },
  {
    length: 2048,
    selfExtend: { groupSize: 8, neighborWindow: 256 },
    perplexity: 3.658,
    farPerplexity: 3.701,
  },
  {
    length: 2048,
    selfExtend: { groupSize: 8, neighborWindow: 128 },
    perplexity: 3.692,
    farPerplexity: 3.749,
  },
  { length: 2048, selfExtend: { groupSize: 8, neighborWindow: 64 }, perplexity: 3.844, farPerplexity: 3.929 },
  { length: 2048, selfExtend: { groupSize: 4, neighborWindow: 256 }, perplexity: 3.79, farPerplexity: 3.974 },
];

export const stories260KSpecScoredTokens = 65_536;

/** A spec row as an evaluation run (explicit G and W, never planned). */
export function runOfSpecRow(row: SpecPerplexityRow, trainedContext: number): EvaluationRun {
  const isPlain = row.selfExtend.groupSize === 1;
  const largest = isPlain ? row.length - 1 : largestRelativePosition(row.length, row.selfExtend);
  return {
    length: row.length,
    method: isPlain ? "plain" : "self-extend",
    selfExtend: row.selfExtend,
    planned: false,
    largestRelativePosition: largest,
    beyondTrainedContext: largest > trainedContext - 1,
  };
}
