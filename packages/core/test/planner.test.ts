import { describe, expect, it } from "vitest";
import {
  largestRelativePosition,
  largestUsableContext,
  longestReachableContext,
  PlanningError,
  planSelfExtend,
} from "../src/index.js";

describe("planner", () => {
  it("uses plain attention when N fits in L", () => {
    const plan = planSelfExtend({ trainedContext: 512, targetContext: 400 });
    expect(plan.plainAttention).toBe(true);
    expect(plan.config.groupSize).toBe(1);
  });

  it.each([
    [512, 1024],
    [512, 2048],
    [512, 4096],
    [256, 1024],
    [256, 2048],
    [4096, 16384],
    [4096, 32768],
    [2048, 100000],
    [64, 256],
  ])(
    "L = %i, N = %i: every relative position stays below L, with the smallest G that fits",
    (trained, target) => {
      const plan = planSelfExtend({ trainedContext: trained, targetContext: target });
      const { groupSize, neighborWindow } = plan.config;
      expect(neighborWindow % groupSize).toBe(0);
      expect(plan.largestRelativePosition).toBe(largestRelativePosition(target, plan.config));
      expect(plan.largestRelativePosition).toBeLessThanOrEqual(trained - 1);
      expect(plan.largestUsableContext).toBe(largestUsableContext(trained, plan.config));
      expect(plan.largestUsableContext).toBeGreaterThanOrEqual(target);
      expect(neighborWindow).toBeGreaterThanOrEqual(Math.ceil(trained / 8));
      expect(neighborWindow).toBeLessThanOrEqual(trained / 2);
      // The bound the plan promises: 2/3 of L when any G allows it, else L - 1.
      const fits = (limit: number, g: number) => {
        for (let window = g; window <= trained / 2; window += g) {
          if (
            window >= Math.ceil(trained / 8) &&
            largestRelativePosition(target, { groupSize: g, neighborWindow: window }) <= limit
          ) {
            return true;
          }
        }
        return false;
      };
      const headroom = Math.floor((2 * trained) / 3);
      const anyWithHeadroom = Array.from({ length: trained / 2 - 1 }, (_, k) => k + 2).some((g) =>
        fits(headroom, g),
      );
      const limit = anyWithHeadroom ? headroom : trained - 1;
      expect(plan.largestRelativePosition).toBeLessThanOrEqual(limit);
      // No smaller G fits that bound with any window in the recommended range.
      for (let smaller = 2; smaller < groupSize; smaller++) expect(fits(limit, smaller)).toBe(false);
      // And for this G no larger window in range fits it.
      const next = neighborWindow + groupSize;
      if (next <= trained / 2) {
        expect(largestRelativePosition(target, { groupSize, neighborWindow: next })).toBeGreaterThan(limit);
      }
    },
  );

  it.each([
    [128, 256, 48],
    [128, 640, 48],
    [8192, 16384, 4096],
    [8192, 32768, 4096],
  ])(
    "L = %i, N = %i, smallestWindow = %i (a sliding window): W covers it, and the plan is the naive search's",
    (trained, target, smallestWindow) => {
      const plan = planSelfExtend({ trainedContext: trained, targetContext: target, smallestWindow });
      // The naive search, written from the rule: the smallest G, then the largest W, with W a
      // multiple of G in [smallestWindow, L/2], positions within 2/3 of L, else within L - 1.
      const naive = (limit: number) => {
        for (let g = 2; g <= trained / 2; g++) {
          for (let window = Math.floor(trained / 2 / g) * g; window >= smallestWindow; window -= g) {
            if (largestRelativePosition(target, { groupSize: g, neighborWindow: window }) <= limit) {
              return { groupSize: g, neighborWindow: window };
            }
          }
        }
        return undefined;
      };
      const expected = naive(Math.floor((2 * trained) / 3)) ?? naive(trained - 1);
      expect(plan.config).toEqual(expected);
      expect(plan.config.neighborWindow).toBeGreaterThanOrEqual(smallestWindow);
    },
  );

  it("refuses a smallestWindow above the largest window it considers, naming it", () => {
    expect(() => planSelfExtend({ trainedContext: 64, targetContext: 256, smallestWindow: 40 })).toThrow(
      "smallestWindow = 40 is invalid: must be <= the largest window the planner considers (32 = L x 0.5)",
    );
  });

  it("reaches the longest context with G = W = L/2", () => {
    const plan = planSelfExtend({ trainedContext: 64, targetContext: longestReachableContext(64) });
    expect(plan.config).toEqual({ groupSize: 32, neighborWindow: 32 });
    expect(plan.largestRelativePosition).toBe(63);
  });

  it("refuses an impossible target and says how far the model can go", () => {
    const reachable = longestReachableContext(64);
    expect(reachable).toBe(32 * 32 + 32);
    expect(() => planSelfExtend({ trainedContext: 64, targetContext: reachable })).not.toThrow();
    expect(() => planSelfExtend({ trainedContext: 64, targetContext: reachable + 1 })).toThrow(PlanningError);
    expect(() => planSelfExtend({ trainedContext: 64, targetContext: reachable + 1 })).toThrow(
      `the longest reachable is ${reachable}`,
    );
  });

  it("rejects invalid inputs naming the field", () => {
    expect(() => planSelfExtend({ trainedContext: 0, targetContext: 10 })).toThrow("trainedContext");
    expect(() => planSelfExtend({ trainedContext: 512, targetContext: 1.5 })).toThrow("targetContext");
  });
});
