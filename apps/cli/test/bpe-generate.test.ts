/**
 * Issue 16's generate proof: `self-extend generate --backend onnxruntime|webgpu` on a Llama 3
 * vocabulary file written by llama.cpp's gguf-py (F32 weights) gives the prompt text back from its
 * tokens (decode(encode(x)) == x, non-ASCII included) and the greedy tokens of `--backend
 * llama-cpp`, at four times the trained context with the Self-Extend settings the CLI plans.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
// The file comes from llama.cpp's gguf-py, which the llama-cpp package runs.
import { bpeModelFile } from "../../../packages/llama-cpp/test/gguf-py-models.js";
import { runCli } from "../src/index.js";
import { llama3BpeSpec } from "./bpe-model-specs.js";
import { captureTerminal } from "./capture-terminal.js";

async function cli(...args: string[]) {
  const terminal = captureTerminal();
  const code = await runCli(args, terminal);
  return { code, stdout: terminal.stdout, stderr: terminal.stderr };
}

interface GenerateOutput {
  readonly tokens: number[];
  readonly text: string;
  readonly promptTokens: number[];
  readonly promptText: string;
}

const trainedContext = llama3BpeSpec.trainedContext;
const maxTokens = 16;
// Numbers, whitespace runs, CJK, accents, right-to-left script, emoji (some outside the BMP).
const promptText = [1, 2, 3]
  .map(
    (paragraph) =>
      `${paragraph}. Self-Extend reads past trained context. 東京の夜は静かだ。` +
      `Ça marche très bien, naïve café! 🙂🚀 Zahlen: ${paragraph}.14159, ${paragraph * 2718} 281; ` +
      `ٱلسَّلَامُ عَلَيْكُمْ — Привет, мир!   tabs\tand  double  spaces.\n`,
  )
  .join("");

const folder = mkdtempSync(join(tmpdir(), "self-extend-bpe-generate-"));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

describe("self-extend generate on a Llama 3 vocabulary GGUF written by gguf-py", () => {
  it("round-trips the prompt text and gives llama.cpp's greedy tokens on ONNX Runtime and WebGPU at 4x the trained context", async () => {
    const model = bpeModelFile(folder, llama3BpeSpec, "llama3", "F32", 16);
    const flags = [
      "--model",
      model,
      "--prompt",
      promptText,
      "--max-tokens",
      String(maxTokens),
      "--json",
      "--echo-prompt",
    ];
    const outputs = new Map<string, GenerateOutput>();
    for (const backend of ["llama-cpp", "onnxruntime", "webgpu"]) {
      const { code, stdout, stderr } = await cli("generate", "--backend", backend, ...flags);
      expect(code, stderr).toBe(0);
      // The CLI planned Self-Extend for the prompt and the generated tokens together.
      expect(stderr).toMatch(/planned G = \d+, W = \d+/);
      outputs.set(backend, JSON.parse(stdout));
    }
    const llamaCpp = outputs.get("llama-cpp") as GenerateOutput;
    // About four trained contexts in all: a prompt of more than 3.5 L, with the generated tokens up to 4 L.
    expect(llamaCpp.promptTokens.length).toBeGreaterThan(3.5 * trainedContext);
    expect(llamaCpp.promptTokens.length + maxTokens).toBeLessThanOrEqual(4 * trainedContext);
    expect(llamaCpp.tokens).toHaveLength(maxTokens);
    // Not one token repeated: agreeing on it would say little about attention past the trained context.
    expect(new Set(llamaCpp.tokens).size).toBeGreaterThan(maxTokens / 2);
    for (const [backend, output] of outputs) {
      expect(output.promptText, backend).toBe(promptText);
      expect(output.promptTokens, backend).toEqual(llamaCpp.promptTokens);
      expect(output.tokens, backend).toEqual(llamaCpp.tokens);
    }
  });
});
