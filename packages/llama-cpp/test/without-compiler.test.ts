/**
 * A machine without a C++ compiler (CXX names one that does not exist) and an empty cache: the
 * first-use build fails, the adapter says why in one line and keeps working in exact mode with
 * log-softmax rows, and llama.cpp-compatible mode is refused with that reason. Vitest runs each
 * test file in its own module graph, so the settings here do not reach the other files.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateTinyModel, tinyModelSpec, writeLlamaGguf } from "@self-extend/models/node";
import { createReferenceModel } from "@self-extend/reference";
import { afterAll, describe, expect, it } from "vitest";
import { greedyRun, seededTokens } from "./helpers.js";

const workFolder = mkdtempSync(join(tmpdir(), "llama-cpp-without-compiler-"));
const cacheRoot = join(workFolder, "cache");
process.env.SELF_EXTEND_LLAMA_CPP_CACHE = cacheRoot;
process.env.CXX = "self-extend-no-such-compiler";
delete process.env.SELF_EXTEND_DISABLE_NATIVE_BRIDGE;
const { createSelfExtendContext } = await import("../src/index.js");
const { NativeBridgeUnavailableError } = await import("../src/native-bridge.js");

afterAll(() => rmSync(workFolder, { recursive: true, force: true }));

describe.sequential("without a C++ compiler", () => {
  const spec = tinyModelSpec("llama-h8-mha");
  const weights = generateTinyModel(spec, 5);
  const modelPath = join(workFolder, "model.gguf");
  writeLlamaGguf(modelPath, weights);

  it("llama.cpp-compatible mode is refused with the one-line reason, before the model loads", async () => {
    const attempt = createSelfExtendContext({
      model: modelPath,
      groupSize: 4,
      neighborWindow: 32,
      contextSize: 256,
      mode: "llama.cpp-compatible",
    });
    await expect(attempt).rejects.toBeInstanceOf(NativeBridgeUnavailableError);
    const message = await attempt.catch((error: Error) => error.message);
    expect(message).toMatch(
      /^mode "llama\.cpp-compatible" \(llama_memory_seq_div\) needs the native bridge, which could not be built: no C\+\+ compiler: `self-extend-no-such-compiler` was not found/,
    );
    expect(message).not.toContain("\n");
    // The failed build left nothing half-written in the cache.
    expect(existsSync(cacheRoot) ? readdirSync(cacheRoot) : []).toEqual([]);
  });

  it("exact mode still works, with log-softmax rows", async () => {
    const config = { groupSize: 4, neighborWindow: 32 };
    const prompt = seededTokens(2 * spec.trainedContext, spec.vocabularySize, 7);
    const contextSize = prompt.length + 8;
    const context = await createSelfExtendContext({ model: modelPath, ...config, contextSize, threads: 1 });
    const reference = await createReferenceModel(weights).createSession({ selfExtend: config, contextSize });
    try {
      expect(context.logitKind).toBe("log-softmax");
      const ours = await greedyRun(context, prompt, 8);
      const theirs = await greedyRun(reference, prompt, 8);
      expect(ours.tokens).toEqual(theirs.tokens);
      // Normalised rows: the last prompt row's probabilities sum to 1 in float32.
      const V = spec.vocabularySize;
      const last = ours.promptRows.subarray((prompt.length - 1) * V);
      let sum = 0;
      for (const value of last) sum += Math.exp(value);
      expect(Math.abs(sum - 1)).toBeLessThan(1e-4);
    } finally {
      await context.dispose();
    }
  });
});
