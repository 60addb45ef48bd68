/**
 * Locates the shared test assets: the folder `shared` next to the repository root (the folder that
 * holds pnpm-workspace.yaml), found by walking up from this file so a clone anywhere works.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findRepositoryRoot(start: string): string {
  let folder = start;
  while (!existsSync(join(folder, "pnpm-workspace.yaml"))) {
    const parent = dirname(folder);
    if (parent === folder) throw new Error(`no pnpm-workspace.yaml above ${start}`);
    folder = parent;
  }
  return folder;
}

export const repositoryRoot = findRepositoryRoot(dirname(fileURLToPath(import.meta.url)));
export const sharedFolder = join(repositoryRoot, "..", "shared");

export const sharedModelPaths = {
  stories260K: join(sharedFolder, "models", "stories260K.bin"),
  tokenizer: join(sharedFolder, "models", "tok512.bin"),
  validationText: join(sharedFolder, "models", "tinystories_val_256k.txt"),
} as const;

export const fixturesFolder = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
