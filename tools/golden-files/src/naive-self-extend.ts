/**
 * Deliberately naive re-statements of the spec, independent of @self-extend/core: one formula per
 * pair, one rotation per pair, plain loops. Golden files come from here so that tests of core's
 * vectorised code compare against something that was not derived from it.
 */

/** r(i, j) straight from the spec; -1 where j > i. */
export function naiveRelativePosition(i: number, j: number, groupSize: number, window: number): number {
  if (j > i) return -1;
  if (i - j < window) return i - j;
  return Math.floor(i / groupSize) - Math.floor(j / groupSize) + window - Math.floor(window / groupSize);
}

export function naivePositionMap(groupSize: number, window: number, length: number): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < length; i++) {
    const row: number[] = [];
    for (let j = 0; j < length; j++) row.push(naiveRelativePosition(i, j, groupSize, window));
    rows.push(row);
  }
  return rows;
}

export type Layout = "interleaved" | "half-split";

/** Rotates a copy of one head vector by `position` (RoPE), pairing dimensions per `layout`. */
export function naiveRotate(
  vector: readonly number[],
  position: number,
  layout: Layout,
  rotaryDimension: number,
  base: number,
): number[] {
  const out = [...vector];
  const half = rotaryDimension / 2;
  for (let k = 0; k < half; k++) {
    const angle = position * base ** (-(2 * k) / rotaryDimension);
    const a = layout === "interleaved" ? 2 * k : k;
    const b = layout === "interleaved" ? 2 * k + 1 : k + half;
    out[a] = vector[a] * Math.cos(angle) - vector[b] * Math.sin(angle);
    out[b] = vector[a] * Math.sin(angle) + vector[b] * Math.cos(angle);
  }
  return out;
}

export interface NaiveAttentionCase {
  headCount: number;
  kvHeadCount: number;
  headSize: number;
  rotaryDimension: number;
  layout: Layout;
  base: number;
  groupSize: number;
  window: number;
  /** queries[t][h] = head vector of token t, head h (un-rotated). */
  queries: number[][][];
  keys: number[][][];
  values: number[][][];
}

/**
 * Self-Extend attention for every token of the sequence (queries[t] attends keys 0..t) in the
 * "rotate the key by the relative distance" form: the query stays at 0 and the key is rotated to
 * -r(i, j). RoPE scores depend only on the difference, so this equals the two-level form without
 * sharing any code or structure with it.
 */
export function naiveSelfExtendAttention(c: NaiveAttentionCase): number[][][] {
  const length = c.queries.length;
  const perKv = c.headCount / c.kvHeadCount;
  const output: number[][][] = [];
  for (let i = 0; i < length; i++) {
    const heads: number[][] = [];
    for (let h = 0; h < c.headCount; h++) {
      const kv = Math.floor(h / perKv);
      const scores: number[] = [];
      for (let j = 0; j <= i; j++) {
        const r = naiveRelativePosition(i, j, c.groupSize, c.window);
        const key = naiveRotate(c.keys[j][kv], -r, c.layout, c.rotaryDimension, c.base);
        let dot = 0;
        for (let d = 0; d < c.headSize; d++) dot += c.queries[i][h][d] * key[d];
        scores.push(dot / Math.sqrt(c.headSize));
      }
      const largest = Math.max(...scores);
      const weights = scores.map((s) => Math.exp(s - largest));
      const total = weights.reduce((a, b) => a + b, 0);
      const out = new Array<number>(c.headSize).fill(0);
      for (let j = 0; j <= i; j++) {
        for (let d = 0; d < c.headSize; d++) out[d] += (weights[j] / total) * c.values[j][kv][d];
      }
      heads.push(out);
    }
    output.push(heads);
  }
  return output;
}
