import { createRequire } from "node:module";
import { afterAll, describe, expect, it } from "vitest";
import { createWebGpuBackend } from "../src/index.js";

const golden = (
  createRequire(import.meta.url)("@self-extend/core/golden/position-maps.json") as {
    cases: { group: number; window: number; length: number; map: number[][] }[];
  }
).cases;

describe("relative positions computed on the device by the kernel's position functions", () => {
  const backend = createWebGpuBackend();
  afterAll(async () => (await backend.getContext()).destroy());

  it("reproduces every golden map", async () => {
    for (const { group, window, length, map } of golden) {
      const actual = await backend.relativePositions!({ groupSize: group, neighborWindow: window }, length);
      expect(Array.from(actual), `G=${group} W=${window} N=${length}`).toEqual(map.flat());
    }
  });
});
