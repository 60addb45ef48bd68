/**
 * GGUF files on disk (Node only; the rest of the package runs in browsers too): the reader's
 * file source, which reads the head through a small window and tensors only when asked for, and
 * the atomic writer (temporary file in the same folder, then rename).
 */
import { closeSync, fstatSync, openSync, readSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { type GgufByteSource, type GgufFile, parseGgufSource } from "./gguf-reader.js";
import { type GgufContents, ggufChunks } from "./gguf-writer.js";
import { ModelFileError } from "./model-file-error.js";

const readChunkBytes = 1 << 30;

function fileSource(path: string): GgufByteSource {
  let descriptor: number;
  try {
    descriptor = openSync(path, "r");
  } catch (error) {
    throw new ModelFileError(
      path,
      `cannot be opened (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
  let open = true;
  const stats = fstatSync(descriptor);
  if (!stats.isFile()) {
    closeSync(descriptor);
    throw new ModelFileError(
      path,
      stats.isDirectory() ? "is a folder, not a GGUF file" : "is not a regular file",
    );
  }
  const size = stats.size;
  return {
    size,
    read(offset, length) {
      if (!open) throw new ModelFileError(path, "is closed; reopen it with readGguf to read more tensors");
      let buffer: Buffer;
      try {
        buffer = Buffer.allocUnsafe(length);
      } catch {
        throw new ModelFileError(path, `cannot hold ${length} bytes at ${offset} in memory`);
      }
      let done = 0;
      while (done < length) {
        // readSync takes at most 2 GiB - 1 at once; larger tensors are read in chunks.
        const chunk = Math.min(length - done, readChunkBytes);
        const count = readSync(descriptor, buffer, done, chunk, offset + done);
        if (count === 0) {
          throw new ModelFileError(
            path,
            `ended at byte ${offset + done} while reading ${length} bytes at ${offset}`,
          );
        }
        done += count;
      }
      return new Uint8Array(buffer.buffer, buffer.byteOffset, length);
    },
    close() {
      if (open) closeSync(descriptor);
      open = false;
    },
  };
}

/** Opens a GGUF file and parses its head; tensor data stays on disk until read. Call close(). */
export function readGguf(path: string): GgufFile {
  const source = fileSource(path);
  try {
    return parseGgufSource(source, path);
  } catch (error) {
    source.close();
    throw error;
  }
}

/** Writes a GGUF v3 file atomically (temporary file in the same folder, then rename). */
export function writeGguf(path: string, contents: GgufContents): void {
  const temporaryPath = join(dirname(path), `.${basename(path)}.${process.pid}.partial`);
  let descriptor: number | undefined;
  try {
    // Plan (and validate) before creating anything on disk.
    const chunks = ggufChunks(contents, path);
    const first = chunks.next();
    descriptor = openSync(temporaryPath, "w");
    for (let chunk = first; !chunk.done; chunk = chunks.next()) {
      let written = 0;
      while (written < chunk.value.length) {
        written += writeSync(descriptor, chunk.value, written, chunk.value.length - written);
      }
    }
    closeSync(descriptor);
    descriptor = undefined;
    renameSync(temporaryPath, path);
  } catch (error) {
    if (descriptor !== undefined) closeSync(descriptor);
    try {
      unlinkSync(temporaryPath);
    } catch {
      // Nothing was created, or it is already gone.
    }
    if (error instanceof ModelFileError) throw error;
    throw new ModelFileError(
      path,
      `cannot be written (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
}
