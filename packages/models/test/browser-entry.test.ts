/**
 * The main entry must bundle for a browser as it is: no `node:` module reachable from it, so no
 * bundler needs Node built-ins stubbed. esbuild (platform "browser") refuses to bundle a Node
 * built-in, which is the independent check here; the Node entry is the control that it does.
 */
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";

const entry = (file: string) => fileURLToPath(new URL(`../src/${file}`, import.meta.url));

async function bundleForBrowser(file: string) {
  return build({
    entryPoints: [entry(file)],
    bundle: true,
    write: false,
    platform: "browser",
    format: "esm",
    conditions: ["source"],
    logLevel: "silent",
    metafile: true,
  });
}

describe("@self-extend/models in a browser bundle", () => {
  it("bundles the main entry with no node: import anywhere in its module graph", async () => {
    const result = await bundleForBrowser("index.ts");
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((input) => input.endsWith("tokenizer.ts"))).toBe(true);
    for (const [input, { imports }] of Object.entries(result.metafile.inputs)) {
      for (const imported of imports) expect(`${input} -> ${imported.path}`).not.toMatch(/-> node:/);
    }
  });

  it("refuses the Node entry, which reads files (the check above can fail)", async () => {
    await expect(bundleForBrowser("node.ts")).rejects.toThrow(/node:fs/);
  });
});
