/**
 * The package bundles for a browser as it is: no `node:` module and no Node-only package is
 * reachable through static or literal dynamic imports from its entries, so no bundler needs
 * anything stubbed. esbuild (platform "browser") refuses to bundle Node built-ins; `webgpu`
 * (Dawn), `@self-extend/models/node` and `node:fs` sit behind the package's `#node-runtime`
 * import, whose `browser` condition resolves to a module without them.
 */
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { hasInstalledVulkanDriver, importDawn, loadWeightsFromPath } from "../src/node-runtime.browser.js";

async function bundleForBrowser(entry: string) {
  const result = await build({
    entryPoints: [fileURLToPath(new URL(`../src/${entry}`, import.meta.url))],
    bundle: true,
    write: false,
    platform: "browser",
    format: "esm",
    conditions: ["source"],
    logLevel: "silent",
    metafile: true,
  });
  return Object.entries(result.metafile.inputs).flatMap(([input, { imports }]) =>
    imports.map((imported) => `${input} -> ${imported.path}`),
  );
}

describe("@self-extend/webgpu in a browser bundle", () => {
  it.each(["index.ts", "kernels.ts"])(
    "bundles src/%s without Node built-ins or Node-only packages",
    async (entry) => {
      const imports = await bundleForBrowser(entry);
      // The graph was walked: the forward pass reaches @self-extend/models' main entry.
      expect(imports.some((line) => line.includes("models/src/index.ts"))).toBe(true);
      if (entry === "index.ts") {
        expect(imports.some((line) => line.endsWith("node-runtime.browser.ts"))).toBe(true);
      }
      for (const line of imports) expect(line).not.toMatch(/-> (node:|webgpu$)|models\/src\/node\.ts/);
    },
  );

  it("takes a #node-runtime that refuses Node-only work with one-line errors", async () => {
    await expect(importDawn()).rejects.toThrow(
      /^the "webgpu" package \(Dawn\) is only available in Node; [^\n]+$/,
    );
    await expect(loadWeightsFromPath("model.gguf")).rejects.toThrow(
      /^model\.gguf: a \{ path \} model source needs Node's file system; in a browser pass \{ url \} or \{ bytes \}$/,
    );
    expect(await hasInstalledVulkanDriver()).toBe(false);
  });
});
