/**
 * Issue 16's first proof through the command line: `self-extend conformance --model F --json` passes
 * on every adapter (llama-cpp, onnxruntime, webgpu, reference) for files made by llama.cpp's own
 * tools, not by our writer: tiny generated weights with a real byte-level BPE vocabulary (Llama 3's,
 * Qwen's), written by gguf-py and quantized by llama-quantize to the K-quant mixes people download.
 * Each row must carry the file's weight types and the tolerance its adapter's measured data gives.
 * One test file per quantized file keeps each under a few minutes on a 2-core machine.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TinyModelSpec } from "@self-extend/models/node";
import { afterAll, expect, it } from "vitest";
// The files come from llama.cpp's gguf-py and llama-quantize, which the llama-cpp package builds.
import { type BpeVocabularyName, bpeModelFile } from "../../../packages/llama-cpp/test/gguf-py-models.js";
import { runCli } from "../src/index.js";
import { captureTerminal } from "./capture-terminal.js";

export const adapters = ["llama-cpp", "onnxruntime", "webgpu", "reference"] as const;

interface ConformanceRow {
  readonly backend: string;
  readonly case: string;
  readonly status: string;
  readonly weightTypes?: string[];
  readonly tolerance?: { atol: number; greedyNearTies?: boolean };
}

export interface QuantizedProof {
  readonly vocabulary: BpeVocabularyName;
  readonly spec: TinyModelSpec;
  /** llama-quantize's type name. */
  readonly type: string;
  /** The ggml types of the quantized file's matrices, as llama-quantize's mix gives them. */
  readonly weightTypes: readonly string[];
  /** Each adapter's tolerance for those types, from its conformance/tolerances.json. */
  readonly atol: Record<(typeof adapters)[number], number>;
  /** The suite's cases to run (`--case`), all past the trained context with Self-Extend planned. */
  readonly cases: readonly string[];
}

/** Registers the test: the CLI's conformance on the file passes on every adapter with these rows. */
export function conformanceOnEveryAdapter(proof: QuantizedProof): void {
  const folder = mkdtempSync(join(tmpdir(), "self-extend-k-quant-bpe-"));
  afterAll(() => rmSync(folder, { recursive: true, force: true }));

  it(`passes on every adapter for a ${proof.vocabulary} vocabulary file quantized to ${proof.type}, each row naming its weight types and tolerance`, async () => {
    const model = bpeModelFile(folder, proof.spec, proof.vocabulary, proof.type, 16);
    const terminal = captureTerminal();
    const code = await runCli(
      [
        "conformance",
        ...adapters.flatMap((backend) => ["--backend", backend]),
        "--model",
        model,
        ...proof.cases.flatMap((name) => ["--case", name]),
        "--cache",
        folder,
        "--json",
      ],
      terminal,
    );
    const report = JSON.parse(terminal.stdout);
    expect(report.summary).toMatchObject({ failed: 0, notAvailable: 0 });
    expect(code).toBe(0);
    const rows: ConformanceRow[] = report.results;
    for (const backend of adapters) {
      const own = rows.filter((row) => row.backend === backend);
      expect(own.map((row) => row.case).sort(), backend).toEqual(
        proof.cases.map((name) => `${name}@user`).sort(),
      );
      for (const row of own) {
        const label = `${backend} ${row.case}`;
        expect(row.status, label).toBe("pass");
        expect(row.weightTypes, label).toEqual(proof.weightTypes);
        expect(row.tolerance?.atol, label).toBe(proof.atol[backend]);
        // Only llama.cpp multiplies quantized weights by rounded activations, so only its greedy
        // tokens may part at the reference's near ties.
        expect(row.tolerance?.greedyNearTies === true, label).toBe(backend === "llama-cpp");
      }
    }
  });
}
