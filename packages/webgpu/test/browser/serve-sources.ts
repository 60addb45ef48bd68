/**
 * A localhost server for the headless-Chromium test: it serves the kernel's and core's TypeScript
 * sources transpiled one file at a time (no bundler in this repository; imports already end in
 * .js), plus a page whose import map points @self-extend/core at core's sources.
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const packageFolder = fileURLToPath(new URL("../..", import.meta.url));
const roots: Record<string, string> = {
  // kernel-page.ts imports "../../src/...", which the browser resolves to /src/...
  src: join(packageFolder, "src"),
  core: join(packageFolder, "..", "core", "src"),
  test: join(packageFolder, "test", "browser"),
};

const page = `<!doctype html><meta charset="utf-8"><title>webgpu kernel test</title>
<script type="importmap">{"imports": {"@self-extend/core": "/core/index.js"}}</script>
<script type="module">import { runKernelChecks } from "/test/kernel-page.js"; window.runKernelChecks = runKernelChecks; window.ready = true;</script>`;

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

export async function serveSources(): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    if (url.pathname === "/") {
      response.writeHead(200, { "content-type": "text/html" }).end(page);
      return;
    }
    const [, root, ...rest] = url.pathname.split("/");
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
