/**
 * The Gemma and Gemma 2 oracle data (tools/gemma-models): tiny random transformers models converted
 * by llama.cpp's convert_hf_to_gguf.py (fixtures/gemma/<family>.gguf), and an independent PyTorch
 * Self-Extend over the same models in float64 (fixtures/gemma/<family>-oracle.json). Also read by
 * the llama-cpp adapter's tests, by path.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { argmax, type SelfExtendSessionV1 } from "@self-extend/core";
import { fixturesFolder } from "./shared-data.js";

export const gemmaFamilies = ["gemma", "gemma2", "gemma3"] as const;
export type GemmaFamily = (typeof gemmaFamilies)[number];

/** One oracle run: a prompt, its logits at some positions, then greedy tokens. */
export interface GemmaOracleRun {
  readonly group_size: number;
  readonly neighbor_window: number;
  readonly prompt_tokens: readonly number[];
  /** Full-vocabulary logits by prompt position. */
  readonly logits: Readonly<Record<string, readonly number[]>>;
  readonly greedy_tokens: readonly number[];
  /** The logit row the last greedy token was chosen from (reached by decoding token by token). */
  readonly last_greedy_step: { readonly position: number; readonly logits: readonly number[] };
  readonly smallest_greedy_top1_top2_gap: number;
}

export interface GemmaOracle {
  readonly family: GemmaFamily;
  readonly trained_context: number;
  /** Self-Extend (G = 8, W = 32) over 4 x L tokens. */
  readonly self_extend: GemmaOracleRun;
  /** G = 1 over a prompt longer than Gemma 2's sliding window. */
  readonly plain: GemmaOracleRun;
  /** Gemma 2 and 3 only: Self-Extend with W = the sliding window (G = 8, W = 48) over 4 x L tokens. */
  readonly self_extend_window_covers_local_layers?: GemmaOracleRun;
}

export const gemmaFolder = join(fixturesFolder, "gemma");

export function gemmaModelPath(family: GemmaFamily): string {
  return join(gemmaFolder, `${family}.gguf`);
}

export function readGemmaOracle(family: GemmaFamily): GemmaOracle {
  return JSON.parse(readFileSync(join(gemmaFolder, `${family}-oracle.json`), "utf8")) as GemmaOracle;
}

/** Largest |a - b| over one row. */
export function largestRowDifference(
  candidate: ArrayLike<number>,
  offset: number,
  oracle: readonly number[],
): number {
  let largest = 0;
  for (let index = 0; index < oracle.length; index++) {
    largest = Math.max(largest, Math.abs(candidate[offset + index] - oracle[index]));
  }
  return largest;
}

/** What a session gives on an oracle run: its rows at the oracle's positions, then its own greedy run. */
export interface ReplayedOracleRun {
  /** Rows at the oracle's logit positions, in the order of `positions`. */
  readonly rows: Float32Array;
  readonly positions: readonly number[];
  readonly vocabularySize: number;
  /** The row the last greedy token was chosen from, reached by decoding one token at a time. */
  readonly lastStep: Float32Array;
  readonly greedy: number[];
  /** Tokens in the session afterwards: the last step's position + 1. */
  readonly tokenCount: number;
}

/**
 * The prompt evaluated in one block (rows at the oracle's positions), then greedy tokens decoded one
 * at a time to the oracle's count: the same replay for every adapter's oracle test.
 */
export async function replayOracleRun(
  session: Pick<SelfExtendSessionV1, "evaluate" | "decode" | "tokenCount">,
  run: GemmaOracleRun,
): Promise<ReplayedOracleRun> {
  const positions = Object.keys(run.logits).map(Number);
  const evaluation = await session.evaluate(run.prompt_tokens, { logits: positions });
  const { vocabularySize } = evaluation;
  const last = positions.indexOf(run.prompt_tokens.length - 1);
  let token = argmax(evaluation.logits, last * vocabularySize, vocabularySize);
  const greedy = [token];
  let lastStep = evaluation.logits.subarray(last * vocabularySize, (last + 1) * vocabularySize);
  while (greedy.length < run.greedy_tokens.length) {
    lastStep = await session.decode(token);
    token = argmax(lastStep, 0, vocabularySize);
    greedy.push(token);
  }
  return {
    rows: evaluation.logits,
    positions,
    vocabularySize,
    lastStep,
    greedy,
    tokenCount: session.tokenCount,
  };
}
