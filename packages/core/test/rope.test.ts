import { describe, expect, it } from "vitest";
import {
  applyRope,
  createRandom,
  createRopeTable,
  ropeFrequencies,
  ropePairIndices,
  SelfExtendConfigError,
} from "../src/index.js";

function randomVector(random: () => number, size: number): Float64Array {
  return Float64Array.from({ length: size }, () => random() * 2 - 1);
}
function dot(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let index = 0; index < a.length; index++) sum += a[index] * b[index];
  return sum;
}
function rotated(
  vector: Float64Array,
  position: number,
  table: ReturnType<typeof createRopeTable>,
): Float64Array {
  const copy = Float64Array.from(vector);
  applyRope(copy, 0, position, table);
  return copy;
}

describe("RoPE", () => {
  const random = createRandom(7);

  it("uses frequencies base^(-2k/R) divided by the linear scaling factor", () => {
    const frequencies = ropeFrequencies({ layout: "interleaved", headSize: 8 });
    // stories260K's documented frequencies: 1, 0.1, 0.01 and 0.001 rad/position.
    [1, 0.1, 0.01, 0.001].forEach((expected, pair) => {
      expect(Math.abs(frequencies[pair] - expected) / expected).toBeLessThan(1e-14);
    });
    const scaled = ropeFrequencies({ layout: "interleaved", headSize: 8, linearScalingFactor: 4 });
    expect(scaled[1]).toBeCloseTo(0.1 / 4, 15);
  });

  it("pairs (2k, 2k+1) when interleaved and (k, k + R/2) when half-split", () => {
    expect(ropePairIndices("interleaved", 3, 16)).toEqual([6, 7]);
    expect(ropePairIndices("half-split", 3, 16)).toEqual([3, 11]);
  });

  it.each(["interleaved", "half-split"] as const)(
    "%s: scores depend only on the position difference",
    (layout) => {
      const table = createRopeTable({ layout, headSize: 16, base: 10000 }, 64);
      const query = randomVector(random, 16);
      const key = randomVector(random, 16);
      const reference = dot(rotated(query, 40, table), rotated(key, 33, table));
      expect(dot(rotated(query, 17, table), rotated(key, 10, table))).toBeCloseTo(reference, 12);
      // Past the table, angles are computed directly and agree.
      expect(dot(rotated(query, 1007, table), rotated(key, 1000, table))).toBeCloseTo(reference, 10);
    },
  );

  it("preserves the vector's length and leaves dimensions past the rotary dimension alone", () => {
    const table = createRopeTable({ layout: "half-split", headSize: 12, rotaryDimension: 8, base: 1e6 }, 32);
    const vector = randomVector(random, 12);
    const result = rotated(vector, 21, table);
    expect(Math.sqrt(dot(result, result))).toBeCloseTo(Math.sqrt(dot(vector, vector)), 12);
    expect(Array.from(result.subarray(8))).toEqual(Array.from(vector.subarray(8)));
    expect(Array.from(result.subarray(0, 8))).not.toEqual(Array.from(vector.subarray(0, 8)));
  });

  it("half-split on a vector equals interleaved on the same values permuted into pairs", () => {
    const half = createRopeTable({ layout: "half-split", headSize: 8 }, 16);
    const interleaved = createRopeTable({ layout: "interleaved", headSize: 8 }, 16);
    const vector = randomVector(random, 8);
    // Interleave: [x0, x4, x1, x5, ...] puts each half-split pair side by side.
    const permute = (v: Float64Array) =>
      Float64Array.from({ length: 8 }, (_, d) => v[(d >> 1) + (d & 1) * 4]);
    const viaHalf = permute(rotated(vector, 9, half));
    const viaInterleaved = rotated(permute(vector), 9, interleaved);
    for (let d = 0; d < 8; d++) expect(viaInterleaved[d]).toBeCloseTo(viaHalf[d], 14);
  });

  it("linear scaling by s at position p equals no scaling at p/s", () => {
    const scaled = createRopeTable({ layout: "interleaved", headSize: 8, linearScalingFactor: 4 }, 64);
    const plain = createRopeTable({ layout: "interleaved", headSize: 8 }, 64);
    const vector = randomVector(random, 8);
    const a = rotated(vector, 40, scaled);
    const b = rotated(vector, 10, plain);
    for (let d = 0; d < 8; d++) expect(a[d]).toBeCloseTo(b[d], 14);
  });

  it("rejects bad options naming the field", () => {
    expect(() => createRopeTable({ layout: "interleaved", headSize: 8, rotaryDimension: 10 }, 4)).toThrow(
      SelfExtendConfigError,
    );
    expect(() => createRopeTable({ layout: "interleaved", headSize: 8, rotaryDimension: 5 }, 4)).toThrow(
      "even",
    );
    expect(() => createRopeTable({ layout: "sideways" as never, headSize: 8 }, 4)).toThrow("layout");
    expect(() => createRopeTable({ layout: "interleaved", headSize: 8, base: 1 }, 4)).toThrow("base");
  });
});
