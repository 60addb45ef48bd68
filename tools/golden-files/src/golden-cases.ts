/**
 * What the golden files contain. Kept apart from the writer so the freshness test can rebuild the
 * same content in memory.
 */
import { type Layout, naivePositionMap, naiveSelfExtendAttention } from "./naive-self-extend.js";

export const positionMapGrid: ReadonlyArray<{
  group: number;
  window: number;
  length: number;
  note?: string;
}> = [
  { group: 2, window: 4, length: 10, note: "the paper's Figure 3 (L = 7)" },
  { group: 1, window: 1, length: 16, note: "G = 1 is plain attention" },
  { group: 1, window: 8, length: 16, note: "G = 1 with any W is plain attention" },
  { group: 2, window: 2, length: 24 },
  { group: 2, window: 8, length: 40 },
  { group: 3, window: 6, length: 33 },
  { group: 4, window: 4, length: 37 },
  { group: 4, window: 8, length: 64 },
  { group: 4, window: 16, length: 64 },
  { group: 5, window: 10, length: 51 },
  { group: 8, window: 8, length: 64 },
  { group: 8, window: 16, length: 64 },
  { group: 8, window: 32, length: 64, note: "N barely past W" },
  { group: 16, window: 16, length: 64 },
  { group: 3, window: 3, length: 2, note: "N < W: every pair is a neighbor" },
  { group: 7, window: 14, length: 1 },
];

export function buildPositionMaps() {
  return {
    description:
      "Self-Extend relative positions r(i, j) for query rows i and key columns j, -1 where j > i. " +
      "Written by tools/golden-files from the spec's formula; never edit by hand.",
    cases: positionMapGrid.map(({ group, window, length, note }) => ({
      group,
      window,
      length,
      ...(note ? { note } : {}),
      map: naivePositionMap(group, window, length),
    })),
  };
}

/** Mulberry32 with its own copy so golden content never changes when core's generator does. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const attentionGrid: ReadonlyArray<{
  name: string;
  headCount: number;
  kvHeadCount: number;
  headSize: number;
  rotaryDimension: number;
  layout: Layout;
  base: number;
  group: number;
  window: number;
  length: number;
}> = [
  {
    name: "mha-interleaved-g2-w4",
    headCount: 2,
    kvHeadCount: 2,
    headSize: 8,
    rotaryDimension: 8,
    layout: "interleaved",
    base: 10000,
    group: 2,
    window: 4,
    length: 12,
  },
  {
    name: "gqa2-half-split-g4-w8",
    headCount: 4,
    kvHeadCount: 2,
    headSize: 8,
    rotaryDimension: 8,
    layout: "half-split",
    base: 10000,
    group: 4,
    window: 8,
    length: 20,
  },
  {
    name: "gqa4-interleaved-partial-rotary",
    headCount: 4,
    kvHeadCount: 1,
    headSize: 16,
    rotaryDimension: 8,
    layout: "interleaved",
    base: 1e6,
    group: 3,
    window: 6,
    length: 17,
  },
  {
    name: "plain-g1",
    headCount: 2,
    kvHeadCount: 1,
    headSize: 4,
    rotaryDimension: 4,
    layout: "half-split",
    base: 10000,
    group: 1,
    window: 3,
    length: 9,
  },
  {
    name: "large-group",
    headCount: 1,
    kvHeadCount: 1,
    headSize: 32,
    rotaryDimension: 32,
    layout: "interleaved",
    base: 10000,
    group: 8,
    window: 8,
    length: 40,
  },
];

export function buildAttentionCases() {
  return {
    description:
      "Self-Extend attention outputs in float64 for random un-rotated q/k/v (queries[t][head][d]), every token " +
      "attending to keys 0..t, scale 1/sqrt(headSize). Written by tools/golden-files from a naive per-pair " +
      "implementation; never edit by hand.",
    cases: attentionGrid.map((spec, index) => {
      const random = seeded(1000 + index);
      const tensor = (heads: number) =>
        Array.from({ length: spec.length }, () =>
          Array.from({ length: heads }, () =>
            Array.from({ length: spec.headSize }, () => Math.round((random() * 4 - 2) * 1e6) / 1e6),
          ),
        );
      const queries = tensor(spec.headCount);
      const keys = tensor(spec.kvHeadCount);
      const values = tensor(spec.kvHeadCount);
      const output = naiveSelfExtendAttention({
        ...spec,
        groupSize: spec.group,
        window: spec.window,
        queries,
        keys,
        values,
      });
      return { ...spec, queries, keys, values, output };
    }),
  };
}
