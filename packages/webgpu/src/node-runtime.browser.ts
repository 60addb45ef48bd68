/**
 * What `#node-runtime` resolves to under the `browser` condition: the same functions with no Node
 * code behind them, so bundlers have nothing Node-only to follow. The adapter checks for Node
 * before calling any of them; these errors only surface if a browser build runs where that check
 * passes (a browser-conditioned bundle executed by Node).
 */
import { type LlamaWeights, ModelFileError } from "@self-extend/models";
import type { DawnModule } from "./node-runtime.js";

export type { DawnModule };

export async function importDawn(): Promise<DawnModule> {
  throw new Error(
    'the "webgpu" package (Dawn) is only available in Node; in a browser WebGPU comes from navigator.gpu',
  );
}

export async function hasInstalledVulkanDriver(): Promise<boolean> {
  return false;
}

export async function loadWeightsFromPath(path: string): Promise<LlamaWeights> {
  throw new ModelFileError(
    path,
    "a { path } model source needs Node's file system; in a browser pass { url } or { bytes }",
  );
}
