import { readFileSync } from "node:fs";
import { join } from "node:path";
import { logSoftmaxRows } from "@self-extend/conformance";
import type { SelfExtendSessionV1 } from "@self-extend/core";
import { argmax } from "@self-extend/core";

// The suite's own row-wise log-softmax (float64), so tests compare exactly as the suite does.
export { logSoftmaxRows };

export interface Tolerances {
  readonly logSoftmaxFloor: number;
  readonly exact: Record<string, { maxLogSoftmaxDifference: number; greedyAgreement: number }>;
  readonly "fast-prefill": Record<
    string,
    { maxPromptLogSoftmaxDifference: number; maxDecodeLogSoftmaxDifference: number }
  >;
  readonly plainAgainstNodeLlamaCpp: { maxLogitDifference: number };
  readonly stories260K: {
    exact: Record<
      string,
      { maxLogSoftmaxDifference: number; maxLogitDifference: number; greedyAgreement: number }
    >;
  };
}

export const tolerances: Tolerances = JSON.parse(
  readFileSync(join(import.meta.dirname, "..", "conformance", "tolerances.json"), "utf8"),
);

/** Deterministic pseudo-random tokens (an LCG), never BOS-dependent. */
export function randomTokens(count: number, vocabularySize: number, seed = 7): number[] {
  let state = seed;
  return Array.from({ length: count }, () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % vocabularySize;
  });
}

/**
 * Largest |difference| where the reference log-probability is above the floor, and argmax
 * agreement. The candidate may be raw logits or log-softmax rows: it is normalised here (the
 * log-softmax of log-softmax rows is themselves). The floor matters only for rows read through
 * node-llama-cpp's sampler (no native bridge), whose float32 probabilities underflow.
 */
export function compareLogSoftmax(
  reference: Float64Array,
  candidateRows: ArrayLike<number>,
  vocabularySize: number,
  floor = tolerances.logSoftmaxFloor,
): { maxDifference: number; agreement: number } {
  const candidate = logSoftmaxRows(candidateRows, vocabularySize);
  let maxDifference = 0;
  let agreeing = 0;
  const rows = reference.length / vocabularySize;
  for (let row = 0; row < rows; row++) {
    const offset = row * vocabularySize;
    for (let v = 0; v < vocabularySize; v++) {
      if (reference[offset + v] < floor) continue;
      maxDifference = Math.max(maxDifference, Math.abs(reference[offset + v] - candidate[offset + v]));
    }
    if (argmax(reference, offset, vocabularySize) === argmax(candidate, offset, vocabularySize)) agreeing++;
  }
  return { maxDifference, agreement: rows === 0 ? 1 : agreeing / rows };
}

/** Greedy decoding of `count` tokens after `prompt`, collecting every decode row too. */
export async function greedyRun(
  session: SelfExtendSessionV1,
  prompt: readonly number[],
  count: number,
): Promise<{ tokens: number[]; promptRows: Float32Array; decodeRows: Float32Array[] }> {
  const evaluation = await session.evaluate(prompt, { logits: "all" });
  const vocabularySize = evaluation.vocabularySize;
  let row = evaluation.logits.subarray((prompt.length - 1) * vocabularySize);
  const tokens: number[] = [];
  const decodeRows: Float32Array[] = [];
  for (let step = 0; step < count; step++) {
    const token = argmax(row);
    tokens.push(token);
    if (step === count - 1) break;
    row = await session.decode(token);
    decodeRows.push(row);
  }
  return { tokens, promptRows: evaluation.logits, decodeRows };
}

export function concatenate(rows: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(rows.reduce((total, row) => total + row.length, 0));
  let offset = 0;
  for (const row of rows) {
    out.set(row, offset);
    offset += row.length;
  }
  return out;
}

/** Largest |a - b| over two equally long arrays (raw logits against raw logits). */
export function largestDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} against ${b.length}`);
  let largest = 0;
  for (let index = 0; index < a.length; index++) largest = Math.max(largest, Math.abs(a[index] - b[index]));
  return largest;
}
