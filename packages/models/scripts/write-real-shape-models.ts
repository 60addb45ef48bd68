/**
 * Writes the real-shape models (realShapeModelSpecs: the widths of Llama-3.2-1B, Qwen2.5-0.5B,
 * Gemma-2-2B and Phi-3-mini at one or two layers) into a folder, for `self-extend conformance
 * --model <file>` on every adapter. Existing files are reused.
 *
 *   npx tsx --conditions=source packages/models/scripts/write-real-shape-models.ts <folder> [name]...
 */
import { realShapeModelSpecs, writeRealShapeModel } from "../src/node.js";

const [folder, ...names] = process.argv.slice(2);
if (folder === undefined) {
  console.error(
    `usage: write-real-shape-models <folder> [name]... (names: ${realShapeModelSpecs.map((spec) => spec.name).join(", ")})`,
  );
  process.exit(2);
}
for (const name of names.length > 0 ? names : realShapeModelSpecs.map((spec) => spec.name)) {
  try {
    console.log(writeRealShapeModel(folder, name));
  } catch (error) {
    console.error(`write-real-shape-models: ${(error as Error).message}`);
    process.exit(2);
  }
}
