/**
 * The edges of the Self-Extend graph's two key levels (far keys [0, S), S = max(0, p - W + 1);
 * recent keys [S, N) with the group scores of keys [S, N - W) put in), checked against the float64
 * reference backend: a session that starts from ONE token (both the far level and the recent
 * level's group part empty), single tokens across W and across each group boundary (far level
 * growing by one key per step), and chunks shorter than, equal to and longer than W (the recent
 * level's group part 0 to T - 1 keys wide). The session feeds the past cut at S (far rows [0, S),
 * recent rows [S, p)), so these runs also check that its split and the graph's S agree at every
 * edge: a wrong cut fails on shapes or on logits.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SelfExtendModelV1 } from "@self-extend/core";
import { createReferenceBackend } from "@self-extend/reference";
import { sharedModelPaths } from "@self-extend/test-fixtures";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOnnxRuntimeBackend, type ImportedOnnxModel, type OnnxRuntimeModel } from "../src/index.js";
import { compareLogits, tolerance } from "./tolerances.js";

const cacheFolder = mkdtempSync(join(tmpdir(), "onnxruntime-levels-"));
const selfExtend = { groupSize: 4, neighborWindow: 16 };

let onnx: OnnxRuntimeModel | ImportedOnnxModel;
let reference: SelfExtendModelV1;
beforeAll(async () => {
  onnx = await createOnnxRuntimeBackend({ cacheFolder, threads: 1 }).loadModel({
    path: sharedModelPaths.stories260K,
  });
  reference = await createReferenceBackend().loadModel({ path: sharedModelPaths.stories260K });
}, 120_000);
afterAll(async () => {
  await onnx?.dispose();
  await reference?.dispose();
  rmSync(cacheFolder, { recursive: true, force: true });
});

// Tokens of a fixed pseudo-random sequence inside stories260K's 512-token vocabulary.
const tokens = Array.from({ length: 96 }, (_, index) => 1 + ((index * 37 + 11) % 500));

describe("Self-Extend graph levels against the reference (stories260K, G4/W16)", () => {
  it.each([
    ["one token, then single tokens across W and every group boundary", [1, ...Array(63).fill(1)]],
    ["chunks shorter than W (5), then single tokens", [5, 5, 5, 5, 5, 1, 1, 1, 1]],
    ["a chunk of exactly W, then W + 1, then 3", [16, 17, 3]],
    ["chunks longer than W (40, 33): the recent level's group part T - 1 keys wide", [40, 33, 1, 1]],
  ])(
    "%s",
    async (_name, blocks) => {
      const options = { selfExtend, contextSize: 96 };
      // Chunks of 64: each block below is one ONNX Runtime run.
      const onnxSession = await onnx.createSession({ ...options, prefillChunkSize: 64 });
      const referenceSession = await reference.createSession(options);
      try {
        let offset = 0;
        for (const size of blocks) {
          const block = tokens.slice(offset, offset + size);
          const rows = { logits: "all" as const };
          const actual = await onnxSession.evaluate(block, rows);
          const expected = await referenceSession.evaluate(block, rows);
          expect(Array.from(actual.positions)).toEqual(Array.from(expected.positions));
          expect(
            compareLogits(actual.logits, expected.logits, tolerance()).worstExcess,
            `block of ${size} at ${offset}`,
          ).toBeLessThanOrEqual(0);
          offset += size;
        }
      } finally {
        await onnxSession.dispose();
        await referenceSession.dispose();
      }
    },
    120_000,
  );
});
