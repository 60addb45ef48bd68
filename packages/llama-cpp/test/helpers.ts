import {
  adapterTolerance,
  concatenateRows,
  greedyRun,
  largestDifference,
  logSoftmaxRows,
  readDeclaration,
  seededTokens,
  type Tolerance,
  type ToleranceQuery,
} from "@self-extend/conformance";
import { argmax } from "@self-extend/core";
import { conformanceDeclaration } from "../src/index.js";

// The suite's own helpers and row-wise log-softmax (float64), so tests compare exactly as the suite does.
export { concatenateRows, greedyRun, largestDifference, logSoftmaxRows, seededTokens };

const { tolerances } = readDeclaration(conformanceDeclaration);

/** The adapter's tolerance (conformance/tolerances.json, the suite's schema) for a query. */
export function tolerance(query: Omit<ToleranceQuery, "backend"> = {}): Tolerance {
  if (tolerances === undefined) throw new Error("the adapter declares no tolerances");
  return adapterTolerance(tolerances, { backend: "llama-cpp", ...query });
}

/**
 * Largest |difference| where the reference log-probability is above the tolerance's floor, and
 * argmax agreement. The candidate may be raw logits or log-softmax rows: it is normalised here
 * (the log-softmax of log-softmax rows is themselves). The floor matters only for rows read
 * through node-llama-cpp's sampler (no native bridge), whose float32 probabilities underflow.
 */
export function compareLogSoftmax(
  reference: Float64Array,
  candidateRows: ArrayLike<number>,
  vocabularySize: number,
  floor = tolerance().logProbabilityFloor ?? Number.NEGATIVE_INFINITY,
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
