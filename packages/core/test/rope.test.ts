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

/**
 * Hugging Face's `rope_type: "llama3"` inverse frequencies (transformers' _compute_llama3_parameters),
 * written from its published formula; llama.cpp's converter stores the ratio original / scaled as
 * `rope_freqs.weight`, so our frequencies with those factors must equal these.
 */
function llama3InverseFrequencies(headSize: number, base: number): number[] {
  const factor = 32;
  const lowFrequencyFactor = 1;
  const highFrequencyFactor = 4;
  const originalContext = 8192;
  const lowFrequencyWavelength = originalContext / lowFrequencyFactor;
  const highFrequencyWavelength = originalContext / highFrequencyFactor;
  return Array.from({ length: headSize / 2 }, (_, pair) => {
    const inverseFrequency = 1 / base ** ((2 * pair) / headSize);
    const wavelength = (2 * Math.PI) / inverseFrequency;
    if (wavelength < highFrequencyWavelength) return inverseFrequency;
    if (wavelength > lowFrequencyWavelength) return inverseFrequency / factor;
    const smooth =
      (originalContext / wavelength - lowFrequencyFactor) / (highFrequencyFactor - lowFrequencyFactor);
    return (1 - smooth) * (inverseFrequency / factor) + smooth * inverseFrequency;
  });
}

/** Rotates by theta_k = position * base^(-2k/R) / factor_k, pair by pair, with no table. */
function naiveRotation(
  vector: Float64Array,
  position: number,
  layout: "interleaved" | "half-split",
  base: number,
  factors: readonly number[],
): Float64Array {
  const size = vector.length;
  const result = Float64Array.from(vector);
  for (let pair = 0; pair < size / 2; pair++) {
    const theta = (position * base ** ((-2 * pair) / size)) / factors[pair];
    const first = layout === "interleaved" ? 2 * pair : pair;
    const second = layout === "interleaved" ? 2 * pair + 1 : pair + size / 2;
    result[first] = vector[first] * Math.cos(theta) - vector[second] * Math.sin(theta);
    result[second] = vector[first] * Math.sin(theta) + vector[second] * Math.cos(theta);
  }
  return result;
}

describe("RoPE frequency factors (Llama 3 rope_freqs)", () => {
  const random = createRandom(11);
  const headSize = 64;
  const base = 500000;
  const scaled = llama3InverseFrequencies(headSize, base);
  // What llama.cpp's converter writes: unscaled / scaled, per pair (1 for short wavelengths, 32 for long).
  const factors = scaled.map((frequency, pair) => base ** ((-2 * pair) / headSize) / frequency);

  it("the factors span 1 to 32 as Llama 3.1's rope scaling makes them", () => {
    expect(factors[0]).toBe(1);
    expect(factors.at(-1)).toBeCloseTo(32, 10);
    expect(factors.some((factor) => factor > 1 && factor < 32)).toBe(true);
  });

  it("divide each pair's frequency: equal to Hugging Face's llama3 inverse frequencies", () => {
    const frequencies = ropeFrequencies({ layout: "half-split", headSize, base, frequencyFactors: factors });
    scaled.forEach((expected, pair) => {
      expect(Math.abs(frequencies[pair] - expected) / expected).toBeLessThan(1e-12);
    });
  });

  it.each(["interleaved", "half-split"] as const)(
    "%s rotation at table and past-table positions equals the naive per-pair formula",
    (layout) => {
      const table = createRopeTable({ layout, headSize, base, frequencyFactors: factors }, 128);
      for (const position of [0, 1, 77, 127, 128, 5000, 123456]) {
        const vector = randomVector(random, headSize);
        const ours = rotated(vector, position, table);
        const expected = naiveRotation(vector, position, layout, base, factors);
        for (let d = 0; d < headSize; d++) expect(ours[d]).toBeCloseTo(expected[d], 12);
      }
    },
  );

  it("keep attention relative: q at p and k at p' score as q at p - p' and k at 0 (neighbour or grouped)", () => {
    const table = createRopeTable({ layout: "interleaved", headSize, base, frequencyFactors: factors }, 64);
    const query = randomVector(random, headSize);
    const key = randomVector(random, headSize);
    // Self-Extend's grouped query position (e.g. 9000 // 4 + shift) and key position (e.g. 2000 // 4).
    for (const [queryPosition, keyPosition] of [
      [3000, 500],
      [40, 7],
    ]) {
      const score = dot(rotated(query, queryPosition, table), rotated(key, keyPosition, table));
      const relative = dot(rotated(query, queryPosition - keyPosition, table), rotated(key, 0, table));
      expect(score).toBeCloseTo(relative, 10);
    }
  });

  it("all-ones factors are the same as none, and bad factors are refused naming the field", () => {
    const options = { layout: "interleaved", headSize: 8 } as const;
    expect(createRopeTable({ ...options, frequencyFactors: [1, 1, 1, 1] }, 2).options).toEqual(
      createRopeTable(options, 2).options,
    );
    expect(() => createRopeTable({ ...options, frequencyFactors: [1, 2, 3] }, 2)).toThrow(
      "frequencyFactors.length = 3 is invalid: must be rotaryDimension / 2 = 4",
    );
    expect(() => createRopeTable({ ...options, frequencyFactors: [1, 0, 1, 1] }, 2)).toThrow(
      "frequencyFactors[1] = 0 is invalid",
    );
  });
});
