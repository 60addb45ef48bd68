import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sharedModelPaths, useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { runCli } from "../src/index.js";
import { captureTerminal } from "./capture-terminal.js";

async function cli(...args: string[]) {
  const terminal = captureTerminal();
  const code = await runCli(args, terminal);
  return { code, stdout: terminal.stdout, stderr: terminal.stderr };
}

const stories = ["--model", sharedModelPaths.stories260K, "--tokenizer", sharedModelPaths.tokenizer];

function readNpy(path: string): { shape: number[]; data: Float32Array } {
  const bytes = readFileSync(path);
  const headerLength = bytes.readUInt16LE(8);
  const header = bytes.subarray(10, 10 + headerLength).toString("latin1");
  const shape = (/'shape': \(([^)]*)\)/.exec(header)?.[1] ?? "")
    .split(",")
    .filter((part) => part.trim() !== "")
    .map(Number);
  const data = new Float32Array(
    bytes.buffer.slice(bytes.byteOffset + 10 + headerLength, bytes.byteOffset + bytes.length),
  );
  return { shape, data };
}

function logSoftmaxRow(row: Float32Array): Float64Array {
  const largest = Math.max(...row);
  const total = row.reduce((sum, value) => sum + Math.exp(value - largest), 0);
  return Float64Array.from(row, (value) => value - largest - Math.log(total));
}

/** The same commands on every adapter: generated text identical to the reference's, logits close. */
describe.each(["llama-cpp", "onnxruntime", "webgpu"])("--backend %s", (backend) => {
  const temporary = useTemporaryFolder();
  // About 1100 tokens of TinyStories text: more than twice stories260K's trained context of 512.
  const promptText = readFileSync(sharedModelPaths.validationText, "utf8").slice(0, 2400);

  it("generates the reference's greedy tokens with Self-Extend past the trained context", async () => {
    const folder = temporary();
    writeFileSync(join(folder, "prompt.txt"), promptText);
    const flags = [
      "--prompt-file",
      join(folder, "prompt.txt"),
      "--group",
      "8",
      "--window",
      "96",
      "--max-tokens",
      "48",
      "--json",
    ];
    const expected = await cli("generate", "--backend", "reference", ...flags);
    const actual = await cli("generate", "--backend", backend, ...flags);
    expect(expected.code).toBe(0);
    expect(actual.code).toBe(0);
    expect(JSON.parse(actual.stdout).tokens).toEqual(JSON.parse(expected.stdout).tokens);
  });

  it("writes logits whose log-probabilities match the reference's", async () => {
    const folder = temporary();
    const tokens = [1, ...Array.from({ length: 1100 }, (_, index) => 3 + ((index * 37) % 500))];
    writeFileSync(join(folder, "tokens.json"), JSON.stringify(tokens));
    const flags = [
      ...stories,
      "--tokens-file",
      join(folder, "tokens.json"),
      "--group",
      "4",
      "--window",
      "128",
    ];
    expect(
      (await cli("logits", "--backend", "reference", ...flags, "--out", join(folder, "reference.npy"))).code,
    ).toBe(0);
    expect(
      (await cli("logits", "--backend", backend, ...flags, "--out", join(folder, "adapter.npy"))).code,
    ).toBe(0);
    const expected = readNpy(join(folder, "reference.npy"));
    const actual = readNpy(join(folder, "adapter.npy"));
    expect(actual.shape).toEqual([tokens.length, 512]);
    let largest = 0;
    for (let row = 0; row < tokens.length; row++) {
      const a = logSoftmaxRow(actual.data.subarray(row * 512, (row + 1) * 512));
      const e = logSoftmaxRow(expected.data.subarray(row * 512, (row + 1) * 512));
      // Below e^-60 float32 probabilities underflow in runtimes that only expose log-softmax.
      for (let index = 0; index < 512; index++)
        if (e[index] > -60) largest = Math.max(largest, Math.abs(a[index] - e[index]));
    }
    expect(largest).toBeLessThan(1e-3);
  });
});
