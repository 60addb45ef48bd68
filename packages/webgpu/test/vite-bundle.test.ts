/**
 * A web app that imports @self-extend/webgpu and builds with Vite 8 needs no configuration: no
 * externals, no stubs. Vite's bundler (rolldown) follows literal `import()` calls and would bundle
 * Dawn's loader and the GGUF file reader; the package keeps them behind its `#node-runtime` import,
 * whose `browser` condition has none. Vite swaps a Node built-in it meets for an empty
 * `__vite-browser-external` module (with a warning only), so a clean build is no proof: the emitted
 * JavaScript is read back. Built twice: from the TypeScript sources (the `source` condition, as
 * workspace apps resolve it) and from dist/ (as a published package resolves), minified as a
 * production build is (so comments that name Node modules are not mistaken for code).
 */
import { fileURLToPath } from "node:url";
import type { Plugin, Rolldown } from "vite";
import { build, defaultClientConditions } from "vite";
import { describe, expect, it } from "vitest";

/** The entry's id: a file in this package (never written), so `@self-extend/webgpu` resolves as a self-reference. */
const entryPath = fileURLToPath(new URL("../browser-entry.js", import.meta.url));

/** Uses the whole public surface, so tree shaking cannot drop the paths that reach Node code. */
const entryCode = `
import * as webgpu from "@self-extend/webgpu";
import * as kernels from "@self-extend/webgpu/kernels";
globalThis.selfExtendWebGpu = { webgpu, kernels };
`;

function browserEntry(): Plugin {
  return {
    name: "browser-entry",
    resolveId: (id) => (id === entryPath ? entryPath : undefined),
    load: (id) => (id === entryPath ? entryCode : undefined),
  };
}

async function bundleWithVite(conditions: string[]): Promise<Rolldown.OutputChunk[]> {
  const result = await build({
    configFile: false,
    root: fileURLToPath(new URL("..", import.meta.url)),
    logLevel: "silent",
    plugins: [browserEntry()],
    resolve: { conditions },
    build: { write: false, target: "es2022", rolldownOptions: { input: entryPath } },
  });
  const outputs = Array.isArray(result) ? result : [result];
  return outputs.flatMap((output) =>
    "output" in output
      ? output.output.filter((item): item is Rolldown.OutputChunk => item.type === "chunk")
      : [],
  );
}

// Vite's shim for a bundled Node built-in, Dawn's loader, the models package's Node file reader
// and Node's hashing, had any of them been bundled (the markers apps/playground checks too).
const nodeOnlyMarkers = ["__vite-browser-external", "dawn.node", "openSync", "readFileSync", "createHash"];

describe("@self-extend/webgpu in a Vite 8 browser build with no externals", () => {
  it.each([
    ["the TypeScript sources", ["source", ...defaultClientConditions]],
    ["dist/", [...defaultClientConditions]],
  ])("bundles from %s without Node-only code or imports left", async (_from, conditions) => {
    const chunks = await bundleWithVite(conditions);
    const code = chunks.map((chunk) => chunk.code).join("\n");
    // The graph was walked: the kernels' WGSL and the forward pass's { url } model loading are in.
    expect(code).toContain("@workgroup_size");
    expect(code).toContain("cannot be fetched");
    expect(nodeOnlyMarkers.filter((marker) => code.includes(marker))).toEqual([]);
    const bareImports = chunks.flatMap((chunk) => [...chunk.imports, ...chunk.dynamicImports]);
    expect(bareImports.filter((name) => !chunks.some((chunk) => chunk.fileName === name))).toEqual([]);
  });
});
