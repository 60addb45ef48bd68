import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The monorepo root: the nearest folder above this file holding pnpm-workspace.yaml. */
export function repositoryRoot(): string {
  let folder = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(folder, "pnpm-workspace.yaml"))) {
    const parent = dirname(folder);
    if (parent === folder) throw new Error("no pnpm-workspace.yaml above the test folder");
    folder = parent;
  }
  return folder;
}

/**
 * A path inside the read-only `shared` folder beside the checkout (CI lays it there too).
 * Its data is never copied into the repository: tests read it in place.
 */
export function sharedPath(...parts: string[]): string {
  return resolve(repositoryRoot(), "..", "shared", ...parts);
}

export const sharedModelPaths = {
  get stories260K() {
    return sharedPath("models", "stories260K.bin");
  },
  get tokenizer() {
    return sharedPath("models", "tok512.bin");
  },
  get validationText() {
    return sharedPath("models", "tinystories_val_256k.txt");
  },
};
