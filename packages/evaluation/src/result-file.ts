/**
 * Result files that survive an interrupt: every write goes to a temporary file beside the target
 * and is renamed over it, so a reader (or a Ctrl-C at any moment) sees either the previous
 * complete file or the new complete file, never half of one.
 */
import { createHash } from "node:crypto";
import { createReadStream, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";

let temporaryCounter = 0;

/** Writes `text` to `path` (creating its folder) through a temporary file beside it and a rename. */
export function writeFileAtomically(path: string, text: string): void {
  temporaryCounter += 1;
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${temporaryCounter}.tmp`);
  mkdirSync(dirname(path), { recursive: true });
  try {
    writeFileSync(temporary, text);
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

/** Pretty JSON with a trailing newline, written atomically. */
export function writeJsonFileAtomically(path: string, value: unknown): void {
  writeFileAtomically(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** sha256 of a file's bytes, hex; streamed so multi-gigabyte models do not need to fit in memory. */
export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
