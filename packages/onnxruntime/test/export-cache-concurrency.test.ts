/**
 * 32 processes share one export cache: readers, processes that make the entry stale, and processes
 * killed in the middle of an export. Every reader must get a folder that stays complete after it
 * was handed out (nothing deletes an export another process may be loading), and the cache must
 * end with one sound entry.
 */
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { generateTinyModel, tinyModelSpec } from "@self-extend/models";
import { repositoryRoot, useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { checkExportFolder, ensureDecoderExport } from "../src/export-cache.js";

const worker = join(import.meta.dirname, "export-cache-worker.ts");

function runWorker(
  cacheFolder: string,
  role: "reader" | "staler",
  iterations: number,
  killAfterMs?: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", worker, cacheFolder, role, String(iterations)],
      {
        cwd: repositoryRoot(),
      },
    );
    let stderr = "";
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    if (killAfterMs !== undefined) setTimeout(() => child.kill("SIGKILL"), killAfterMs);
    child.on("exit", (code, signal) => resolve({ code, signal, stderr }));
  });
}

describe("export cache shared by 32 processes", () => {
  const temporaryFolder = useTemporaryFolder("onnxruntime-concurrent-");

  it("hands every reader a folder that stays complete, with stale entries and killed exports around", async () => {
    const cacheFolder = temporaryFolder();
    const runs = Array.from({ length: 32 }, (_, index) => {
      if (index % 8 === 3) return runWorker(cacheFolder, "staler", 3);
      // Killed at different points of start-up and export: partial folders are left behind.
      if (index % 8 === 7) return runWorker(cacheFolder, "reader", 3, 500 + index * 40);
      return runWorker(cacheFolder, "reader", 4);
    });
    const results = await Promise.all(runs);
    const failures = results.filter((result) => result.signal === null && result.code !== 0);
    expect(failures.map((failure) => failure.stderr)).toEqual([]);
    expect(results.filter((result) => result.code === 0).length).toBeGreaterThanOrEqual(24);

    // Afterwards one more process finds (or makes) a sound export without error.
    const weights = generateTinyModel(tinyModelSpec("llama-h8-mha"), 2);
    const location = ensureDecoderExport({
      cacheFolder,
      modelHash: "shared-model",
      attention: { kind: "self-extend", selfExtend: { groupSize: 4, neighborWindow: 16 } },
      weights: () => weights,
    });
    expect(checkExportFolder(location.folder, location.key)).toBeUndefined();
    expect(readdirSync(cacheFolder)).toContain(`${location.key}.current`);
  }, 600_000);
});
