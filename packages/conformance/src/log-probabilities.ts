/**
 * Logits are compared as log-probabilities: runtimes may add a constant per position (or return
 * log-softmax directly, as llama.cpp's public API does), and log-softmax removes it while keeping
 * every difference that changes what the model predicts.
 */
export function logSoftmaxRows(logits: ArrayLike<number>, vocabularySize: number): Float64Array {
  const rows = logits.length / vocabularySize;
  const result = new Float64Array(logits.length);
  for (let row = 0; row < rows; row++) {
    const offset = row * vocabularySize;
    let largest = Number.NEGATIVE_INFINITY;
    for (let index = 0; index < vocabularySize; index++) largest = Math.max(largest, logits[offset + index]);
    let total = 0;
    for (let index = 0; index < vocabularySize; index++) total += Math.exp(logits[offset + index] - largest);
    const logTotal = largest + Math.log(total);
    for (let index = 0; index < vocabularySize; index++)
      result[offset + index] = logits[offset + index] - logTotal;
  }
  return result;
}

export interface LogitComparison {
  /** Largest |a - b| over every position and vocabulary entry. */
  readonly largestDifference: number;
  /** Largest |a - b| at each position. */
  readonly differenceByPosition: Float64Array;
  /** Positions where some entry broke atol + rtol * |expected|. */
  readonly failingPositions: number[];
  /** Positions whose argmax differs. */
  readonly argmaxMismatches: number[];
  /**
   * Positions where more than one entry was compared. Where only the top entry clears the floor
   * (a one-hot row: log-probability 0 on both sides) no difference can show.
   */
  readonly informativePositions: number;
}

export function compareLogProbabilities(
  actual: Float64Array,
  expected: Float64Array,
  vocabularySize: number,
  tolerance: { atol: number; rtol: number; logProbabilityFloor?: number },
): LogitComparison {
  const floor = tolerance.logProbabilityFloor ?? Number.NEGATIVE_INFINITY;
  const rows = expected.length / vocabularySize;
  const differenceByPosition = new Float64Array(rows);
  const failingPositions: number[] = [];
  const argmaxMismatches: number[] = [];
  let largestDifference = 0;
  let informativePositions = 0;
  for (let row = 0; row < rows; row++) {
    const offset = row * vocabularySize;
    let rowLargest = 0;
    let compared = 0;
    let failed = false;
    let actualBest = 0;
    let expectedBest = 0;
    for (let index = 0; index < vocabularySize; index++) {
      const a = actual[offset + index];
      const e = expected[offset + index];
      // Both below the floor: float32 underflow territory, not compared.
      if (e < floor && !(a >= floor)) continue;
      compared++;
      // NaN compares false everywhere: treat it as an infinite difference so it can never pass.
      const difference = Number.isNaN(a) || Number.isNaN(e) ? Number.POSITIVE_INFINITY : Math.abs(a - e);
      if (difference > rowLargest) rowLargest = difference;
      if (!(difference <= tolerance.atol + tolerance.rtol * Math.abs(e))) failed = true;
      if (a > actual[offset + actualBest]) actualBest = index;
      if (e > expected[offset + expectedBest]) expectedBest = index;
    }
    differenceByPosition[row] = rowLargest;
    if (compared > 1) informativePositions++;
    if (rowLargest > largestDifference) largestDifference = rowLargest;
    if (failed) failingPositions.push(row);
    if (actualBest !== expectedBest) argmaxMismatches.push(row);
  }
  return {
    largestDifference,
    differenceByPosition,
    failingPositions,
    argmaxMismatches,
    informativePositions,
  };
}

/** Index of the first token where two sequences differ, or null when equal. */
export function firstDivergence(actual: readonly number[], expected: readonly number[]): number | null {
  const length = Math.max(actual.length, expected.length);
  for (let index = 0; index < length; index++) if (actual[index] !== expected[index]) return index;
  return null;
}
