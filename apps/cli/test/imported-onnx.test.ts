/**
 * `self-extend generate` on a user's own ONNX export (issue 18): the command-line path from a
 * folder written by Optimum to greedy tokens, checked against the PyTorch Self-Extend oracle of
 * @self-extend/onnxruntime's test files (tools/onnx-exports/oracle.py), not against our own code.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createTokenizerFromJson } from "@self-extend/models";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { runCli } from "../src/index.js";
import { captureTerminal } from "./capture-terminal.js";

const fixtures = join(import.meta.dirname, "../../../packages/onnxruntime/test/fixtures/imported");
const exportFolder = join(fixtures, "optimum/llama");
const oracle = JSON.parse(readFileSync(join(fixtures, "oracle/llama.json"), "utf8")) as {
  prompt_tokens: number[];
  greedy_tokens: number[];
  group_size: number;
  neighbor_window: number;
};

async function cli(...args: string[]) {
  const terminal = captureTerminal();
  const code = await runCli(args, terminal);
  return { code, stdout: terminal.stdout, stderr: terminal.stderr };
}

describe("self-extend conformance --backend onnxruntime --model <ONNX export>", () => {
  const temporary = useTemporaryFolder("cli-imported-onnx-");

  // The rewritten graph on onnxruntime against the reference running the weights read from the
  // graph's initializers (written once into a GGUF): every case of the suite passes.
  it.each(["optimum/qwen2", "genai/phi3", "transformersjs/llama"])("passes on %s", async (path) => {
    const { code, stdout } = await cli(
      "conformance",
      "--backend",
      "onnxruntime",
      "--model",
      join(fixtures, path),
      "--cache",
      temporary(),
      "--json",
    );
    const report = JSON.parse(stdout) as {
      summary: { passed: number; failed: number; notAvailable: number };
      results: { backend: string; case: string; status: string }[];
    };
    expect(report.summary).toMatchObject({ failed: 0, notAvailable: 0 });
    const onUserModel = report.results.filter((row) => row.case.endsWith("@user"));
    expect(onUserModel.map((row) => row.case).sort()).toEqual([
      "greedy-1x@user",
      "greedy-2x@user",
      "greedy-4x@user",
      "logits-2x@user",
      "logits-plain-2x@user",
    ]);
    expect(code).toBe(0);
  });
});

describe("self-extend generate --model <ONNX export>", () => {
  it("gives the PyTorch oracle's 128 greedy tokens at 4x the trained context", async () => {
    // The oracle's prompt as text; the export's own tokenizer.json must give back the same ids.
    const tokenizer = createTokenizerFromJson(
      JSON.parse(readFileSync(join(exportFolder, "tokenizer.json"), "utf8")),
      JSON.parse(readFileSync(join(exportFolder, "tokenizer_config.json"), "utf8")),
    );
    const text = tokenizer.decode(oracle.prompt_tokens);
    expect(tokenizer.encode(text, { addBos: true })).toEqual(oracle.prompt_tokens);
    const { code, stdout, stderr } = await cli(
      "generate",
      "--backend",
      "onnxruntime",
      "--model",
      exportFolder,
      "--prompt",
      text,
      "--max-tokens",
      String(oracle.greedy_tokens.length),
      "--group",
      String(oracle.group_size),
      "--window",
      String(oracle.neighbor_window),
      "--json",
    );
    expect(stderr).toContain(
      `onnxruntime: ${oracle.prompt_tokens.length} prompt tokens, trained context 128`,
    );
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as { tokens: number[] };
    // EOS (2) would stop generation early; the oracle's tokens contain none before the end.
    expect(result.tokens).toEqual(oracle.greedy_tokens.slice(0, result.tokens.length));
    expect(result.tokens.length).toBe(
      oracle.greedy_tokens.indexOf(2) === -1
        ? oracle.greedy_tokens.length
        : oracle.greedy_tokens.indexOf(2) + 1,
    );
  });

  it("refuses the folder on a backend that reads GGUF files, in one line, before any work", async () => {
    const { code, stderr } = await cli(
      "generate",
      "--backend",
      "reference",
      "--model",
      exportFolder,
      "--prompt",
      "x",
    );
    expect(code).toBe(2);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toContain("is an ONNX export; it runs on --backend onnxruntime only");
  });
});
