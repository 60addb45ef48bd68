/**
 * Exports cached on disk, keyed by the model's content hash, the attention settings and the
 * exporter version, so a second run skips the export.
 *
 * An export is written into a private `.partial-*` folder, its manifest (sizes and SHA-256 of every
 * file) is written last, and the folder is renamed to a fresh name of its own (`<key>~<unique>`).
 * A small pointer file, `<key>.current`, names the folder in use and is switched by renaming a new
 * pointer over it, so readers always find a complete export. A folder is used only when its
 * manifest matches the key and every file matches its size and hash; anything else (a stale
 * format, a truncated or edited file, a crash before the manifest) is replaced by a new export.
 * A replaced folder is not deleted at once, since another process may have just checked it and
 * be about to load it: folders no pointer names are removed once they are an hour old, like the
 * partial folders of crashed processes. Failed exports remove their partial folder.
 */
import { createHash, randomUUID } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { LlamaWeights } from "@self-extend/models";
import {
  type DecoderAttention,
  externalDataFileName,
  modelFileName,
  normalizeDecoderAttention,
  writeDecoderExport,
} from "./decoder-export.js";
import { ExportCacheError } from "./errors.js";
import { exporterVersion } from "./version.js";

export const manifestFileName = "manifest.json";
const manifestFormat = "self-extend-onnx-export";
/**
 * Partial folders older than this are leftovers of a crashed process, and replaced exports are
 * no longer in use by a process that checked them before the switch; both are removed.
 */
const abandonedFolderAgeMs = 60 * 60 * 1000;
const pointerSuffix = ".current";
const publishedSeparator = "~";

/**
 * `SELF_EXTEND_ONNX_CACHE` if set, else `$XDG_CACHE_HOME/self-extend/onnxruntime`, else
 * `~/.cache/self-extend/onnxruntime`.
 */
export function defaultExportCacheFolder(): string {
  const explicit = process.env.SELF_EXTEND_ONNX_CACHE;
  if (explicit) return explicit;
  const cacheHome = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(cacheHome, "self-extend", "onnxruntime");
}

export interface ExportManifest {
  readonly format: typeof manifestFormat;
  readonly exporterVersion: string;
  readonly key: string;
  readonly modelHash: string;
  readonly attention: DecoderAttention;
  readonly files: Readonly<Record<string, { readonly size: number; readonly sha256: string }>>;
}

function hashFile(path: string): string {
  const hash = createHash("sha256");
  const buffer = Buffer.allocUnsafe(1 << 20);
  const descriptor = openSync(path, "r");
  try {
    for (;;) {
      const read = readSync(descriptor, buffer, 0, buffer.length, null);
      if (read === 0) break;
      hash.update(buffer.subarray(0, read));
    }
  } finally {
    closeSync(descriptor);
  }
  return hash.digest("hex");
}

/** SHA-256 of a model file's bytes: renaming or touching the file keeps its exports. */
export function hashModelFile(path: string): string {
  return hashFile(path);
}

