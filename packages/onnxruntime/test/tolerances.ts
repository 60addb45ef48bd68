/**
 * The adapter's tolerances, as the suite reads them: conformance/tolerances.json in the suite's
 * schema (@self-extend/conformance), resolved for this backend.
 */
import {
  adapterTolerance,
  readDeclaration,
  type Tolerance,
  type ToleranceQuery,
} from "@self-extend/conformance";
import { conformanceDeclaration } from "../src/index.js";

const { tolerances } = readDeclaration(conformanceDeclaration);

export function tolerance(query: Omit<ToleranceQuery, "backend"> = {}): Tolerance {
  if (tolerances === undefined) throw new Error("the adapter declares no tolerances");
  return adapterTolerance(tolerances, { backend: "onnxruntime", ...query });
}

/** The worst violation of |actual - expected| <= atol + rtol |expected| (<= 0 passes) and the largest difference. */
export function compareLogits(actual: Float32Array, expected: Float32Array, bound: Tolerance) {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let largestDifference = 0;
  let worstExcess = Number.NEGATIVE_INFINITY;
  let worstIndex = -1;
  for (let index = 0; index < actual.length; index++) {
    const difference = Math.abs(actual[index] - expected[index]);
    const excess = difference - (bound.atol + bound.rtol * Math.abs(expected[index]));
    if (!(difference <= largestDifference)) largestDifference = difference;
    if (!(excess <= worstExcess)) {
      worstExcess = excess;
      worstIndex = index;
    }
  }
  return { largestDifference, worstExcess, worstIndex };
}
