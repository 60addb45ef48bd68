/**
 * The export cache trusts `exporterVersion`: an export (or a rewritten user export) made by an older
 * release is reused as long as the version matches. So a change to the graphs this package builds
 * must bump the version, or users keep running the old graphs from their caches after upgrading.
 * This test holds the SHA-256 of every graph shape the exporter and the rewrite produce, recorded
 * for the current version, and fails when a graph changes while the version stays.
 *
 * The decoder exports are built from zero weights, so only the graph code and the tiny models'
 * shapes count (not the random weights' generator); the rewrite runs on committed exports made by
 * Optimum and onnxruntime-genai (test/fixtures/imported).
 *
 * After a deliberate graph change: bump `exporterVersion` in src/version.ts, then run this test with
 * SELF_EXTEND_RECORD_GRAPH_HASHES=1 to write the new hashes into test/fixtures/exporter-graphs.json.
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateTinyModel, type LlamaWeights, tinyModelSpec } from "@self-extend/models";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { buildDecoderGraph, type DecoderAttention, encodeModel } from "../src/export.js";
import { exporterVersion, loadImportedOnnxModel } from "../src/index.js";

const recordPath = join(import.meta.dirname, "fixtures", "exporter-graphs.json");
const importedFixtures = join(import.meta.dirname, "fixtures", "imported");

interface Record {
  readonly exporterVersion: string;
  readonly graphs: { readonly [name: string]: string };
}

/** Every tiny conformance model: MHA and GQA, biases, both RoPE layouts, partial rotary, Gemma 1-3. */
const tinyModels = [
  "llama-h8-mha",
  "llama-h16-gqa2",
  "llama-h32-gqa4-base1e6",
  "mistral-h64-gqa2",
  "llama3-h64-gqa4-rope-freqs",
  "phi-h32-mha-fused",
  "qwen2-h8-gqa2-bias-base1e6",
  "qwen2-h16-mha-bias",
  "gemma-h32-gqa2-wide-heads",
  "gemma2-h16-gqa2-window40",
  "gemma3-h16-gqa2-window8",
];
const importedExports = [
  "optimum/llama",
  "optimum/qwen2",
  "optimum/phi3",
  "genai/llama",
  "genai/qwen2",
  "genai/phi3",
];
const attentions: readonly (readonly [string, DecoderAttention])[] = [
  ["plain", { kind: "plain" }],
  ["g4-w16", { kind: "self-extend", selfExtend: { groupSize: 4, neighborWindow: 16 } }],
];

/** The same weights with every value zero: the graph then depends on the code and shapes only. */
function zeroed<T>(value: T): T {
  if (value instanceof Float32Array) return new Float32Array(value.length) as T;
  if (Array.isArray(value)) return value.map(zeroed) as T;
  if (value !== null && typeof value === "object" && !ArrayBuffer.isView(value)) {
    return Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, zeroed(entry)])) as T;
  }
  return value;
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

describe("exporterVersion covers every change to the graphs", () => {
  const temporary = useTemporaryFolder("onnxruntime-exporter-version-");

  it("builds the graphs recorded for this exporterVersion, byte for byte", async () => {
    const graphs: { [name: string]: string } = {};
    for (const name of tinyModels) {
      const weights = zeroed(generateTinyModel(tinyModelSpec(name), 1)) as LlamaWeights;
      for (const [setting, attention] of attentions) {
        graphs[`export ${name} ${setting}`] = sha256(
          encodeModel(buildDecoderGraph(weights, attention).model),
        );
      }
    }
    for (const path of importedExports) {
      const model = await loadImportedOnnxModel(join(importedFixtures, path), { cacheFolder: temporary() });
      try {
        for (const [setting, attention] of attentions) {
          graphs[`rewrite ${path} ${setting}`] = sha256(readFileSync(model.rewrittenModelPath(attention)));
        }
      } finally {
        await model.dispose();
      }
    }

    if (process.env.SELF_EXTEND_RECORD_GRAPH_HASHES === "1") {
      writeFileSync(recordPath, `${JSON.stringify({ exporterVersion, graphs }, null, 2)}\n`);
    }
    const recorded = JSON.parse(readFileSync(recordPath, "utf8")) as Record;
    const how = `bump exporterVersion in src/version.ts if the graphs changed on purpose, then record them (SELF_EXTEND_RECORD_GRAPH_HASHES=1, see this test's header)`;
    if (recorded.exporterVersion !== exporterVersion) {
      throw new Error(
        `exporterVersion is ${exporterVersion} but the graphs are recorded for ${recorded.exporterVersion}: ${how}`,
      );
    }
    const changed = Object.keys(graphs).filter((name) => graphs[name] !== recorded.graphs[name]);
    expect(Object.keys(recorded.graphs).sort(), "the recorded graph names").toEqual(
      Object.keys(graphs).sort(),
    );
    expect(changed, `graphs that changed while exporterVersion stayed ${exporterVersion}: ${how}`).toEqual(
      [],
    );
  });
});
