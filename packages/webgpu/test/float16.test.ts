/**
 * float16 weights (`weightPrecision: "float16"`, needs `shader-f16`) against the float32 path and
 * the float64 reference, on the demo model. The CPU adapter here with shader-f16 is Mesa 25's
 * lavapipe from bookworm-backports, which scripts/install-ci-dependencies.sh unpacks into
 * .cache/lavapipe; no skip: without it this fails, naming the script. Dawn's OpenGL ES adapter
 * (llvmpipe) has no shader-f16 and must fall back to float32, saying so.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { adapterTolerance, largestDifference, readDeclaration } from "@self-extend/conformance";
import { argmax, planSelfExtend, type SelfExtendModelV1 } from "@self-extend/core";
import { generateTinyModel, readGguf, tinyModelGrid, tokenizerFromGguf } from "@self-extend/models/node";
import { createReferenceBackend } from "@self-extend/reference";
import { repositoryRoot, sharedModelPaths } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { conformanceDeclaration, createWebGpuBackend, requestWebGpuDevice } from "../src/index.js";
import { requestLavapipeDevice } from "./lavapipe-device.js";

const demoModelPath = join(repositoryRoot(), "packages", "demo-model", "demo-model.gguf");

interface Run {
  promptLogits: Float32Array;
  /** Logits before each generated token, teacher-forced on the reference's greedy tokens. */
  stepLogits: Float32Array[];
}

/** Prefill, then decode the given tokens (teacher forcing), keeping every row of logits. */
async function run(
  model: SelfExtendModelV1,
  prompt: number[],
  forced: readonly number[],
  selfExtend: { groupSize: number; neighborWindow: number },
): Promise<Run> {
  const session = await model.createSession({ selfExtend, contextSize: prompt.length + forced.length });
  try {
    const evaluation = await session.evaluate(prompt, { logits: "all" });
    const size = evaluation.vocabularySize;
    const stepLogits: Float32Array[] = [evaluation.logits.slice((prompt.length - 1) * size)];
    for (const token of forced.slice(0, -1)) stepLogits.push(await session.decode(token));
    return { promptLogits: evaluation.logits, stepLogits };
  } finally {
    await session.dispose();
  }
}

describe("float16 weights", () => {
  it("without shader-f16 (Dawn's OpenGL ES on llvmpipe) float16 falls back to float32 and says why", async () => {
    const context = await requestWebGpuDevice({ nodeBackends: ["opengles"] });
    try {
      expect(context.float16).toBe(false);
      const backend = createWebGpuBackend({ context, weightPrecision: "float16" });
      const model = await backend.createModel(generateTinyModel(tinyModelGrid[0], 3));
      expect(model.weightPrecision).toBe("float32");
      expect(model.weightPrecisionReason).toMatch(/no shader-f16, so float32/);
      await model.dispose();
    } finally {
      context.destroy();
    }
  });

  it("demo model on lavapipe: 3 x L prompt with Self-Extend, 64 tokens, within the float16 tolerance of the reference", async () => {
    const tolerances = readDeclaration(conformanceDeclaration).tolerances!;
    const tolerance = adapterTolerance(tolerances, {
      backend: "webgpu",
      check: "float16-weights",
      model: "demo",
    });
    const context = await requestLavapipeDevice();
    try {
      expect(context.float16, `${context.adapterDescription} has no shader-f16`).toBe(true);
      const backend = createWebGpuBackend({ context });
      const model32 = await backend.loadModel({ path: demoModelPath });
      const model16 = await backend.loadModel({ path: demoModelPath }, { weightPrecision: "float16" });
      expect(model32.weightPrecision).toBe("float32");
      expect(model16.weightPrecision).toBe("float16");
      const reference = await createReferenceBackend().loadModel({ path: demoModelPath });

      const gguf = readGguf(demoModelPath);
      const tokenizer = tokenizerFromGguf(gguf);
      gguf.close();
      const { trainedContext } = reference.info;
      const text = readFileSync(sharedModelPaths.validationText, "utf8").slice(0, 20000);
      const prompt = tokenizer.encode(text, { addBos: true }).slice(0, 3 * trainedContext);
      // The run the float16-weights tolerance was measured on: 64 tokens after a 3L prompt.
      const steps = 64;
      const { config } = planSelfExtend({ trainedContext, targetContext: prompt.length + steps });

      // The reference's own greedy continuation, then every path teacher-forced on it.
      const session = await reference.createSession({
        selfExtend: config,
        contextSize: prompt.length + steps,
      });
      const greedy: number[] = [];
      let logits = (await session.evaluate(prompt)).logits;
      for (let step = 0; step < steps; step++) {
        greedy.push(argmax(logits));
        if (step < steps - 1) logits = await session.decode(greedy[step]);
      }
      await session.dispose();
      const [expected, float32, float16] = [
        await run(reference, prompt, greedy, config),
        await run(model32, prompt, greedy, config),
        await run(model16, prompt, greedy, config),
      ];
      const stats = (actual: Run, against: Run) => ({
        prompt: largestDifference(actual.promptLogits, against.promptLogits),
        decode: Math.max(
          ...actual.stepLogits.map((row, step) => largestDifference(row, against.stepLogits[step])),
        ),
        agreement: actual.stepLogits.filter((row, step) => argmax(row) === argmax(against.stepLogits[step]))
          .length,
        promptAgreement: (() => {
          const size = reference.info.vocabularySize;
          let agree = 0;
          for (let row = 0; row < prompt.length; row++)
            if (
              argmax(actual.promptLogits, row * size, size) === argmax(against.promptLogits, row * size, size)
            )
              agree++;
          return agree;
        })(),
      });
      const f16VsReference = stats(float16, expected);
      const f32VsReference = stats(float32, expected);
      const f16VsF32 = stats(float16, float32);
      const line = (name: string, s: ReturnType<typeof stats>) =>
        `${name}: largest |logit difference| prompt ${s.prompt.toExponential(2)}, decode ${s.decode.toExponential(2)}; argmax agreement prompt ${s.promptAgreement}/${prompt.length}, greedy ${s.agreement}/${steps}`;
      console.log(
        `${context.adapterDescription}; demo model, ${prompt.length}-token prompt, G = ${config.groupSize}, W = ${config.neighborWindow}\n` +
          [
            line("float16 vs reference", f16VsReference),
            line("float32 vs reference", f32VsReference),
            line("float16 vs float32", f16VsF32),
          ].join("\n"),
      );
      // Own greedy generation of the float16 path equals the reference's.
      const own = await model16.createSession({ selfExtend: config, contextSize: prompt.length + steps });
      const ownTokens: number[] = [];
      logits = (await own.evaluate(prompt)).logits;
      for (let step = 0; step < steps; step++) {
        ownTokens.push(argmax(logits));
        if (step < steps - 1) logits = await own.decode(ownTokens[step]);
      }
      await own.dispose();
      expect(ownTokens, "float16 greedy tokens against the reference").toEqual(greedy);
      expect(f16VsReference.prompt).toBeLessThanOrEqual(tolerance.atol);
      expect(f16VsReference.decode).toBeLessThanOrEqual(tolerance.atol);
      // The float32 path on this adapter keeps the float32 budget.
      const float32Budget = adapterTolerance(tolerances, { backend: "webgpu", model: "demo" }).atol;
      expect(f32VsReference.prompt).toBeLessThanOrEqual(float32Budget);
      expect(f32VsReference.decode).toBeLessThanOrEqual(float32Budget);
      await model32.dispose();
      await model16.dispose();
    } finally {
      context.destroy();
    }
  });
});
