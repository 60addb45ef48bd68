/** Tolerances are data (conformance/tolerances.json); this file only reads and applies them. */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface Tolerance {
  readonly absolute: number;
  readonly relative: number;
  readonly reason: string;
}

const file = join(dirname(fileURLToPath(import.meta.url)), "..", "conformance", "tolerances.json");
const tolerances = JSON.parse(readFileSync(file, "utf8")) as { cases: Record<string, Tolerance> };

export function tolerance(name: string): Tolerance {
  const entry = tolerances.cases[name];
  if (entry === undefined) throw new Error(`conformance/tolerances.json has no case ${JSON.stringify(name)}`);
  return entry;
}

/** The worst violation of the tolerance (<= 0 passes) and the largest absolute difference. */
export function compareLogits(actual: Float32Array, expected: Float32Array, bound: Tolerance) {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let largestDifference = 0;
  let worstExcess = Number.NEGATIVE_INFINITY;
  let worstIndex = -1;
  for (let index = 0; index < actual.length; index++) {
    const difference = Math.abs(actual[index] - expected[index]);
    const excess = difference - (bound.absolute + bound.relative * Math.abs(expected[index]));
    if (!(difference <= largestDifference)) largestDifference = difference;
    if (!(excess <= worstExcess)) {
      worstExcess = excess;
      worstIndex = index;
    }
  }
  return { largestDifference, worstExcess, worstIndex };
}
