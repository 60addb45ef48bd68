/** Issue 16: the CLI's conformance on a llama3 vocabulary GGUF by gguf-py, quantized to Q4_K_M by llama-quantize. */
import { describe } from "vitest";
import { llama3BpeSpec } from "./bpe-model-specs.js";
import { conformanceOnEveryAdapter } from "./k-quant-bpe-conformance.js";

describe("self-extend conformance --model <llama3 vocabulary, Q4_K_M>.gguf --json", () => {
  conformanceOnEveryAdapter({
    vocabulary: "llama3",
    spec: llama3BpeSpec,
    type: "Q4_K_M",
    weightTypes: ["Q4_K", "Q6_K"],
    // llama.cpp: Q4_K 0.11 and Q6_K 0.13: the looser (quantized-weights.json); the float backends keep their own defaults.
    atol: { "llama-cpp": 0.13, onnxruntime: 0.0002, webgpu: 0.0005, reference: 1e-9 },
    // Log-probabilities at every position of 2 L; greedy tokens after 3 L (256 of them).
    cases: ["logits-2x", "greedy-4x"],
  });
});
