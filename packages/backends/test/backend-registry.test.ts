import { fastPrefillPositionError } from "@self-extend/llama-cpp";
import { describe, expect, it } from "vitest";
import {
  findRegisteredBackend,
  loadRegisteredBackend,
  registeredBackends,
  resolveBackend,
  UnknownBackendError,
} from "../src/index.js";

describe("the backend registry", () => {
  it("refuses an unknown name in one line naming the known ones", async () => {
    const refusal = resolveBackend("tpu");
    await expect(refusal).rejects.toThrow(UnknownBackendError);
    await expect(refusal).rejects.toThrow(
      `unknown backend "tpu"; known: ${registeredBackends.map((entry) => entry.name).join(", ")}`,
    );
  });

  it("resolves the reference, and every adapter package in this repository", async () => {
    expect((await resolveBackend("reference")).name).toBe("reference");
    for (const name of ["llama-cpp", "onnxruntime", "webgpu"]) {
      const [main] = await loadRegisteredBackend(findRegisteredBackend(name)!);
      expect(main.unavailableReason).toBeUndefined();
      expect(main.backend.name).toBe(name);
      // Each adapter's tolerances come from its own declaration, in the suite's schema.
      expect(main.tolerances?.default.atol).toBeGreaterThan(0);
    }
  });

  it("takes an adapter's variants from the adapter's own declaration", async () => {
    const entries = await loadRegisteredBackend(findRegisteredBackend("llama-cpp")!);
    expect(entries.map((entry) => entry.label ?? entry.backend.name)).toEqual([
      "llama-cpp",
      "llama-cpp:fast-prefill",
    ]);
    const fastPrefill = entries[1];
    expect(fastPrefill.sessionOptions).toEqual({ mode: "fast-prefill" });
    // The position error comes from the adapter's own formula, not a copy of it.
    expect(fastPrefill.informational?.describe?.({ groupSize: 8, neighborWindow: 32 })).toBe(
      `chunk 8 = G: largest position error ${fastPrefillPositionError(8, 8)}`,
    );
    expect(entries[0].skips?.map((skip) => [skip.model, skip.case ?? "*"])).toEqual([
      ["tiny:mistral-h64-gqa2", "*"],
      ["tiny:gemma2-h16-gqa2-window40", "greedy-2x"],
      ["tiny:gemma2-h16-gqa2-window40", "greedy-4x"],
      ["tiny:gemma2-h16-gqa2-window40", "logits-2x"],
      ["tiny:gemma2-h16-gqa2-window40", "logits-4x-explicit"],
    ]);
  });
});
