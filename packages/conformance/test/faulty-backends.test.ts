import { join } from "node:path";
import { SelfExtendConfigError, type SessionOptionsV1 } from "@self-extend/core";
import { generateTinyModel, tinyModelSpec, writeLlamaGguf } from "@self-extend/models/node";
import { createReferenceBackend } from "@self-extend/reference";
import { sharedPath, useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import {
  type ConformanceCase,
  type ConformanceResult,
  loadConformanceCases,
  resolveModelTolerance,
  runConformanceSuite,
  type ToleranceTable,
} from "../src/index.js";
import {
  floatDivisionBackend,
  laggingNeighborShiftBackend,
  missingGroupedQueryMappingBackend,
  offByOneWindowBackend,
  wrongRopeLayoutBackend,
} from "./faulty-backends.js";

const cases = loadConformanceCases();
const caseNamed = (name: string) => cases.find((testCase) => testCase.name === name) as ConformanceCase;

function statusOf(results: readonly ConformanceResult[], backend: string, tier: string) {
  return results
    .filter((result) => result.backend === backend && result.tier === tier)
    .map((result) => result.status);
}

describe("the suite catches real mistakes", () => {
  const temporary = useTemporaryFolder();

  it("fails position bugs at tier 1 and passes a correct backend", async () => {
    const report = await runConformanceSuite(
      [
        { backend: offByOneWindowBackend() },
        { backend: floatDivisionBackend() },
        { backend: laggingNeighborShiftBackend() },
        { backend: createReferenceBackend() },
      ],
      { cases: [caseNamed("position-maps")] },
    );
    const byBackend = new Map(report.results.map((result) => [result.backend, result]));
    expect(byBackend.get("off-by-one-window")?.status).toBe("fail");
    expect(byBackend.get("off-by-one-window")?.reason).toMatch(/G=2 W=4 N=10: r\(\d+, \d+\)/);
    expect(byBackend.get("float-division")?.status).toBe("fail");
    // A KV-cache scheduler that moves the neighbor block one query late: the first query past
    // the window at a group boundary (i = 5) sees its keys one position too far.
    expect(byBackend.get("lagging-neighbor-shift")?.status).toBe("fail");
    expect(byBackend.get("lagging-neighbor-shift")?.reason).toBe("G=2 W=4 N=10: r(5, 0) = 5, golden 4");
    expect(byBackend.get("core")?.status).toBe("pass");
    expect(byBackend.get("reference")?.status).toBe("pass");
    expect(report.summary).toMatchObject({ passed: 2, failed: 3 });
  });

  it("reports a measured-only run's wrong positions as a deviation, not a failure", async () => {
    const report = await runConformanceSuite(
      [{ backend: laggingNeighborShiftBackend(), informational: { why: "measured only" } }],
      { cases: [caseNamed("position-maps")] },
    );
    const row = report.results.find((result) => result.backend === "lagging-neighbor-shift");
    expect(row).toMatchObject({ status: "deviation", informational: true, note: "measured only" });
    expect(report.summary).toMatchObject({ passed: 1, failed: 0, informational: 1 });
  });

  it("fails a wrong RoPE layout and a missing GQA head mapping at tier 2, and the right models only", async () => {
    const report = await runConformanceSuite(
      [
        { backend: wrongRopeLayoutBackend() },
        { backend: missingGroupedQueryMappingBackend() },
        { backend: createReferenceBackend() },
      ],
      {
        cases: [caseNamed("logits-2x")],
        modelIds: ["tiny:llama-h16-gqa2", "tiny:qwen2-h16-mha-bias"],
        cacheFolder: temporary(),
      },
    );
    const result = (backend: string, model: string) =>
      report.results.find((entry) => entry.backend === backend && entry.model === model)!;
    expect(result("wrong-rope-layout", "tiny:llama-h16-gqa2").status).toBe("fail");
    expect(result("wrong-rope-layout", "tiny:qwen2-h16-mha-bias").status).toBe("fail");
    expect(result("wrong-rope-layout", "tiny:llama-h16-gqa2").maxAbsLogitDiff).toBeGreaterThan(1e-2);
    // With one query head per kv head the mapping cannot be wrong; with two it must be caught.
    expect(result("missing-gqa-mapping", "tiny:llama-h16-gqa2").status).toBe("fail");
    expect(result("missing-gqa-mapping", "tiny:qwen2-h16-mha-bias").status).toBe("pass");
    expect(result("reference", "tiny:llama-h16-gqa2").status).toBe("pass");
    expect(result("reference", "tiny:llama-h16-gqa2").maxAbsLogitDiff).toBe(0);
    // Cross-adapter rows compare the faulty backends with the reference too.
    expect(statusOf(report.results, "wrong-rope-layout+reference", "logits")).toEqual(["fail", "fail"]);
  });

  it("reports the first divergent greedy token of a wrong backend at tier 3", async () => {
    const report = await runConformanceSuite([{ backend: wrongRopeLayoutBackend() }], {
      cases: [caseNamed("greedy-2x")],
      modelIds: ["tiny:llama-h8-mha"],
      cacheFolder: temporary(),
    });
    const [result] = report.results;
    expect(result.status).toBe("fail");
    expect(result.firstDivergentToken).not.toBeNull();
    expect(result.reason).toContain(`greedy token ${result.firstDivergentToken}`);
  });

  it("fails a logits comparison that could not fail: one-hot rows leave nothing above the floor", async () => {
    // Tied embeddings of standard deviation 400 give logits in the thousands: every row is one-hot, and a
    // log-probability comparison with a floor sees only the top token (0 on both sides), so any
    // backend that keeps the argmax would pass it. The suite must say it cannot tell.
    const path = join(temporary(), "one-hot.gguf");
    writeLlamaGguf(
      path,
      generateTinyModel(
        { ...tinyModelSpec("llama-h8-mha"), tiedEmbeddings: true, embeddingStandardDeviation: 400 },
        3,
      ),
    );
    const run = (tolerances: ToleranceTable) =>
      runConformanceSuite([{ backend: createReferenceBackend() }], {
        cases: [caseNamed("logits-2x")],
        userModelPath: path,
        modelIds: ["user"],
        cacheFolder: temporary(),
        tolerances,
      });
    const floored = (await run({ default: { atol: 0.001, rtol: 0, logProbabilityFloor: -60 } })).results[0];
    expect(floored.status).toBe("fail");
    expect(floored.reason).toMatch(
      /^nothing to compare: at all \d+ positions only the top token's log-probability is above the floor \(-60\)/,
    );
    // Without a floor every entry is compared, and the same backend passes.
    const unfloored = (await run({ default: { atol: 0.001, rtol: 0 } })).results[0];
    expect(unfloored.status).toBe("pass");
  });

  it("still fails a wrong backend held to a quantized-weights tolerance", async () => {
    // The loosest per-weight-type tolerance llama.cpp ships (Q6_K: 0.13, greedy near ties allowed),
    // applied here to the tiny models' F32 matrices so that a faulty backend is held to it.
    const quantizedTolerances: ToleranceTable = {
      default: { atol: 0.001, rtol: 0 },
      overrides: [
        { weightType: "F32", atol: 0.13, rtol: 0, greedyNearTies: true, reason: "as llama.cpp's Q6_K" },
      ],
    };
    const report = await runConformanceSuite([{ backend: wrongRopeLayoutBackend() }], {
      cases: [caseNamed("logits-2x"), caseNamed("greedy-2x")],
      modelIds: ["tiny:llama-h8-mha"],
      cacheFolder: temporary(),
      tolerances: quantizedTolerances,
    });
    const [logits, greedy] = report.results;
    expect(logits).toMatchObject({ status: "fail", weightTypes: ["F32"], tolerance: { atol: 0.13 } });
    expect(logits.maxAbsLogitDiff).toBeGreaterThan(0.13);
    // Parting from the reference where its two candidates are far apart is no near tie.
    expect(greedy).toMatchObject({ status: "fail", tolerance: { atol: 0.13, greedyNearTies: true } });
    expect(greedy.reason).toMatch(/the reference's gap there is [\d.e+-]+ > 2 atol 0\.26/);
  });

  it("holds a model with several weight types to the loosest of their tolerances", () => {
    const table: ToleranceTable = {
      default: { atol: 0.001, rtol: 0 },
      overrides: [
        { backend: "llama-cpp", weightType: "Q4_K", atol: 0.11, reason: "measured" },
        { backend: "llama-cpp", weightType: "Q6_K", atol: 0.13, greedyNearTies: true, reason: "measured" },
      ],
    };
    expect(resolveModelTolerance(table, { backend: "llama-cpp" }, ["Q4_K", "Q6_K"])).toEqual({
      atol: 0.13,
      rtol: 0,
      greedyNearTies: true,
    });
    expect(resolveModelTolerance(table, { backend: "llama-cpp" }, ["Q4_K"]).atol).toBe(0.11);
    // F32 files and other runtimes keep the default.
    expect(resolveModelTolerance(table, { backend: "llama-cpp" }, ["F32"])).toEqual({ atol: 0.001, rtol: 0 });
    expect(resolveModelTolerance(table, { backend: "onnxruntime" }, ["Q4_K", "Q6_K"]).atol).toBe(0.001);
  });

  it("picks an activation's tolerance for models using it, the loosest of it and the weight types'", () => {
    const table: ToleranceTable = {
      default: { atol: 0.001, rtol: 0 },
      overrides: [
        { backend: "llama-cpp", activation: "gelu-tanh", atol: 0.006, reason: "fp16 GELU table" },
        { backend: "llama-cpp", weightType: "Q4_K", atol: 0.11, reason: "measured" },
      ],
    };
    expect(resolveModelTolerance(table, { backend: "llama-cpp" }, ["F32"], "gelu-tanh").atol).toBe(0.006);
    expect(resolveModelTolerance(table, { backend: "llama-cpp" }, ["F32"], "silu").atol).toBe(0.001);
    expect(resolveModelTolerance(table, { backend: "llama-cpp" }, ["Q4_K"], "gelu-tanh").atol).toBe(0.11);
    expect(resolveModelTolerance(table, { backend: "webgpu" }, ["F32"], "gelu-tanh").atol).toBe(0.001);
  });

  it("reports an unavailable backend as not available with its reason, never as passed", async () => {
    const reference = createReferenceBackend();
    const missing = {
      ...reference,
      name: "missing-runtime",
      checkAvailability: async () => ({ available: false, reason: "no runtime here" }),
    };
    const report = await runConformanceSuite([{ backend: missing }], {
      cases: [caseNamed("logits-2x")],
      modelIds: ["tiny:llama-h8-mha"],
      cacheFolder: temporary(),
    });
    expect(report.results.map((result) => [result.status, result.reason])).toEqual([
      ["not-available", "no runtime here"],
    ]);
    expect(report.summary).toEqual({ passed: 0, failed: 0, notAvailable: 1, skipped: 0, informational: 0 });
  });

  it("reports settings a backend refuses at session creation (SelfExtendConfigError) as not available, other errors as failures", async () => {
    const reference = createReferenceBackend();
    const refusing = (name: string, makeError: () => Error) => ({
      ...reference,
      name,
      loadModel: async (source: { path: string }) => {
        const model = await reference.loadModel(source);
        return {
          info: model.info,
          createSession: async (options: SessionOptionsV1) => {
            if ((options.selfExtend?.groupSize ?? 1) > 1) throw makeError();
            return model.createSession(options);
          },
          dispose: () => model.dispose(),
        };
      },
    });
    const report = await runConformanceSuite(
      [
        {
          backend: refusing(
            "refusing",
            () => new SelfExtendConfigError("neighborWindow", 8, "must be >= 40 here"),
          ),
        },
        { backend: refusing("crashing", () => new Error("crashed at creation")) },
      ],
      {
        cases: [caseNamed("logits-2x"), caseNamed("logits-plain-2x")],
        modelIds: ["tiny:llama-h8-mha"],
        cacheFolder: temporary(),
        crossCompare: false,
      },
    );
    const rows = report.results.map((result) => [result.backend, result.case, result.status]);
    expect(rows).toEqual([
      ["refusing", "logits-2x@tiny:llama-h8-mha", "not-available"],
      ["crashing", "logits-2x@tiny:llama-h8-mha", "fail"],
      ["refusing", "logits-plain-2x@tiny:llama-h8-mha", "pass"],
      ["crashing", "logits-plain-2x@tiny:llama-h8-mha", "pass"],
    ]);
    expect(report.results[0].reason).toMatch(
      /^the backend refuses these settings for this model: neighborWindow = 8 is invalid: must be >= 40 here$/,
    );
    expect(report.summary).toEqual({ passed: 2, failed: 1, notAvailable: 1, skipped: 0, informational: 0 });
  });

  it("counts an informational run apart, unless it throws", async () => {
    const reference = createReferenceBackend();
    const throwing = {
      ...reference,
      name: "throwing-runtime",
      loadModel: async () => {
        throw new Error("crashed");
      },
    };
    const informational = { why: "measured only" };
    const report = await runConformanceSuite(
      [
        { backend: wrongRopeLayoutBackend(), informational },
        { backend: throwing, informational },
        { backend: reference },
      ],
      {
        cases: [caseNamed("logits-2x")],
        modelIds: ["tiny:llama-h8-mha"],
        cacheFolder: temporary(),
        crossCompare: false,
      },
    );
    const byBackend = new Map(report.results.map((result) => [result.backend, result]));
    // Measured and out of tolerance, but not counted.
    expect(byBackend.get("wrong-rope-layout")).toMatchObject({
      status: "deviation",
      informational: true,
      note: "measured only",
    });
    // An error is a failure, informational or not.
    expect(byBackend.get("throwing-runtime")?.status).toBe("fail");
    expect(byBackend.get("throwing-runtime")?.informational).toBeUndefined();
    expect(report.summary).toEqual({ passed: 1, failed: 1, notAvailable: 0, skipped: 0, informational: 1 });
  });

  it("runs stories260K from the shared folder", async () => {
    const report = await runConformanceSuite([{ backend: createReferenceBackend() }], {
      cases: [caseNamed("logits-2x")],
      modelIds: ["stories260K"],
      sharedFolder: sharedPath(),
      cacheFolder: temporary(),
    });
    expect(report.results.map((result) => result.status)).toEqual(["pass"]);
  });
});
