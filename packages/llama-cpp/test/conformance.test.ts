/**
 * The conformance suite (@self-extend/conformance) on this adapter: every case on every model
 * (the generated grid, the demo model, stories260K), position maps read from llama.cpp's KV cells,
 * exact mode counted and fast-prefill measured, with the tolerances and skips the adapter declares
 * (conformance/*.json, the suite's schemas).
 */
import { join } from "node:path";
import { readDeclaration } from "@self-extend/conformance";
import { describeConformance } from "@self-extend/conformance/vitest";
import { generateTinyModel, tinyModelSpec, writeLlamaGguf } from "@self-extend/models/node";
import { sharedPath, useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { conformanceDeclaration, createLlamaCppBackend, createSelfExtendContext } from "../src/index.js";

describeConformance("llama-cpp", () => createLlamaCppBackend({ threads: 1 }), {
  declaration: conformanceDeclaration,
  sharedFolder: sharedPath(),
});

// What users get instead of a skip: a clear refusal before llama.cpp runs anything, for whole
// models (an architecture the adapter cannot run) and for cases on a model (Self-Extend with W
// below Gemma 2's window).
describe("what the adapter declares it cannot run is refused", () => {
  const temporaryFolder = useTemporaryFolder("llama-cpp-conformance-");
  const skips = readDeclaration(conformanceDeclaration).skips ?? [];
  const skippedModels = skips.filter((skip) => skip.model?.startsWith("tiny:") && skip.case === undefined);
  const modelsWithSkippedCases = new Set(
    skips
      .filter((skip) => skip.model?.startsWith("tiny:gemma2") && skip.case !== undefined)
      .map((skip) => skip.model!.slice("tiny:".length)),
  );

  /** The grid model `name` as a GGUF file in this describe's temporary folder. */
  function writeGridModel(name: string): string {
    const path = join(temporaryFolder(), `${name}.gguf`);
    writeLlamaGguf(path, generateTinyModel(tinyModelSpec(name), 1));
    return path;
  }

  it("declares skipped models and skipped cases on a Gemma 2 grid model, each with its reason", () => {
    expect(skippedModels.length).toBeGreaterThan(0);
    expect(modelsWithSkippedCases.size).toBeGreaterThan(0);
  });

  for (const skip of skippedModels) {
    const spec = tinyModelSpec(skip.model!.slice("tiny:".length));
    it(`${spec.name}: refused with a clear error naming the architecture`, async () => {
      await expect(
        createSelfExtendContext({
          model: writeGridModel(spec.name),
          groupSize: 2,
          neighborWindow: 8,
          contextSize: 64,
          threads: 1,
        }),
      ).rejects.toThrow(spec.architecture);
    });
  }

  for (const name of modelsWithSkippedCases) {
    const spec = tinyModelSpec(name);
    it(`${name}: W = 16 below its window is refused, naming the window; G = 1 is not`, async () => {
      const path = writeGridModel(name);
      await expect(
        createSelfExtendContext({
          model: path,
          groupSize: 8,
          neighborWindow: 16,
          contextSize: 128,
          threads: 1,
        }),
      ).rejects.toThrow(`must be >= the model's sliding window (${spec.gemma2?.slidingWindowSize})`);
      const plain = await createSelfExtendContext({
        model: path,
        groupSize: 1,
        neighborWindow: 1,
        contextSize: 64,
        threads: 1,
      });
      await plain.dispose();
    });
  }
});
