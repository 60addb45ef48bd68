/**
 * The per-user cache of llama2.c checkpoints converted to GGUF, so every backend reads the same
 * file and the conversion runs once. An entry is trusted only when its manifest (written after the
 * GGUF is in place) gives its exact size and sha256: a truncated or altered file, or one without a
 * manifest, is converted again. Files are renamed into place, so a reader never sees half of one.
 */
import { createHash, randomUUID } from "node:crypto";
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { importLlama2c } from "@self-extend/models/node";

/** `SELF_EXTEND_CACHE_DIR`, else `$XDG_CACHE_HOME/self-extend`, else `~/.cache/self-extend`. */
export function defaultCacheFolder(environment: NodeJS.ProcessEnv = process.env, home = homedir()): string {
  if (environment.SELF_EXTEND_CACHE_DIR) return environment.SELF_EXTEND_CACHE_DIR;
  const base = environment.XDG_CACHE_HOME || join(home, ".cache");
  return join(base, "self-extend");
}

interface CacheManifest {
  readonly formatVersion: 1;
  /** sha256 of the checkpoint bytes followed by the tokenizer bytes. */
  readonly inputsSha256: string;
  readonly size: number;
  readonly sha256: string;
}

function sha256OfFile(path: string): string {
  const hash = createHash("sha256");
  const buffer = Buffer.allocUnsafe(1 << 20);
  const descriptor = openSync(path, "r");
  try {
    for (let count = readSync(descriptor, buffer); count > 0; count = readSync(descriptor, buffer)) {
      hash.update(buffer.subarray(0, count));
    }
  } finally {
    closeSync(descriptor);
  }
  return hash.digest("hex");
}

function isVerified(ggufPath: string, manifestPath: string, inputsSha256: string): boolean {
  try {
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as CacheManifest;
    return (
      manifest.formatVersion === 1 &&
      manifest.inputsSha256 === inputsSha256 &&
      statSync(ggufPath).size === manifest.size &&
      sha256OfFile(ggufPath) === manifest.sha256
    );
  } catch {
    // No manifest, no file, or an unreadable one: convert again.
    return false;
  }
}

/** The cached GGUF of a llama2.c checkpoint and tokenizer, converted (again) when missing or bad. */
export function cachedLlama2cGguf(
  checkpointPath: string,
  tokenizerPath: string,
  cacheFolder: string,
): string {
  const inputsSha256 = createHash("sha256")
    .update(readFileSync(checkpointPath))
    .update(readFileSync(tokenizerPath))
    .digest("hex");
  const name = `llama2c-${inputsSha256.slice(0, 16)}`;
  const ggufPath = join(cacheFolder, `${name}.gguf`);
  const manifestPath = join(cacheFolder, `${name}.json`);
  if (isVerified(ggufPath, manifestPath, inputsSha256)) return ggufPath;

  // Private to the user: other users cannot plant a file under a name we would trust.
  mkdirSync(cacheFolder, { recursive: true, mode: 0o700 });
  const unique = `${process.pid}.${randomUUID()}`;
  const building = join(cacheFolder, `.${name}.${unique}.gguf`);
  const buildingManifest = join(cacheFolder, `.${name}.${unique}.json`);
  try {
    importLlama2c({ checkpointPath, tokenizerPath, outPath: building });
    const manifest: CacheManifest = {
      formatVersion: 1,
      inputsSha256,
      size: statSync(building).size,
      sha256: sha256OfFile(building),
    };
    writeFileSync(buildingManifest, `${JSON.stringify(manifest, null, 2)}\n`);
    // The conversion is deterministic, so a concurrent run renames identical bytes over ours.
    renameSync(building, ggufPath);
    renameSync(buildingManifest, manifestPath);
  } finally {
    rmSync(building, { force: true });
    rmSync(buildingManifest, { force: true });
  }
  return ggufPath;
}
