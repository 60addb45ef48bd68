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

// What users get instead of a skipped model: a clear refusal before llama.cpp sees the file.
describe("models the adapter declares it cannot run", () => {
  const temporaryFolder = useTemporaryFolder("llama-cpp-conformance-");
  const skipped = (readDeclaration(conformanceDeclaration).skips ?? []).filter(
    (skip) => skip.model?.startsWith("tiny:") && skip.case === undefined,
  );

  it("declares at least one, each with its reason", () => {
    expect(skipped.length).toBeGreaterThan(0);
  });

  for (const skip of skipped) {
    const spec = tinyModelSpec(skip.model!.slice("tiny:".length));
    it(`${spec.name}: refused with a clear error naming the architecture`, async () => {
      const path = join(temporaryFolder(), `${spec.name}.gguf`);
      writeLlamaGguf(path, generateTinyModel(spec, 1));
      await expect(
        createSelfExtendContext({
          model: path,
          groupSize: 2,
          neighborWindow: 8,
          contextSize: 64,
          threads: 1,
        }),
      ).rejects.toThrow(spec.architecture);
    });
  }
});

// Cases skipped on one model (Self-Extend with W below Gemma 2's window): the same refusal.
describe("cases the adapter declares it cannot run on a model", () => {
  const temporaryFolder = useTemporaryFolder("llama-cpp-conformance-cases-");
  const models = new Set(
    (readDeclaration(conformanceDeclaration).skips ?? [])
      .filter((skip) => skip.model?.startsWith("tiny:gemma2") && skip.case !== undefined)
      .map((skip) => skip.model!.slice("tiny:".length)),
  );

  it("declares some, on a Gemma 2 grid model", () => {
    expect(models.size).toBeGreaterThan(0);
  });

  for (const name of models) {
    const spec = tinyModelSpec(name);
    it(`${name}: W = 16 below its window is refused, naming the window; G = 1 is not`, async () => {
      const path = join(temporaryFolder(), `${name}.gguf`);
      writeLlamaGguf(path, generateTinyModel(spec, 1));
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
