import type { NodeLlamaCppLocation } from "./llama-cpp-sources.mjs";

export declare const packageFolder: string;
export declare const nativeBridgeSource: string;
export declare const nativeBridgeFileName: string;
export declare class NativeBridgeBuildError extends Error {}
export declare function nativeBridgeCacheRoot(environment?: NodeJS.ProcessEnv): string;
export declare function nativeBridgeKey(version: string): string;
export interface NativeBridgeLocation {
  readonly nodeLlamaCpp: NodeLlamaCppLocation;
  readonly cacheRoot: string;
  readonly key: string;
  readonly folder: string;
  readonly file: string;
}
export declare function nativeBridgeLocation(cacheRoot?: string): NativeBridgeLocation;
export declare function checkNativeBridgeFolder(folder: string, key: string): string | undefined;
export declare function buildNativeBridge(options?: {
  cacheRoot?: string;
  force?: boolean;
}): NativeBridgeLocation & { readonly built: boolean };
