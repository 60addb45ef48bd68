/**
 * README examples are files, not prose: each package's `examples/*.ts` is type-checked and run by
 * the package's tests and by the consumer test (tools/consumer-test), and pasted into its README
 * between markers:
 *
 *     <!-- example: examples/usage.ts -->
 *     ```ts
 *     (the file, verbatim)
 *     ```
 *     <!-- /example -->
 *
 * The path is relative to the README. `pnpm readme-examples` rewrites the blocks; the test of this
 * tool fails when a README differs from what it would write.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

const blockPattern = /<!-- example: ([^\s>]+) -->\n[\s\S]*?<!-- \/example -->/g;

export class ReadmeExampleError extends Error {
  override name = "ReadmeExampleError";
}

/** The example files a README names, relative to its folder, in order. */
export function exampleReferences(readme: string): string[] {
  return [...readme.matchAll(blockPattern)].map((match) => match[1]);
}

/** The README with every example block holding its file's current text. */
export function renderReadme(readme: string, readExample: (path: string) => string): string {
  const opened = readme.match(/<!-- example: /g)?.length ?? 0;
  const blocks = exampleReferences(readme).length;
  if (opened !== blocks) {
    throw new ReadmeExampleError(
      `${opened} example markers but ${blocks} complete blocks: each "<!-- example: PATH -->" needs its own line and a "<!-- /example -->" after it`,
    );
  }
  return readme.replace(blockPattern, (_, path: string) => {
    const text = readExample(path);
    return `<!-- example: ${path} -->\n\`\`\`ts\n${text.endsWith("\n") ? text : `${text}\n`}\`\`\`\n<!-- /example -->`;
  });
}

export interface ReadmeFile {
  /** Relative to the repository root. */
  readonly path: string;
  readonly current: string;
  readonly rendered: string;
}

/** Every README of a package or an app, with what `pnpm readme-examples` would write. */
export function readmeFiles(root = repositoryRoot): ReadmeFile[] {
  const files: ReadmeFile[] = [];
  for (const group of ["packages", "apps"]) {
    for (const name of readdirSync(join(root, group)).sort()) {
      const path = join(root, group, name, "README.md");
      if (!existsSync(path)) continue;
      const current = readFileSync(path, "utf8");
      const rendered = renderReadme(current, (example) => {
        const examplePath = join(dirname(path), example);
        if (!existsSync(examplePath)) {
          throw new ReadmeExampleError(`${relative(root, path)} names ${example}, which does not exist`);
        }
        return readFileSync(examplePath, "utf8");
      });
      files.push({ path: relative(root, path), current, rendered });
    }
  }
  return files;
}
