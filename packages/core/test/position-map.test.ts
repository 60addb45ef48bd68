import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  assertWithinUsableContext,
  ContextLengthError,
  groupKeyPosition,
  groupQueryPosition,
  isNeighbor,
  largestRelativePosition,
  largestUsableContext,
  maskedPosition,
  relativePosition,
  relativePositionBlock,
  relativePositionMap,
} from "../src/index.js";
import { randomConfigs } from "./random.js";

interface GoldenMaps {
  cases: { group: number; window: number; length: number; map: number[][] }[];
}
const golden: GoldenMaps = JSON.parse(
  readFileSync(new URL("../golden/position-maps.json", import.meta.url), "utf8"),
);

describe("position map", () => {
  it("reproduces the paper's Figure 3 (W = 4, G = 2, N = 10)", () => {
    const config = { groupSize: 2, neighborWindow: 4 };
    const row = (i: number) => Array.from({ length: i + 1 }, (_, j) => relativePosition(i, j, config));
    expect(row(9)).toEqual([6, 6, 5, 5, 4, 4, 3, 2, 1, 0]);
    expect(row(5)).toEqual([4, 4, 3, 2, 1, 0]);
    expect(largestRelativePosition(10, config)).toBe(6);
    expect(largestUsableContext(7, config)).toBe(10);
  });

  it.each(golden.cases.map((c) => [`G=${c.group} W=${c.window} N=${c.length}`, c] as const))(
    "is bit-identical to the golden map %s",
    (_name, { group, window, length, map }) => {
      const config = { groupSize: group, neighborWindow: window };
      expect(Array.from(relativePositionMap(config, length))).toEqual(map.flat());
      for (let i = 0; i < length; i++) {
        for (let j = 0; j <= i; j++) expect(relativePosition(i, j, config)).toBe(map[i][j]);
      }
    },
  );

  it("computes a block of queries equal to the same rows of the full map", () => {
    const config = { groupSize: 4, neighborWindow: 8 };
    const full = relativePositionMap(config, 50);
    const block = relativePositionBlock(config, { queryStart: 30, queryCount: 7, keyCount: 50 });
    expect(Array.from(block)).toEqual(Array.from(full.subarray(30 * 50, 37 * 50)));
  });

  it("two-level form: group query minus group key equals r(i, j) outside the window", () => {
    const config = { groupSize: 4, neighborWindow: 12 };
    for (let i = 0; i < 60; i++) {
      for (let j = 0; j <= i; j++) {
        const expected = isNeighbor(i, j, config)
          ? i - j
          : groupQueryPosition(i, config) - groupKeyPosition(j, config);
        expect(relativePosition(i, j, config)).toBe(expected);
      }
    }
  });

  describe("properties over random configs", () => {
    const configs = randomConfigs(20240101, 300);

    // expect() per element is far too slow for millions of pairs: collect violations instead.
    function violations(
      check: (value: number, i: number, j: number, map: Int32Array, length: number) => boolean,
    ) {
      const found: string[] = [];
      for (const { groupSize, neighborWindow, length } of configs) {
        const map = relativePositionMap({ groupSize, neighborWindow }, length);
        for (let i = 0; i < length && found.length < 5; i++) {
          for (let j = 0; j < length; j++) {
            if (!check(map[i * length + j], i, j, map, length)) {
              found.push(
                `G=${groupSize} W=${neighborWindow} N=${length} i=${i} j=${j} r=${map[i * length + j]}`,
              );
            }
          }
        }
      }
      return found;
    }

    it("neighbor pairs keep their exact distance; masked pairs are -1", () => {
      const found: string[] = [];
      for (const { groupSize, neighborWindow, length } of configs) {
        const map = relativePositionMap({ groupSize, neighborWindow }, length);
        for (let i = 0; i < length; i++) {
          for (let j = 0; j < length; j++) {
            const value = map[i * length + j];
            const ok = j > i ? value === maskedPosition : i - j >= neighborWindow || value === i - j;
            if (!ok) found.push(`G=${groupSize} W=${neighborWindow} i=${i} j=${j} r=${value}`);
          }
        }
      }
      expect(found).toEqual([]);
    });

    it("group distance is never larger than the exact one, nor negative", () => {
      expect(violations((value, i, j) => j > i || (value <= i - j && value >= 0))).toEqual([]);
    });

    it("is non-increasing as j grows for a fixed i", () => {
      expect(
        violations((value, i, j, map, length) => j === 0 || j > i || value <= map[i * length + j - 1]),
      ).toEqual([]);
    });

    it("at the window edge both levels agree: the group level gives r(i, i - W) = W", () => {
      const found: string[] = [];
      for (const { groupSize, neighborWindow, length } of configs) {
        const config = { groupSize, neighborWindow };
        for (let i = neighborWindow; i < length; i++) {
          const grouped = groupQueryPosition(i, config) - groupKeyPosition(i - neighborWindow, config);
          if (
            grouped !== neighborWindow ||
            relativePosition(i, i - neighborWindow, config) !== neighborWindow
          ) {
            found.push(`G=${groupSize} W=${neighborWindow} i=${i}`);
          }
        }
      }
      expect(found).toEqual([]);
    });

    it("G = 1 is plain attention for every W", () => {
      const found: string[] = [];
      for (const { neighborWindow, length } of configs) {
        const map = relativePositionMap({ groupSize: 1, neighborWindow }, length);
        for (let i = 0; i < length; i++) {
          for (let j = 0; j < length; j++) {
            if (map[i * length + j] !== (j > i ? -1 : i - j)) found.push(`W=${neighborWindow} i=${i} j=${j}`);
          }
        }
      }
      expect(found).toEqual([]);
    });

    it("its maximum equals the closed formula floor((N-1)/G) + W - W/G", () => {
      for (const { groupSize, neighborWindow, length } of configs) {
        const config = { groupSize, neighborWindow };
        const map = relativePositionMap(config, length);
        const expected =
          length <= neighborWindow
            ? length - 1
            : Math.floor((length - 1) / groupSize) + neighborWindow - neighborWindow / groupSize;
        expect(Math.max(...map)).toBe(expected);
        expect(largestRelativePosition(length, config)).toBe(expected);
      }
    });

    it("(L - W) * G + W is the longest sequence whose positions all stay below L", () => {
      for (const { groupSize, neighborWindow } of configs.slice(0, 100)) {
        const config = { groupSize, neighborWindow };
        const trained = neighborWindow + 1 + (groupSize % 7) * 3;
        const usable = largestUsableContext(trained, config);
        expect(usable).toBe((trained - neighborWindow) * groupSize + neighborWindow);
        expect(largestRelativePosition(usable, config)).toBeLessThanOrEqual(trained - 1);
        expect(largestRelativePosition(usable + 1, config)).toBeGreaterThan(trained - 1);
      }
    });
  });

  it("refuses a context past (L - W) * G + W with a ContextLengthError naming the limit", () => {
    const config = { groupSize: 8, neighborWindow: 256 };
    expect(() => assertWithinUsableContext(2304, 512, config)).not.toThrow();
    try {
      assertWithinUsableContext(2305, 512, config);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ContextLengthError);
      expect((error as ContextLengthError).largestUsableContext).toBe(2304);
      expect((error as Error).message).toContain("(L - W) * G + W = 2304");
    }
  });

  it("W >= L leaves only L usable tokens", () => {
    expect(largestUsableContext(64, { groupSize: 4, neighborWindow: 64 })).toBe(64);
    expect(largestUsableContext(64, { groupSize: 4, neighborWindow: 80 })).toBe(64);
  });

  it("rejects invalid block shapes and configs", () => {
    expect(() => relativePositionMap({ groupSize: 3, neighborWindow: 4 }, 8)).toThrow(
      "multiple of groupSize",
    );
    expect(() =>
      relativePositionBlock(
        { groupSize: 1, neighborWindow: 1 },
        { queryStart: -1, queryCount: 1, keyCount: 1 },
      ),
    ).toThrow("queryStart");
    expect(() => relativePosition(2, 3, { groupSize: 1, neighborWindow: 1 })).toThrow(
      "keyIndex <= queryIndex",
    );
  });
});
