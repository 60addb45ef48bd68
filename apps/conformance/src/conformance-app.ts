/**
 * What `self-extend conformance` does, as a function: pick the adapters, run the suite on the
 * default models (or a user's), and hand back the report. Printing is the caller's.
 */
import {
  findRegisteredBackend,
  loadRegisteredBackend,
  registeredBackends,
  UnknownBackendError,
} from "@self-extend/backends";
import {
  type BackendUnderTest,
  type ConformanceProgress,
  type ConformanceReport,
  type ConformanceResult,
  runConformanceSuite,
} from "@self-extend/conformance";
import { defaultSharedFolder } from "./repository-paths.js";

export interface ConformanceAppOptions {
  /** Backend names to run (default: every registered adapter, the reference included). */
  readonly backends?: readonly string[];
  /** A user's GGUF: the suite runs on it alone, with lengths from its trained context. */
  readonly userModelPath?: string;
  readonly sharedFolder?: string;
  readonly cacheFolder?: string;
  readonly caseNames?: readonly string[];
  readonly modelIds?: readonly string[];
  readonly onProgress?: (progress: ConformanceProgress) => void;
  readonly onResult?: (result: ConformanceResult) => void;
  readonly signal?: AbortSignal;
}

export async function runConformanceApp(options: ConformanceAppOptions = {}): Promise<ConformanceReport> {
  const names = options.backends ?? registeredBackends.map((entry) => entry.name);
  const entries = names.map((name) => {
    const entry = findRegisteredBackend(name);
    if (entry === undefined) throw new UnknownBackendError(name);
    return entry;
  });
  const backends: BackendUnderTest[] = [];
  for (const entry of entries) backends.push(...(await loadRegisteredBackend(entry)));
  return runConformanceSuite(backends, {
    userModelPath: options.userModelPath,
    sharedFolder: options.sharedFolder ?? defaultSharedFolder(),
    cacheFolder: options.cacheFolder,
    caseNames: options.caseNames,
    modelIds: options.modelIds,
    onProgress: options.onProgress,
    onResult: options.onResult,
    signal: options.signal,
  });
}