/** SHA-256 of weights held in memory (generated test models): description and every tensor. */
export function hashModelWeights(weights: LlamaWeights): string {
  const hash = createHash("sha256");
  hash.update(JSON.stringify(weights.description));
  const add = (array: Float32Array | undefined) => {
    if (array === undefined) {
      hash.update("-");
      return;
    }
    hash.update(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
  };
  add(weights.tokenEmbedding);
  add(weights.outputNorm);
  hash.update(weights.output === weights.tokenEmbedding ? "tied" : "untied");
  add(weights.output);
  for (const layer of weights.layers) {
    for (const array of [
      layer.attentionNorm,
      layer.query,
      layer.key,
      layer.value,
      layer.output,
      layer.queryBias,
      layer.keyBias,
      layer.valueBias,
      layer.feedForwardNorm,
      layer.gate,
      layer.up,
      layer.down,
    ]) {
      add(array);
    }
    // Gemma 2's post-norms, only where present, so the hashes of other models stay as they were.
    // Gemma 3's query/key head norms likewise.
    for (const array of [
      layer.postAttentionNorm,
      layer.postFeedForwardNorm,
      layer.queryNorm,
      layer.keyNorm,
    ]) {
      if (array !== undefined) add(array);
    }
  }
  return hash.digest("hex");
}

export function exportKey(modelHash: string, attention: DecoderAttention): string {
  const normalized = normalizeDecoderAttention(attention);
  const settings =
    normalized.kind === "plain"
      ? "plain"
      : `self-extend-g${normalized.selfExtend.groupSize}-w${normalized.selfExtend.neighborWindow}`;
  const digest = createHash("sha256")
    .update(JSON.stringify({ exporterVersion, modelHash, attention: normalized }))
    .digest("hex")
    .slice(0, 24);
  return `${settings}-${digest}`;
}

/** Why a cached export cannot be used, or undefined when it is sound. */
export function checkExportFolder(folder: string, key: string): string | undefined {
  let manifest: ExportManifest;
  try {
    manifest = JSON.parse(readFileSync(join(folder, manifestFileName), "utf8")) as ExportManifest;
  } catch (error) {
    return `no readable manifest (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
  }
  if (manifest.format !== manifestFormat || manifest.exporterVersion !== exporterVersion) {
    return `made by exporter version ${manifest.exporterVersion}, this is ${exporterVersion}`;
  }
  if (manifest.key !== key) return `manifest key ${manifest.key} is not ${key}`;
  for (const name of [modelFileName, externalDataFileName]) {
    const expected = manifest.files?.[name];
    if (expected === undefined) return `manifest lists no ${name}`;
    const path = join(folder, name);
    if (!existsSync(path)) return `${name} is missing`;
    const size = statSync(path).size;
    if (size !== expected.size) return `${name} has ${size} bytes, the manifest says ${expected.size}`;
    if (hashFile(path) !== expected.sha256) return `${name} does not match its SHA-256`;
  }
  return undefined;
}

export interface EnsureExportOptions {
  readonly cacheFolder: string;
  readonly modelHash: string;
  readonly attention: DecoderAttention;
  /** Called only when an export has to be written. */
  readonly weights: () => LlamaWeights;
}

export interface ExportLocation {
  readonly folder: string;
  readonly modelPath: string;
  readonly key: string;
  /** false when this call wrote the export. */
  readonly reused: boolean;
}

function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const reasons: Record<string, string> = {
    EACCES: "permission denied",
    EPERM: "operation not permitted",
    EROFS: "read-only file system",
    ENOTDIR: "a parent is a file, not a folder",
    ENOSPC: "no space left on the device",
    EEXIST: "a file is in the way",
  };
  return code === undefined ? String(error) : `${reasons[code] ?? code} (${code})`;
}

/** The folder name `<key>.current` points to, or undefined when there is no readable pointer. */
function readPointer(cacheFolder: string, key: string): string | undefined {
  try {
    const name = readFileSync(join(cacheFolder, `${key}${pointerSuffix}`), "utf8").trim();
    // Only a published folder of this key, never a path elsewhere.
    return name.startsWith(`${key}${publishedSeparator}`) && !/[/\\]/.test(name) ? name : undefined;
  } catch {
    return undefined;
  }
}

function removeAbandonedFolders(cacheFolder: string): void {
  let entries: string[];
  try {
    entries = readdirSync(cacheFolder);
  } catch {
    return;
  }
  const now = Date.now();
  for (const entry of entries) {
    const separator = entry.indexOf(publishedSeparator);
    const replaced = separator > 0 && readPointer(cacheFolder, entry.slice(0, separator)) !== entry;
    if (!entry.startsWith(".partial-") && !replaced) continue;
    const path = join(cacheFolder, entry);
    try {
      if (now - statSync(path).mtimeMs > abandonedFolderAgeMs) rmSync(path, { recursive: true, force: true });
    } catch {
      // Another process may be removing it too; nothing to do.
    }
  }
}

/** Returns the folder of a sound export for these settings, writing it first when needed. */
export function ensureDecoderExport(options: EnsureExportOptions): ExportLocation {
  const { cacheFolder, modelHash, attention } = options;
  const key = exportKey(modelHash, attention);
  const location = (folder: string, reused: boolean): ExportLocation => ({
    folder,
    modelPath: join(folder, modelFileName),
    key,
    reused,
  });
  const current = readPointer(cacheFolder, key);
  if (current !== undefined && checkExportFolder(join(cacheFolder, current), key) === undefined) {
    return location(join(cacheFolder, current), true);
  }

  try {
    mkdirSync(cacheFolder, { recursive: true });
  } catch (error) {
    throw new ExportCacheError(
      cacheFolder,
      `cannot create the folder: ${describeFsError(error)}; pass cacheFolder or set SELF_EXTEND_ONNX_CACHE to a writable folder`,
      { cause: error },
    );
  }
  removeAbandonedFolders(cacheFolder);
  let partial: string;
  try {
    partial = mkdtempSync(join(cacheFolder, `.partial-${key}-`));
  } catch (error) {
    throw new ExportCacheError(
      cacheFolder,
      `is not writable: ${describeFsError(error)}; pass cacheFolder or set SELF_EXTEND_ONNX_CACHE to a writable folder`,
      { cause: error },
    );
  }
  try {
    writeDecoderExport(options.weights(), attention, partial);
    const files: Record<string, { size: number; sha256: string }> = {};
    for (const name of [modelFileName, externalDataFileName]) {
      const path = join(partial, name);
      files[name] = { size: statSync(path).size, sha256: hashFile(path) };
    }
    const manifest: ExportManifest = {
      format: manifestFormat,
      exporterVersion,
      key,
      modelHash,
      attention: normalizeDecoderAttention(attention),
      files,
    };
    writeFileSync(join(partial, manifestFileName), `${JSON.stringify(manifest, null, 2)}\n`);
    // A fresh name, so no other process's export is ever overwritten or removed; then the pointer
    // is switched in one rename. Concurrent writers each publish a sound export; the last pointer wins.
    const published = `${key}${publishedSeparator}${randomUUID()}`;
    renameSync(partial, join(cacheFolder, published));
    const pointer = join(cacheFolder, `${key}${pointerSuffix}`);
    const pointerPartial = join(cacheFolder, `.partial-${published}${pointerSuffix}`);
    writeFileSync(pointerPartial, `${published}\n`);
    renameSync(pointerPartial, pointer);
    return location(join(cacheFolder, published), false);
  } catch (error) {
    rmSync(partial, { recursive: true, force: true });
    if (
      error instanceof Error &&
      "code" in error &&
      typeof (error as NodeJS.ErrnoException).code === "string"
    ) {
      throw new ExportCacheError(cacheFolder, `writing the export failed: ${describeFsError(error)}`, {
        cause: error,
      });
    }
    throw error;
  }
}
