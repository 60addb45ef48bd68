/**
 * Issue 16's first proof for the Gemma and Phi-3 shapes: `self-extend conformance --model F --json`
 * passes on every adapter (llama-cpp, onnxruntime, webgpu, reference) with nothing unavailable, for
 * files written by llama.cpp's own tools rather than our writer:
 * - Gemma 2 and Gemma 3: tiny random transformers models converted by llama.cpp's
 *   convert_hf_to_gguf.py (tools/gemma-models; the fixtures the oracle tests use): sliding-window
 *   layers (window 48), logit soft-capping (Gemma 2), q/k norms and two RoPE bases (Gemma 3), GeGLU,
 *   norm weights + 1, scaled embeddings;
 * - Phi-3: fused QKV and gate/up, written by llama.cpp's gguf-py from generated weights (the grid's
 *   Phi-3 layout).
 * The cases are the suite's Self-Extend ones past the trained context: log-probabilities at every
 * position of 2 L, and 256 greedy tokens after 3 L.
 */
import { join } from "node:path";
import { generateTinyModel, syntheticVocabulary, tinyModelSpec } from "@self-extend/models/node";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
// gguf-py is llama.cpp's, read out of the release node-llama-cpp bundles by the llama-cpp package.
import { writeWithGgufPython } from "../../../packages/llama-cpp/test/gguf-py-models.js";
import { runConformanceJson } from "./conformance-json.js";

const adapters = ["llama-cpp", "onnxruntime", "webgpu", "reference"] as const;
const cases = ["logits-2x", "greedy-4x"];
const gemmaFixtures = join(import.meta.dirname, "../../../packages/reference/test/fixtures/gemma");

const files: { readonly name: string; readonly path: (folder: string) => string }[] = [
  { name: "Gemma 2, convert_hf_to_gguf.py", path: () => join(gemmaFixtures, "gemma2.gguf") },
  { name: "Gemma 3, convert_hf_to_gguf.py", path: () => join(gemmaFixtures, "gemma3.gguf") },
  {
    name: "Phi-3, gguf-py",
    path: (folder) => {
      const spec = tinyModelSpec("phi-h32-mha-fused");
      const path = join(folder, "phi3-gguf-py.gguf");
      writeWithGgufPython(
        generateTinyModel(spec, 23),
        syntheticVocabulary(spec.vocabularySize),
        folder,
        path,
      );
      return path;
    },
  },
];

describe.each(files)("self-extend conformance --model <$name> --json", ({ path }) => {
  const temporary = useTemporaryFolder("cli-converter-files-");

  it("passes on every adapter with nothing unavailable", async () => {
    const folder = temporary();
    const { code, summary, rows } = await runConformanceJson({
      adapters,
      model: path(folder),
      cases,
      cache: folder,
    });
    expect(summary).toMatchObject({ failed: 0, notAvailable: 0 });
    expect(code).toBe(0);
    for (const backend of adapters) {
      const own = rows.filter((row) => row.backend === backend);
      expect(own.map((row) => `${row.case} ${row.status}`).sort(), backend).toEqual(
        cases.map((name) => `${name}@user pass`).sort(),
      );
    }
  });
});
