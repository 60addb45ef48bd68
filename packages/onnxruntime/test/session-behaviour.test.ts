/** The edge behaviour every adapter shares (errors, bad options, dispose), on ONNX Runtime. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeSessionBehaviour } from "@self-extend/conformance/vitest";
import { afterAll } from "vitest";
import { createOnnxRuntimeBackend } from "../src/index.js";

// One export cache for the whole file: the model is loaded once, its exports written as needed.
const cacheFolder = mkdtempSync(join(tmpdir(), "onnxruntime-behaviour-"));
afterAll(() => rmSync(cacheFolder, { recursive: true, force: true }));

describeSessionBehaviour("onnxruntime", () => createOnnxRuntimeBackend({ cacheFolder }), {
  smallBlocks: { prefillChunkSize: 4 },
});
