/**
 * The playground built by Vite into a temporary folder (as `pnpm build` builds it) and served by
 * Vite's static preview server on a free localhost port: the tests exercise the shipped files.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, preview } from "vite";

export const appFolder = fileURLToPath(new URL("..", import.meta.url));

export async function buildPage(): Promise<{ outDir: string; remove: () => void }> {
  const outDir = mkdtempSync(join(tmpdir(), "playground-build-"));
  await build({ root: appFolder, logLevel: "error", build: { outDir, emptyOutDir: true } });
  return { outDir, remove: () => rmSync(outDir, { recursive: true, force: true }) };
}

export async function servePage(outDir: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = await preview({
    root: appFolder,
    logLevel: "error",
    build: { outDir },
    preview: { host: "127.0.0.1", port: 0, open: false },
  });
  const url = server.resolvedUrls?.local[0];
  if (url === undefined) throw new Error("the Vite preview server reported no local URL");
  return { url, close: () => server.close() };
}
