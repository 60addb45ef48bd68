/**
 * What adapters' own tests need beyond the suite's cases, written once: the largest difference of
 * two arrays, seeded token sequences, and a greedy run that keeps every row it saw.
 */
import { argmax, createRandom, type SelfExtendSessionV1 } from "@self-extend/core";

/** Largest |a - b| over two equally long arrays; NaN anywhere counts as infinite. */
export function largestDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`arrays of length ${a.length} and ${b.length} differ`);
  let largest = 0;
  for (let index = 0; index < a.length; index++) {
    const difference = Math.abs(a[index] - b[index]);
    largest = Number.isNaN(difference) ? Number.POSITIVE_INFINITY : Math.max(largest, difference);
  }
  return largest;
}

/** `count` tokens drawn uniformly from [0, vocabularySize) by core's seeded generator. */
export function seededTokens(count: number, vocabularySize: number, seed: number): number[] {
  const random = createRandom(seed);
  return Array.from({ length: count }, () => Math.floor(random() * vocabularySize));
}

export interface GreedyRun {
  /** The `count` greedy tokens after the prompt (the first from the prompt's last row). */
  readonly tokens: number[];
  /** The prompt's rows, one per prompt token. */
  readonly promptRows: Float32Array;
  /** The rows of the decodes between greedy tokens (count - 1 of them). */
  readonly decodeRows: Float32Array[];
}

/** Evaluates `prompt` and decodes `count` greedy tokens, keeping every row for comparisons. */
export async function greedyRun(
  session: SelfExtendSessionV1,
  prompt: readonly number[],
  count: number,
): Promise<GreedyRun> {
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

/** The rows one after the other, in one array. */
export function concatenateRows(rows: readonly Float32Array[]): Float32Array {
  const joined = new Float32Array(rows.reduce((total, row) => total + row.length, 0));
  let offset = 0;
  for (const row of rows) {
    joined.set(row, offset);
    offset += row.length;
  }
  return joined;
}
