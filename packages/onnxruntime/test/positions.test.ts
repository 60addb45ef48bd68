import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { createOnnxRuntimeBackend } from "../src/index.js";
import { onnxRuntimeRelativePositions } from "../src/onnxruntime-positions.js";

const golden = (
  createRequire(import.meta.url)("@self-extend/core/golden/position-maps.json") as {
    cases: { group: number; window: number; length: number; map: number[][] }[];
  }
).cases;

describe("positions the exported attention graph uses", () => {
  it("reproduces every golden map, in one prefill chunk and in chunks of 5 with a past cache", async () => {
    const backend = createOnnxRuntimeBackend();
    for (const { group, window, length, map } of golden) {
      const config = { groupSize: group, neighborWindow: window };
      expect(Array.from(await backend.relativePositions!(config, length)), `G=${group} W=${window}`).toEqual(
        map.flat(),
      );
      // Later chunks see the keys of earlier ones through the past cache, as a session's do.
      expect(Array.from(await onnxRuntimeRelativePositions(config, length, 5))).toEqual(map.flat());
    }
  });
});
