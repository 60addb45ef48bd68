#!/usr/bin/env node
/**
 * One changeset per package: `changeset version` copies a changeset's whole text into the
 * CHANGELOG of every package its front matter names, so a changeset naming several packages puts
 * one package's news into the others' CHANGELOGs. Fails, naming the file, when a changeset names
 * more or fewer than one package.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const folder = join(import.meta.dirname, "..", ".changeset");
const problems = [];
for (const name of readdirSync(folder).filter((file) => file.endsWith(".md") && file !== "README.md")) {
  const text = readFileSync(join(folder, name), "utf8");
  const frontMatter = /^---\n([\s\S]*?)\n---\n/.exec(text);
  if (frontMatter === null) {
    problems.push(`.changeset/${name}: no front matter (--- ... ---) at the top`);
    continue;
  }
  const packages = frontMatter[1].split("\n").filter((line) => line.trim() !== "");
  if (packages.length !== 1) {
    problems.push(
      `.changeset/${name}: names ${packages.length} packages (${packages.map((line) => line.split(":")[0]).join(", ")}); write one changeset per package`,
    );
  }
}
if (problems.length > 0) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log("changesets: one package each");
