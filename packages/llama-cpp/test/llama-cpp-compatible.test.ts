/**
 * llama.cpp-compatible mode against llama.cpp itself: llama-completion (built from the llama.cpp
 * release node-llama-cpp bundles, linked to the same prebuilt libraries) run greedily with
 * --grp-attn-n/--grp-attn-w, and our mode with the same G, W and --batch-size, must print the
 * same text. Also shown: llama.cpp's seq_div re-rotates keys differently from seq_add-based
 * position division, so this mode cannot be built from node-llama-cpp's public calls.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { largestUsableContext } from "@self-extend/core";
import { importLlama2c } from "@self-extend/models/node";
import { sharedModelPaths, useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { createSelfExtendContext, describeModelFile } from "../src/index.js";
import { runLlamaCompletion } from "./llama-completion.js";

const temporaryFolder = useTemporaryFolder("llama-cpp-compatible-");
const demoModelPath = join(import.meta.dirname, "..", "..", "demo-model", "demo-model.gguf");

function stories260K(): string {
  const path = join(temporaryFolder(), "stories260K.gguf");
  importLlama2c({
    checkpointPath: sharedModelPaths.stories260K,
    tokenizerPath: sharedModelPaths.tokenizer,
    outPath: path,
  });
  return path;
}

async function generateWithMode(
  model: string,
  prompt: string,
  options: { groupSize: number; neighborWindow: number; batchSize: number; predict: number },
  mode: "llama.cpp-compatible" | "exact" = "llama.cpp-compatible",
): Promise<string> {
  // llama-completion runs with -c 2048; our context holds at most what (G, W) can reach, since a
  // larger one is refused at creation. The prompt and the answer fit in both.
  const { trainedContext } = describeModelFile(model);
  const context = await createSelfExtendContext({
    model,
    groupSize: options.groupSize,
    neighborWindow: options.neighborWindow,
    contextSize: Math.min(2048, largestUsableContext(trainedContext, options)),
    threads: 1,
    mode,
    llamaCppBatchSize: options.batchSize,
  });
  try {
    let text = "";
    for await (const piece of context.generateText(prompt, { maxTokens: options.predict })) text += piece;
    return text;
  } finally {
    await context.dispose();
  }
}

describe.sequential("llama.cpp-compatible mode against llama-completion", () => {
  // TinyStories validation text, a prompt of ~3x stories260K's trained context (512) and ~4x the
  // demo model's (256); batch sizes that make llama-completion compress between prompt chunks.
  const prompt = readFileSync(sharedModelPaths.validationText, "utf8").slice(0, 3000);
  const cases = [
    { model: "stories260K", groupSize: 4, neighborWindow: 128, batchSize: 2048 },
    { model: "stories260K", groupSize: 4, neighborWindow: 128, batchSize: 64 },
    { model: "stories260K", groupSize: 8, neighborWindow: 64, batchSize: 300 },
    { model: "demo", groupSize: 8, neighborWindow: 32, batchSize: 100 },
  ] as const;
  for (const testCase of cases) {
    it(`${testCase.model}, G=${testCase.groupSize} W=${testCase.neighborWindow}, --batch-size ${testCase.batchSize}: the same 64 greedy tokens`, async () => {
      const { model: name, ...settings } = testCase;
      const model = name === "demo" ? demoModelPath : stories260K();
      const promptFile = join(temporaryFolder(), "prompt.txt");
      writeFileSync(promptFile, prompt);
      const predict = 64;
      const theirs = runLlamaCompletion({ model, promptFile, contextSize: 2048, predict, ...settings });
      const ours = await generateWithMode(model, prompt, { ...settings, predict });
      // llama-completion ends its output with a blank line of its own; without it the output was
      // cut short (see llama-completion-log-flush.cc), not different.
      expect(theirs.endsWith("\n\n")).toBe(true);
      expect(ours.length).toBeGreaterThan(20);
      expect(ours).toBe(theirs.replace(/\n\n$/, ""));
    });
  }

  it("llama.cpp's seq_div rotates keys unlike seq_add: same positions, different outputs", async () => {
    // If seq_div re-rotated each key by its position change (as seq_add does), replacing it by
    // per-position seq_adds would change nothing; llama.cpp's pos_div records the opposite sign.
    const model = stories260K();
    const options = { groupSize: 4, neighborWindow: 128, batchSize: 2048, predict: 32 };
    const withSeqDiv = await generateWithMode(model, prompt, options);
    const { NativeSequence } = await import("../src/node-llama-cpp-internals.js");
    const original = NativeSequence.prototype.divide;
    NativeSequence.prototype.divide = function (start: number, end: number, divisor: number) {
      for (let position = start; position < end; position++) {
        this.shift(position, position + 1, Math.floor(position / divisor) - position);
      }
    };
    let withSeqAdd: string;
    try {
      withSeqAdd = await generateWithMode(model, prompt, options);
    } finally {
      NativeSequence.prototype.divide = original;
    }
    const exact = await generateWithMode(model, prompt, options, "exact");
    console.info(
      `stories260K G4 W128, 32 greedy tokens after ${prompt.length} characters:\n  llama.cpp seq_div: ${JSON.stringify(withSeqDiv)}\n  seq_add division:  ${JSON.stringify(withSeqAdd)}\n  exact:             ${JSON.stringify(exact)}`,
    );
    expect(withSeqAdd).not.toBe(withSeqDiv);
  });
});
