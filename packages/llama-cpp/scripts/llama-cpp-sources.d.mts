export declare const supportedNodeLlamaCppVersion: string;
export declare function nodeLlamaCppVersionProblem(foundVersion: string | undefined): string | undefined;
export declare function firstLine(message: unknown): string;
export declare function findPackageRoot(
  require: NodeJS.Require,
  name: string,
): { folder: string; version: string };
export interface NodeLlamaCppLocation {
  readonly folder: string;
  readonly version: string;
  readonly addonHeaders: string;
  readonly bundle: string;
  readonly release: string;
  readonly prebuiltBinaries: string | undefined;
  readonly requireFromNodeLlamaCpp: NodeJS.Require;
}
export declare function locateNodeLlamaCpp(fromFolder: string): NodeLlamaCppLocation;
export declare function extractLlamaCppSources(
  bundle: string,
  paths: readonly string[],
  destination: string,
): string;
