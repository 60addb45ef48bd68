import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { buildAttentionCases, buildPositionMaps } from "../src/golden-cases.js";
import { naivePositionMap } from "../src/naive-self-extend.js";
import { serializeGolden } from "../src/serialize.js";

const goldenFolder = join(dirname(fileURLToPath(import.meta.url)), "../../../packages/core/golden");

describe("golden files", () => {
  it.each([
    ["position-maps.json", buildPositionMaps],
    ["attention-cases.json", buildAttentionCases],
  ] as const)("%s is what the generator writes (run `pnpm golden` after changing a grid)", (name, build) => {
    expect(readFileSync(join(goldenFolder, name), "utf8")).toBe(serializeGolden(build()));
  });

  it("the naive map reproduces the paper's Figure 3 rows", () => {
    const map = naivePositionMap(2, 4, 10);
    expect(map[9]).toEqual([6, 6, 5, 5, 4, 4, 3, 2, 1, 0]);
    expect(map[5].slice(0, 6)).toEqual([4, 4, 3, 2, 1, 0]);
  });
});
