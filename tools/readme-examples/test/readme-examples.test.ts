import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  exampleReferences,
  ReadmeExampleError,
  readmeFiles,
  renderReadme,
  repositoryRoot,
} from "../src/readme-examples.js";

const adapters = ["reference", "onnxruntime", "webgpu", "llama-cpp"];

describe("README examples", () => {
  const files = readmeFiles();

  it.each(files.map((file) => [file.path, file] as const))(
    "%s holds its example files as they are",
    (_, file) => {
      // On failure: run `pnpm readme-examples` and commit the READMEs.
      expect(file.current).toBe(file.rendered);
    },
  );

  it.each(adapters)("the %s README shows examples/usage.ts", (adapter) => {
    const readme = files.find((file) => file.path === join("packages", adapter, "README.md"));
    expect(exampleReferences(readme?.current ?? "")).toContain("examples/usage.ts");
  });

  it("every example file of a package is shown in its README", () => {
    for (const group of ["packages", "apps"]) {
      for (const name of readdirSync(join(repositoryRoot, group))) {
        const folder = join(repositoryRoot, group, name, "examples");
        if (!existsSync(folder)) continue;
        const readme = files.find((file) => file.path === join(group, name, "README.md"));
        const shown = exampleReferences(readme?.current ?? "");
        for (const example of readdirSync(folder).filter((file) => file.endsWith(".ts"))) {
          expect(shown, `${group}/${name}/README.md`).toContain(`examples/${example}`);
        }
      }
    }
  });

  it("replaces a stale block with the file and leaves the rest of the README alone", () => {
    const readme =
      "# x\n\nintro\n\n<!-- example: examples/a.ts -->\n```ts\nold();\n```\n<!-- /example -->\n\nend\n";
    expect(renderReadme(readme, () => "run();\n")).toBe(
      "# x\n\nintro\n\n<!-- example: examples/a.ts -->\n```ts\nrun();\n```\n<!-- /example -->\n\nend\n",
    );
  });

  it("refuses an example marker without its closing marker", () => {
    expect(() => renderReadme("<!-- example: examples/a.ts -->\n```ts\n```\n", () => "")).toThrow(
      ReadmeExampleError,
    );
  });
});
