/**
 * An oracle run (tools/gemma-models, tools/phi3-models) replayed on llama.cpp through this adapter,
 * compared in log-probabilities, so raw logits (native bridge) and node-llama-cpp's log-softmax rows
 * compare alike.
 */
import { logSoftmaxRows } from "@self-extend/conformance";
import { type GemmaOracleRun, replayOracleRun } from "../../reference/test/gemma-oracle.js";
import { createSelfExtendContext } from "../src/index.js";

export function largestLogProbabilityDifference(
  oracleRows: ArrayLike<number>,
  rows: ArrayLike<number>,
  vocabularySize: number,
): number {
  const expected = logSoftmaxRows(oracleRows, vocabularySize);
  const actual = logSoftmaxRows(rows, vocabularySize);
  let largest = 0;
  for (let index = 0; index < expected.length; index++) {
    largest = Math.max(largest, Math.abs(expected[index] - actual[index]));
  }
  return largest;
}

export async function runOracleOnLlamaCpp(
  path: string,
  run: GemmaOracleRun,
  mode: "exact" | "fast-prefill" = "exact",
) {
  const vocabularySize = run.logits[Object.keys(run.logits)[0]].length;
  const context = await createSelfExtendContext({
    model: path,
    groupSize: run.group_size,
    neighborWindow: run.neighbor_window,
    contextSize: run.prompt_tokens.length + run.greedy_tokens.length,
    threads: 1,
    mode,
  });
  try {
    const { rows, positions, lastStep, greedy } = await replayOracleRun(context, run);
    const oracleRows = Float64Array.from(positions.flatMap((position) => run.logits[String(position)]));
    const largest = largestLogProbabilityDifference(oracleRows, rows, vocabularySize);
    const lastStepLargest = largestLogProbabilityDifference(
      run.last_greedy_step.logits,
      lastStep,
      vocabularySize,
    );
    return { largest, lastStepLargest, greedy };
  } finally {
    await context.dispose();
  }
}
