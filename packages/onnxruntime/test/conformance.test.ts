/**
 * The conformance suite (@self-extend/conformance) on this adapter: every case on every model
 * (the generated grid, the demo model, stories260K), position maps read back from the exported
 * graph, with the tolerances the adapter declares (conformance/tolerances.json, the suite's schema).
 */
import { describeConformance } from "@self-extend/conformance/vitest";
import { generateTinyModel, tinyModelGrid } from "@self-extend/models";
import { sharedPath, useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { conformanceDeclaration, createOnnxRuntimeBackend, createOnnxRuntimeModel } from "../src/index.js";
import { compareLogits, tolerance } from "./tolerances.js";

const temporaryFolder = useTemporaryFolder("onnxruntime-conformance-");

describeConformance(
  "onnxruntime",
  () => createOnnxRuntimeBackend({ cacheFolder: temporaryFolder(), threads: 1 }),
  { declaration: conformanceDeclaration, sharedFolder: sharedPath() },
);

// The adapter's own check, outside the suite: the two graphs it exports must agree where they
// compute the same thing.
describe("the Self-Extend graph with G = 1 against the plain graph", () => {
  for (const spec of tinyModelGrid) {
    it(`${spec.name}: the same logits`, async () => {
      const weights = generateTinyModel(spec, 3);
      const model = createOnnxRuntimeModel(weights, { cacheFolder: temporaryFolder(), threads: 1 });
      const contextSize = 2 * spec.trainedContext;
      const prompt = Array.from(
        { length: contextSize },
        (_, index) => (index * 13 + 1) % spec.vocabularySize,
      );
      const plain = await model.createSession({
        selfExtend: { groupSize: 1, neighborWindow: 1 },
        contextSize,
      });
      const selfExtendG1 = await model.createSession({
        selfExtend: { groupSize: 1, neighborWindow: 8 },
        contextSize,
        attentionGraph: "self-extend",
      });
      expect(plain.attentionGraph).toBe("plain");
      expect(selfExtendG1.attentionGraph).toBe("self-extend");
      const a = await plain.evaluate(prompt, { logits: "all" });
      const b = await selfExtendG1.evaluate(prompt, { logits: "all" });
      const result = compareLogits(b.logits, a.logits, tolerance({ check: "self-extend-g1-against-plain" }));
      expect(result.worstExcess, `largest difference ${result.largestDifference}`).toBeLessThanOrEqual(0);
      await model.dispose();
    });
  }
});
