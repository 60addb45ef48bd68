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

/** A path inside the shared read-only data folder that sits next to the repository. */
export function sharedPath(...parts: string[]): string {
  return resolve(repositoryRoot(), "..", "shared", ...parts);
}
