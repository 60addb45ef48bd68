import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The `shared` folder beside this checkout, where stories260K and its tokenizer live. Models from
 * there are read in place, never copied. Undefined when the app runs outside the repository.
 */
export function defaultSharedFolder(): string | undefined {
  let folder = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(folder, "pnpm-workspace.yaml"))) {
      const shared = resolve(folder, "..", "shared");
      return existsSync(shared) ? shared : undefined;
    }
    const parent = dirname(folder);
    if (parent === folder) return undefined;
    folder = parent;
  }
}
