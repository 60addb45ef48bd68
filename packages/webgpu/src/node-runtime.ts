/**
 * The Node-only pieces of the adapter, reached through the package's `#node-runtime` import so a
 * browser bundle never sees them: the `browser` condition of package.json `imports` swaps in
 * node-runtime.browser.ts. Literal specifiers, so Node and any bundler resolve them as written;
 * the imports stay dynamic because Dawn is an optional peer dependency and the file readers are
 * needed only for a `{ path }` model source.
 */
import type { LlamaWeights } from "@self-extend/models";

/** The part of the `webgpu` package (Dawn's loader) the adapter uses. */
export interface DawnModule {
  create(flags: string[]): GPU;
}

/** Loads Dawn; rejects when the optional peer dependency `webgpu` is not installed. */
export async function importDawn(): Promise<DawnModule> {
  return (await import("webgpu")) as DawnModule;
}

/** Whether a Vulkan driver manifest (ICD) is installed in the system's standard folders. */
export async function hasInstalledVulkanDriver(): Promise<boolean> {
  const { existsSync, readdirSync } = await import("node:fs");
  return ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"].some(
    (folder) => existsSync(folder) && readdirSync(folder).some((name) => name.endsWith(".json")),
  );
}

/** Reads a model file (GGUF or llama2.c checkpoint) from disk. */
export async function loadWeightsFromPath(path: string): Promise<LlamaWeights> {
  const { loadLlamaWeights } = await import("@self-extend/models/node");
  return loadLlamaWeights(path);
}
