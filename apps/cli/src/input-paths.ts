/**
 * Checks of the files and folders named on the command line, made before any work starts, so a
 * typo in a path is one line naming the flag, the path and the reason, not a stack trace after a
 * long computation. Output paths are checked by creating (and removing) a file beside them: that is
 * the only test that also catches read-only file systems and files a root user may not create.
 */
import { closeSync, openSync, rmSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { CliUsageError } from "./cli-error.js";

function reason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case "ENOENT":
      return "does not exist";
    case "EACCES":
    case "EPERM":
      return "is not readable (permission denied)";
    case "ENOTDIR":
      return "has a file where a folder should be";
    default:
      return `cannot be read (${code ?? String(error)})`;
  }
}

/** `path` must be an existing regular file (or a device such as /dev/stdin). */
export function requireInputFile(flag: string, path: string): string {
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(path);
  } catch (error) {
    throw new CliUsageError(`--${flag} ${path} ${reason(error)}`);
  }
  if (stats.isDirectory()) throw new CliUsageError(`--${flag} ${path} is a folder; give a file`);
  return path;
}

/** `path` must be an existing folder. */
export function requireInputFolder(flag: string, path: string): string {
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(path);
  } catch (error) {
    throw new CliUsageError(`--${flag} ${path} ${reason(error)}`);
  }
  if (!stats.isDirectory()) throw new CliUsageError(`--${flag} ${path} is a file; give a folder`);
  return path;
}

/** `path` must be a folder that exists or can be created (its nearest existing ancestor is a folder). */
export function requireOutputFolder(flag: string, path: string): string {
  const absolute = resolve(path);
  try {
    if (!statSync(absolute).isDirectory()) {
      throw new CliUsageError(`--${flag} ${path} is a file; give a folder`);
    }
  } catch (error) {
    if (error instanceof CliUsageError) throw error;
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new CliUsageError(`--${flag} ${path} ${reason(error)}`);
    }
    // Created by the command; the parent must be a folder we can write to.
    requireWritableFolder(flag, path, dirname(absolute));
  }
  return path;
}

/** `path` must be a file name in an existing, writable folder, and not itself a folder. */
export function requireOutputFile(flag: string, path: string): string {
  const absolute = resolve(path);
  try {
    if (statSync(absolute).isDirectory()) {
      throw new CliUsageError(`--${flag} ${path} is a folder; give a file name`);
    }
  } catch (error) {
    if (error instanceof CliUsageError) throw error;
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new CliUsageError(`--${flag} ${path} ${reason(error)}`);
    }
  }
  requireWritableFolder(flag, path, dirname(absolute));
  return path;
}

function requireWritableFolder(flag: string, path: string, folder: string): void {
  let stats: ReturnType<typeof statSync>;
  try {
    stats = statSync(folder);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliUsageError(
      `--${flag} ${path}: the folder ${folder} ${code === "ENOENT" ? "does not exist" : reason(error)}`,
    );
  }
  if (!stats.isDirectory()) throw new CliUsageError(`--${flag} ${path}: ${folder} is not a folder`);
  const probe = resolve(folder, `.self-extend-write-check-${process.pid}-${Date.now()}`);
  try {
    closeSync(openSync(probe, "wx"));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliUsageError(
      `--${flag} ${path}: the folder ${folder} is not writable (${code ?? String(error)})`,
    );
  }
  rmSync(probe, { force: true });
}
