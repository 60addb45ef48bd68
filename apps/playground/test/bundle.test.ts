/**
 * The built page is browser code only. Vite replaces Node built-ins it meets with an empty
 * `__vite-browser-external` module (and warns), so a clean build is not proof: the emitted
 * JavaScript is read back. No bare import may be left either: @self-extend/webgpu's Node-only
 * imports sit behind its `#node-runtime` import, whose `browser` condition has none, so nothing
 * needs to be kept external.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { appFolder, buildPage } from "./built-page.js";

const built = await buildPage();
afterAll(() => built.remove());
const assets = join(built.outDir, "assets");
const scripts = readdirSync(assets).filter((name) => name.endsWith(".js"));

describe("the built playground", () => {
  it("holds the page, its worker and the demo model's exact bytes", () => {
    expect(scripts.some((name) => name.startsWith("inference-worker-"))).toBe(true);
    const model = readdirSync(assets).find((name) => name.endsWith(".gguf"));
    expect(model, "the demo model asset").toBeDefined();
    const original = readFileSync(join(appFolder, "..", "..", "packages", "demo-model", "demo-model.gguf"));
    expect(readFileSync(join(assets, model ?? "")).equals(original)).toBe(true);
  });

  it("has no Node-only code: no Node built-in, no Dawn, no file reader in any chunk", () => {
    // Vite's shim for a bundled Node built-in, Dawn's loader, the models package's Node file
    // reader and evaluation's result-file hashing, had any of them been bundled.
    const nodeOnlyMarkers = [
      "__vite-browser-external",
      "dawn.node",
      "openSync",
      "readFileSync",
      "createHash",
    ];
    const found: string[] = [];
    const bareImports = new Set<string>();
    for (const name of scripts) {
      const code = readFileSync(join(assets, name), "utf8");
      for (const marker of nodeOnlyMarkers) if (code.includes(marker)) found.push(`${name}: ${marker}`);
      for (const match of code.matchAll(
        /\bimport\s*\(?\s*[`"']([^`"'./][^`"']*)[`"']|\bfrom\s*[`"']([^`"'./][^`"']*)[`"']/g,
      )) {
        bareImports.add(match[1] ?? match[2]);
      }
    }
    expect(found).toEqual([]);
    expect([...bareImports]).toEqual([]);
  });
});
