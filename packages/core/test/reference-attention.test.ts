import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  createRandom,
  createRopeTable,
  type RopeLayout,
  referenceAttention,
  SelfExtendConfigError,
} from "../src/index.js";

interface AttentionCase {
  name: string;
  headCount: number;
  kvHeadCount: number;
  headSize: number;
  rotaryDimension: number;
  layout: RopeLayout;
  base: number;
  group: number;
  window: number;
  length: number;
  queries: number[][][];
  keys: number[][][];
  values: number[][][];
  output: number[][][];
}
const golden: { cases: AttentionCase[] } = JSON.parse(
  readFileSync(new URL("../golden/attention-cases.json", import.meta.url), "utf8"),
);

function run(
  c: AttentionCase,
  queryStart: number,
  queryCount: number,
  config = { groupSize: c.group, neighborWindow: c.window },
) {
  const rope = createRopeTable(
    { layout: c.layout, headSize: c.headSize, rotaryDimension: c.rotaryDimension, base: c.base },
    8,
  );
  const keyCount = queryStart + queryCount;
  return referenceAttention({
    shape: { headCount: c.headCount, kvHeadCount: c.kvHeadCount, headSize: c.headSize },
    config,
    rope,
    queries: Float64Array.from(c.queries.slice(queryStart, keyCount).flat(2)),
    keys: Float64Array.from(c.keys.slice(0, keyCount).flat(2)),
    values: Float64Array.from(c.values.slice(0, keyCount).flat(2)),
    queryCount,
    keyCount,
  });
}

function largestDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let largest = 0;
  for (let index = 0; index < a.length; index++) largest = Math.max(largest, Math.abs(a[index] - b[index]));
  return largest;
}

describe("reference attention", () => {
  it.each(golden.cases.map((c) => [c.name, c] as const))("prefill matches the golden case %s", (_name, c) => {
    expect(largestDifference(run(c, 0, c.length), c.output.flat(2))).toBeLessThan(1e-12);
  });

  it.each(golden.cases.map((c) => [c.name, c] as const))(
    "decode, one query at a time, matches %s",
    (_name, c) => {
      for (let i = 0; i < c.length; i++) {
        expect(largestDifference(run(c, i, 1), c.output[i].flat())).toBeLessThan(1e-12);
      }
    },
  );

  it("a block in the middle equals the same rows of the full prefill", () => {
    const c = golden.cases[1];
    const full = run(c, 0, c.length);
    const width = c.headCount * c.headSize;
    expect(largestDifference(run(c, 11, 5), full.subarray(11 * width, 16 * width))).toBeLessThan(1e-13);
  });

  it("G = 1 gives the same result for every W (plain attention)", () => {
    const c = golden.cases[0];
    const a = run(c, 0, c.length, { groupSize: 1, neighborWindow: 1 });
    const b = run(c, 0, c.length, { groupSize: 1, neighborWindow: 8 });
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it("Self-Extend differs from plain attention once keys leave the window", () => {
    const c = golden.cases[1];
    const plain = run(c, 0, c.length, { groupSize: 1, neighborWindow: 1 });
    const extended = run(c, 0, c.length);
    const width = c.headCount * c.headSize;
    // Rows before W see only neighbors: identical. Later rows see grouped keys: different.
    expect(
      largestDifference(plain.subarray(0, c.window * width), extended.subarray(0, c.window * width)),
    ).toBe(0);
    expect(largestDifference(plain, extended)).toBeGreaterThan(1e-3);
  });

  it("rejects shapes that cannot be grouped-query attention", () => {
    const random = createRandom(3);
    const data = Float64Array.from({ length: 48 }, () => random());
    const rope = createRopeTable({ layout: "interleaved", headSize: 4 }, 4);
    expect(() =>
      referenceAttention({
        shape: { headCount: 3, kvHeadCount: 2, headSize: 4 },
        config: { groupSize: 1, neighborWindow: 1 },
        rope,
        queries: data,
        keys: data,
        values: data,
        queryCount: 1,
        keyCount: 2,
      }),
    ).toThrow(SelfExtendConfigError);
  });
});
