/**
 * The conformance suite on files quantized by llama.cpp's own llama-quantize (Q4_K_M: Q4_K with
 * Q6_K; Q6_K): llama.cpp is held to the per-weight-type tolerance its measured data gives
 * (conformance/tolerances.json, from conformance/quantized-weights.json), picked from the file's
 * matrix types, and passes; the reference compared with itself stays exact.
 */
import { loadConformanceCases, readDeclaration, runConformanceSuite } from "@self-extend/conformance";
import { createReferenceBackend } from "@self-extend/reference";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { conformanceDeclaration, createLlamaCppBackend } from "../src/index.js";
import { quantizedModel } from "./quantized-models.js";

const cases = loadConformanceCases().filter((testCase) => ["logits-2x", "greedy-4x"].includes(testCase.name));

describe("conformance on llama-quantize output", () => {
  const temporary = useTemporaryFolder("llama-cpp-quantized-conformance-");

  it.each([
    { type: "Q4_K_M", weightTypes: ["Q4_K", "Q6_K"], atol: 0.13 },
    { type: "Q6_K", weightTypes: ["Q6_K"], atol: 0.13 },
  ])("passes on a $type file with the tolerance of its weight types", async ({ type, weightTypes, atol }) => {
    const path = quantizedModel(temporary(), type, false);
    const { tolerances, skips } = readDeclaration(conformanceDeclaration);
    const report = await runConformanceSuite(
      [{ backend: createLlamaCppBackend(), tolerances, skips }, { backend: createReferenceBackend() }],
      { cases, userModelPath: path },
    );
    expect(report.summary).toMatchObject({ failed: 0, notAvailable: 0 });
    const llamaCpp = report.results.filter((result) => result.backend === "llama-cpp");
    expect(llamaCpp).toHaveLength(2);
    for (const row of llamaCpp) {
      expect(row.weightTypes).toEqual(weightTypes);
      expect(row.tolerance?.atol).toBe(atol);
    }
    // llama.cpp's quantized arithmetic is visible (it is not the reference's float arithmetic).
    const logits = llamaCpp.find((row) => row.tier === "logits");
    expect(logits?.maxAbsLogitDiff).toBeGreaterThan(0.01);
  });
});
