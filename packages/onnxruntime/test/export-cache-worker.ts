/**
 * One process of the concurrent export-cache test. A reader asks for the export, waits a moment
 * (another process may replace the entry meanwhile) and checks that the folder it was given is
 * still complete, as it must be when ONNX Runtime loads it. A staler points the entry at an export
 * of an older exporter version, which every later process must replace. Exits 1 naming the problem.
 */
import { cpSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { generateTinyModel, tinyModelSpec } from "@self-extend/models";
import { checkExportFolder, ensureDecoderExport, manifestFileName } from "../src/export-cache.js";

const [cacheFolder, role, iterationsText] = process.argv.slice(2);
if (cacheFolder === undefined || (role !== "reader" && role !== "staler")) {
  throw new Error("usage: export-cache-worker.ts <cacheFolder> reader|staler <iterations>");
}
const weights = generateTinyModel(tinyModelSpec("llama-h8-mha"), 2);
const options = {
  cacheFolder,
  modelHash: "shared-model",
  attention: { kind: "self-extend", selfExtend: { groupSize: 4, neighborWindow: 16 } } as const,
  weights: () => weights,
};
const pause = (milliseconds: number) =>
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, milliseconds);

for (let iteration = 0; iteration < Number(iterationsText ?? "1"); iteration++) {
  const location = ensureDecoderExport(options);
  pause(Math.floor(Math.random() * 30));
  const problem = checkExportFolder(location.folder, location.key);
  if (problem !== undefined) {
    process.stderr.write(`${location.folder} changed after it was handed out: ${problem}\n`);
    process.exit(1);
  }
  if (role === "staler") {
    // A copy with an older exporter version, published the way the cache publishes: fresh folder,
    // then the pointer renamed over.
    const stale = `${location.key}~stale-${process.pid}-${iteration}`;
    cpSync(location.folder, join(cacheFolder, stale), { recursive: true });
    const manifestPath = join(cacheFolder, stale, manifestFileName);
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    writeFileSync(manifestPath, JSON.stringify({ ...manifest, exporterVersion: "0.0.0-old" }));
    writeFileSync(join(cacheFolder, `.pointer-${process.pid}`), `${stale}\n`);
    renameSync(join(cacheFolder, `.pointer-${process.pid}`), join(cacheFolder, `${location.key}.current`));
  }
}
