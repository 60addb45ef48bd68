/**
 * Why `exact` mode decodes one token per llama_decode past W (issue 14 asked whether exact prefill
 * can be batched "in G-aligned chunks where positions allow"): checked here on the spec's own
 * relative positions (core's relativePosition), not on this adapter's scheduler.
 *
 * llama.cpp gives every cached token ONE cell with ONE position during a llama_decode, and a batch
 * token's query position is its own cell's position. A batch [a, a + T) is exact iff positions
 * exist with pos(q) - pos(k) = relativePosition(q, k) for every query q of the batch and every key
 * k <= q. The constraints are differences, so a weighted union-find decides it. What it finds, for
 * every G >= 2 tried: a batch is exact iff it has no key that any of its queries sees at the group
 * level (a + T - 1 <= W: exact mode's first W + 1 tokens), or T = 1, or T = 2 straddling a group
 * boundary (a + 1 a multiple of G). So batching past W can save at most one llama_decode in G.
 */
import { relativePosition, type SelfExtendConfig } from "@self-extend/core";
import { describe, expect, it } from "vitest";

/** Whether cells 0..a+T-1 can take positions that give every (query, key) pair of the batch its spec distance. */
function batchIsExact(config: SelfExtendConfig, first: number, count: number): boolean {
  const cells = first + count;
  const parent = Array.from({ length: cells }, (_, cell) => cell);
  // offset[c] = pos(c) - pos(parent[c])
  const offset = new Array<number>(cells).fill(0);
  const find = (cell: number): number => {
    if (parent[cell] === cell) return cell;
    const root = find(parent[cell]);
    offset[cell] += offset[parent[cell]];
    parent[cell] = root;
    return root;
  };
  for (let query = first; query < cells; query++) {
    for (let key = 0; key <= query; key++) {
      // pos(query) - pos(key) must equal the spec's distance.
      const distance = relativePosition(query, key, config);
      const queryRoot = find(query);
      const keyRoot = find(key);
      if (queryRoot === keyRoot) {
        if (offset[query] - offset[key] !== distance) return false;
      } else {
        parent[queryRoot] = keyRoot;
        offset[queryRoot] = offset[key] + distance - offset[query];
      }
    }
  }
  return true;
}

describe("exact Self-Extend batches under one position per cell", () => {
  const configs: SelfExtendConfig[] = [
    { groupSize: 2, neighborWindow: 4 },
    { groupSize: 3, neighborWindow: 6 },
    { groupSize: 4, neighborWindow: 8 },
    { groupSize: 4, neighborWindow: 16 },
    { groupSize: 8, neighborWindow: 32 },
  ];

  it.each(configs)(
    "G=$groupSize W=$neighborWindow: exact iff no group-level key, one token, or a pair across a group boundary",
    (config) => {
      const { groupSize: group, neighborWindow: window } = config;
      for (let first = 0; first <= window + 3 * group; first++) {
        for (let count = 1; count <= 5; count++) {
          const expected =
            first + count - 1 <= window || count === 1 || (count === 2 && (first + 1) % group === 0);
          expect(batchIsExact(config, first, count), `batch [${first}, ${first + count})`).toBe(expected);
        }
      }
    },
  );

  it("G = 1 (plain attention): every batch is exact", () => {
    const config = { groupSize: 1, neighborWindow: 4 };
    for (let first = 0; first <= 12; first++) {
      for (let count = 1; count <= 5; count++) expect(batchIsExact(config, first, count)).toBe(true);
    }
  });

  it("the checker refuses a batch whose distances contradict each other", () => {
    // Past W + 1 tokens from the start, query W + 1 sees key 0 at the group distance W, but the batch's
    // own cells put them W + 1 apart.
    const config = { groupSize: 4, neighborWindow: 8 };
    expect(batchIsExact(config, 0, 9)).toBe(true);
    expect(batchIsExact(config, 0, 10)).toBe(false);
  });
});
