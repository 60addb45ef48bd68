/**
 * The adapter without its native bridge (not built, or disabled): exact mode still matches the
 * reference, reading log-softmax rows through node-llama-cpp's sampler;
 * llama.cpp-compatible mode is refused before any model is loaded, and relative positions (read
 * from llama.cpp's cells) are refused with the reason. Vitest runs each test file in
 * its own module graph, so disabling the bridge here does not reach the other files.
 */
import { join } from "node:path";
import { generateTinyModel, tinyModelSpec, writeLlamaGguf } from "@self-extend/models/node";
import { createReferenceModel } from "@self-extend/reference";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { beforeAll, describe, expect, it } from "vitest";
import { compareLogSoftmax, greedyRun, logSoftmaxRows, seededTokens, tolerance } from "./helpers.js";

process.env.SELF_EXTEND_DISABLE_NATIVE_BRIDGE = "1";
const { createLlamaCppBackend, createSelfExtendContext } = await import("../src/index.js");
const { NativeBridgeUnavailableError } = await import("../src/native-bridge.js");

const temporaryFolder = useTemporaryFolder("llama-cpp-without-bridge-");

describe.sequential("without the native bridge", () => {
  const spec = tinyModelSpec("llama-h16-gqa2");
  const weights = generateTinyModel(spec, 5);
  let path: string;
  beforeAll(() => {
    path = join(temporaryFolder(), "model.gguf");
    writeLlamaGguf(path, weights);
  });

  it("exact mode returns log-softmax rows that match the reference", async () => {
    const config = { groupSize: 4, neighborWindow: 32 };
    const prompt = seededTokens(2 * spec.trainedContext, spec.vocabularySize, 7);
    const contextSize = prompt.length + 32;
    const context = await createSelfExtendContext({ model: path, ...config, contextSize, threads: 1 });
    const reference = await createReferenceModel(weights).createSession({ selfExtend: config, contextSize });
    try {
      expect(context.logitKind).toBe("log-softmax");
      const ours = await greedyRun(context, prompt, 32);
      const theirs = await greedyRun(reference, prompt, 32);
      expect(ours.tokens).toEqual(theirs.tokens);
      // Rows are normalised: every row's probabilities sum to 1 in float32.
      const V = spec.vocabularySize;
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp(ours.promptRows[v]);
      expect(Math.abs(sum - 1)).toBeLessThan(1e-4);
      const comparison = compareLogSoftmax(logSoftmaxRows(theirs.promptRows, V), ours.promptRows, V);
      expect(comparison.maxDifference).toBeLessThanOrEqual(tolerance().atol);
    } finally {
      await context.dispose();
    }
  });

  it("llama.cpp-compatible mode is refused with the reason and the build command", async () => {
    const attempt = createSelfExtendContext({
      model: path,
      groupSize: 4,
      neighborWindow: 32,
      contextSize: 256,
      mode: "llama.cpp-compatible",
    });
    await expect(attempt).rejects.toBeInstanceOf(NativeBridgeUnavailableError);
    await expect(attempt).rejects.toThrow(/SELF_EXTEND_DISABLE_NATIVE_BRIDGE=1.*build-native-bridge\.mjs/);
  });

  it("refuses to report relative positions, which only llama.cpp's cells can tell, naming the bridge", async () => {
    const attempt = createLlamaCppBackend({ threads: 1 }).relativePositions!(
      { groupSize: 2, neighborWindow: 4 },
      10,
    );
    await expect(attempt).rejects.toBeInstanceOf(NativeBridgeUnavailableError);
    await expect(attempt).rejects.toThrow(/reading llama\.cpp's cell positions needs the native bridge/);
  });
});
