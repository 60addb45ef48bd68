/** `pnpm readme-examples`: rewrites the example blocks of every package README from its files. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ReadmeExampleError, readmeFiles, repositoryRoot } from "./readme-examples.js";

try {
  for (const file of readmeFiles()) {
    if (file.rendered === file.current) continue;
    writeFileSync(join(repositoryRoot, file.path), file.rendered);
    console.log(`updated ${file.path}`);
  }
} catch (error) {
  if (!(error instanceof ReadmeExampleError)) throw error;
  console.error(`readme-examples: ${error.message}`);
  process.exitCode = 1;
}
