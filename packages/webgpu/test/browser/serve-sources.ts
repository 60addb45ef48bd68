/**
 * A localhost server for the headless-Chromium tests: it serves the package's, core's and models'
 * TypeScript sources transpiled one file at a time (no bundler in this repository; imports already
 * end in .js), a page whose import map points the workspace packages at those sources and maps no
 * `node:` module (the main entry of @self-extend/models needs none; file access is in its /node
 * entry), and the files the test names (model files) as bytes. The import map resolves the way a
 * browser bundler does: `#node-runtime` to its `browser` condition, and the two third-party ESM
 * files core and models import (@huggingface/jinja for chat templates, @huggingface/tokenizers
 * for byte-level BPE) to their own single-file builds.
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const packageFolder = fileURLToPath(new URL("../..", import.meta.url));
const roots: Record<string, string> = {
  // the pages import "../../src/...", which the browser resolves to /src/...
  src: join(packageFolder, "src"),
  core: join(packageFolder, "..", "core", "src"),
  models: join(packageFolder, "..", "models", "src"),
  test: join(packageFolder, "test", "browser"),
};

/**
 * Third-party ESM files served at /vendor/<name>, each one self-contained, from the folders pnpm
 * links beside the workspace packages that depend on them.
 */
const vendorFiles: Record<string, string> = {
  "jinja.js": join(packageFolder, "..", "core", "node_modules", "@huggingface", "jinja", "dist", "index.js"),
  "tokenizers.js": join(
    packageFolder,
    "..",
    "models",
    "node_modules",
    "@huggingface",
    "tokenizers",
    "dist",
    "tokenizers.mjs",
  ),
};

const importMap = {
  imports: {
    "@self-extend/core": "/core/index.js",
    // No entry for any `node:` module: the main entry of @self-extend/models must not need one.
    "@self-extend/models": "/models/index.js",
    "#node-runtime": "/src/node-runtime.browser.js",
    "@huggingface/jinja": "/vendor/jinja.js",
    "@huggingface/tokenizers": "/vendor/tokenizers.js",
  },
};

const page = `<!doctype html><meta charset="utf-8"><title>webgpu browser test</title>
<script type="importmap">${JSON.stringify(importMap)}</script>
<script type="module">
import { runKernelChecks } from "/test/kernel-page.js";
import { runForwardPass } from "/test/forward-page.js";
window.runKernelChecks = runKernelChecks;
window.runForwardPass = runForwardPass;
window.ready = true;
</script>`;

function transpiled(root: string, path: string): string | undefined {
  const file = normalize(join(root, path.replace(/\.js$/, ".ts")));
  if (!file.startsWith(root)) return undefined;
  try {
    const source = readFileSync(file, "utf8");
    return ts.transpileModule(source, {
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: false,
      },
    }).outputText;
  } catch {
    return undefined;
  }
}

/**
 * Starts the server. `files` maps names to paths on disk, served at `/files/<name>` (binary); any
 * other request outside the source roots is a 404.
 */
export async function serveSources(
  files: Record<string, string> = {},
): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    if (url.pathname === "/") {
      response.writeHead(200, { "content-type": "text/html" }).end(page);
      return;
    }
    const [, root, ...rest] = url.pathname.split("/");
    if (root === "vendor") {
      const path = Object.hasOwn(vendorFiles, rest.join("/")) ? vendorFiles[rest.join("/")] : undefined;
      if (path === undefined) response.writeHead(404).end();
      else response.writeHead(200, { "content-type": "text/javascript" }).end(readFileSync(path));
      return;
    }
    if (root === "files") {
      const path = Object.hasOwn(files, rest.join("/")) ? files[rest.join("/")] : undefined;
      if (path === undefined) response.writeHead(404).end();
      else response.writeHead(200, { "content-type": "application/octet-stream" }).end(readFileSync(path));
      return;
    }
    const code = roots[root] ? transpiled(roots[root], rest.join("/")) : undefined;
    if (code === undefined) response.writeHead(404).end();
    else response.writeHead(200, { "content-type": "text/javascript" }).end(code);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
