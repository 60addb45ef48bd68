import { createReferenceBackend } from "@self-extend/reference";
import { describeConformance } from "../src/vitest.js";

// A third-party adapter's view: one import gives it the whole suite as tests. Here the reference
// itself, on one generated model, runs through the helper exactly as an adapter's tests would.
describeConformance("reference through the vitest helper", () => createReferenceBackend(), {
  caseNames: ["position-maps", "logits-2x", "greedy-2x"],
  modelIds: ["tiny:qwen2-h8-gqa2-bias-base1e6"],
});
