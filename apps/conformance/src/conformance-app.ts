/**
 * What `self-extend conformance` does, as a function: pick the adapters, run the suite on the
 * default models (or a user's), and hand back the report. Printing is the caller's.
 */

import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  findRegisteredBackend,
  loadRegisteredBackend,
  registeredBackends,
  UnknownBackendError,
} from "@self-extend/backends";
import {
  type BackendUnderTest,
  type ConformanceProgress,
  type ConformanceReport,
  type ConformanceResult,
  defaultCacheFolder,
  runConformanceSuite,
} from "@self-extend/conformance";
import { SelfExtendError } from "@self-extend/core";
import { isOnnxExportPath, writeLlamaGguf } from "@self-extend/models/node";
import { defaultSharedFolder } from "./repository-paths.js";

/** A user's ONNX export was given, but the adapter that reads it is not installed. */
export class OnnxExportNeedsAdapterError extends SelfExtendError {
  override readonly name = "OnnxExportNeedsAdapterError";
}

/**
 * A user's ONNX export is checked on the onnxruntime adapter (its graph rewritten with Self-Extend)
 * against the reference on the same weights: @self-extend/onnxruntime reads them out of the graph's
 * initializers, and they are written once into a float32 GGUF in the cache folder, which the
 * reference (and any other adapter asked for) runs.
 */
async function onnxExportAsGguf(path: string, cacheFolder: string): Promise<string> {
  let exporter: typeof import("@self-extend/onnxruntime/export");
  try {
    exporter = await import("@self-extend/onnxruntime/export");
  } catch {
    throw new OnnxExportNeedsAdapterError(
      `${path} is an ONNX export; checking it needs @self-extend/onnxruntime installed beside the command`,
    );
  }
  // Keyed by the files' paths, sizes and times: reading gigabytes to hash them would cost more.
  const key = createHash("sha256").update(path);
  const folder = statSync(path).isDirectory() ? path : resolve(path, "..");
  for (const searched of [folder, join(folder, "onnx")].filter(existsSync)) {
    for (const name of readdirSync(searched).sort()) {
      const stats = statSync(join(searched, name));
      if (stats.isFile()) key.update(`${name}:${stats.size}:${stats.mtimeMs}`);
    }
  }
  const ggufPath = join(cacheFolder, `onnx-export-${key.digest("hex").slice(0, 24)}.gguf`);
  if (!existsSync(ggufPath)) {
    mkdirSync(cacheFolder, { recursive: true });
    writeLlamaGguf(ggufPath, exporter.readImportedWeights(path));
  }
  return ggufPath;
}

export interface ConformanceAppOptions {
  /** Backend names to run (default: every registered adapter, the reference included). */
  readonly backends?: readonly string[];
  /**
   * A user's GGUF, or ONNX export (folder or .onnx: onnxruntime runs the export, the reference its
   * weights): the suite runs on it alone, with lengths from its trained context.
   */
  readonly userModelPath?: string;
  readonly sharedFolder?: string;
  readonly cacheFolder?: string;
  readonly caseNames?: readonly string[];
  readonly modelIds?: readonly string[];
  readonly onProgress?: (progress: ConformanceProgress) => void;
  readonly onResult?: (result: ConformanceResult) => void;
  readonly signal?: AbortSignal;
}

export async function runConformanceApp(options: ConformanceAppOptions = {}): Promise<ConformanceReport> {
  const names = options.backends ?? registeredBackends.map((entry) => entry.name);
  const entries = names.map((name) => {
    const entry = findRegisteredBackend(name);
    if (entry === undefined) throw new UnknownBackendError(name);
    return entry;
  });
  const backends: BackendUnderTest[] = [];
  for (const entry of entries) backends.push(...(await loadRegisteredBackend(entry)));
  let userModelPath = options.userModelPath;
  let userModelBackendPaths: Record<string, string> | undefined;
  if (userModelPath !== undefined && isOnnxExportPath(userModelPath)) {
    userModelBackendPaths = { onnxruntime: resolve(userModelPath) };
    userModelPath = await onnxExportAsGguf(resolve(userModelPath), options.cacheFolder ?? defaultCacheFolder);
  }
  return runConformanceSuite(backends, {
    userModelPath,
    ...(userModelBackendPaths === undefined ? {} : { userModelBackendPaths }),
    sharedFolder: options.sharedFolder ?? defaultSharedFolder(),
    cacheFolder: options.cacheFolder,
    caseNames: options.caseNames,
    modelIds: options.modelIds,
    onProgress: options.onProgress,
    onResult: options.onResult,
    signal: options.signal,
  });
}
