/**
 * The positions llama.cpp's KV cache actually holds after each decode (read through the native
 * bridge), against the spec's golden maps.
 */
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { createLlamaCppBackend, fastPrefillPositionError } from "../src/index.js";

const golden = (
  createRequire(import.meta.url)("@self-extend/core/golden/position-maps.json") as {
    cases: { group: number; window: number; length: number; map: number[][] }[];
  }
).cases;

describe("relative positions read from llama.cpp's cells", () => {
  const backend = createLlamaCppBackend({ threads: 1 });

  it("exact mode: every golden map, bit for bit", async () => {
    for (const { group, window, length, map } of golden) {
      const actual = await backend.relativePositions!({ groupSize: group, neighborWindow: window }, length);
      expect(Array.from(actual), `G=${group} W=${window} N=${length}`).toEqual(map.flat());
    }
  });

  it("fast-prefill: off by at most its documented position error, and off somewhere", async () => {
    let largest = 0;
    for (const { group, window, length, map } of golden) {
      const actual = await backend.relativePositions!({ groupSize: group, neighborWindow: window }, length, {
        mode: "fast-prefill",
      });
      const flat = map.flat();
      let caseLargest = 0;
      for (let index = 0; index < flat.length; index++)
        caseLargest = Math.max(caseLargest, Math.abs(actual[index] - flat[index]));
      // Chunks of G tokens (the adapter's default) are decoded without moving keys between queries.
      expect(caseLargest, `G=${group} W=${window} N=${length}`).toBeLessThanOrEqual(
        fastPrefillPositionError(group, group),
      );
      largest = Math.max(largest, caseLargest);
    }
    expect(largest).toBeGreaterThan(0);
  });
});
