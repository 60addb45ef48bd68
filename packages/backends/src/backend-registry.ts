/**
 * The adapters the tools know, and how to load one by its `--backend` name. Each adapter package
 * is imported only when asked for (they are optional), so a machine without a runtime still runs
 * everything else and reports that adapter as "not available" with the reason.
 *
 * What the suite needs to know about an adapter (its tolerances and skips, in the suite's schemas,
 * and its extra runs in other modes) is declared by the adapter itself, as `conformanceDeclaration`
 * beside its factory: nothing about an adapter is written here but its package and factory names.
 */
import {
  type BackendUnderTest,
  type ConformanceDeclaration,
  readDeclaration,
} from "@self-extend/conformance";
import type { SelfExtendBackendV1 } from "@self-extend/core";
import { createReferenceBackend } from "@self-extend/reference";

export interface RegisteredBackend {
  /** The `--backend` name. */
  readonly name: string;
  readonly packageName: string;
  /** The factory the package exports. */
  readonly factory: string;
}

export const registeredBackends: readonly RegisteredBackend[] = [
  { name: "reference", packageName: "@self-extend/reference", factory: "createReferenceBackend" },
  { name: "llama-cpp", packageName: "@self-extend/llama-cpp", factory: "createLlamaCppBackend" },
  { name: "onnxruntime", packageName: "@self-extend/onnxruntime", factory: "createOnnxRuntimeBackend" },
  { name: "webgpu", packageName: "@self-extend/webgpu", factory: "createWebGpuBackend" },
];

export class UnknownBackendError extends Error {
  override readonly name = "UnknownBackendError";
  readonly known = registeredBackends.map((entry) => entry.name);
  constructor(readonly backend: string) {
    super(
      `unknown backend ${JSON.stringify(backend)}; known: ${registeredBackends.map((entry) => entry.name).join(", ")}`,
    );
  }
}

export class BackendUnavailableError extends Error {
  override readonly name = "BackendUnavailableError";
  constructor(
    readonly backend: string,
    readonly reason: string,
  ) {
    super(`backend ${backend} is not available: ${reason}`);
  }
}

export function findRegisteredBackend(name: string): RegisteredBackend | undefined {
  return registeredBackends.find((entry) => entry.name === name);
}

/** An entry that can never run, so the matrix shows the reason instead of silently leaving it out. */
function unavailable(entry: RegisteredBackend, reason: string): BackendUnderTest {
  const backend: SelfExtendBackendV1 = {
    specificationVersion: "v1",
    name: entry.name,
    capabilities: { modes: [], cachePrecisions: [], architectures: [] },
    checkAvailability: async () => ({ available: false, reason }),
    loadModel: async () => {
      throw new Error(reason);
    },
  };
  return { backend, unavailableReason: reason };
}

/** The backend and its declared variants, each a column of the matrix. */
export async function loadRegisteredBackend(entry: RegisteredBackend): Promise<BackendUnderTest[]> {
  if (entry.name === "reference") return [{ backend: createReferenceBackend() }];
  let module: Record<string, unknown>;
  try {
    module = (await import(entry.packageName)) as Record<string, unknown>;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return [
      unavailable(
        entry,
        code === "ERR_MODULE_NOT_FOUND"
          ? `${entry.packageName} is not installed (or not built): npm install ${entry.packageName}`
          : `${entry.packageName} failed to load: ${(error as Error).message.split("\n")[0]}`,
      ),
    ];
  }
  const factory = module[entry.factory];
  if (typeof factory !== "function") {
    return [unavailable(entry, `${entry.packageName} does not export ${entry.factory}`)];
  }
  let backend: SelfExtendBackendV1;
  try {
    backend = (await factory()) as SelfExtendBackendV1;
  } catch (error) {
    return [unavailable(entry, `${entry.factory}() failed: ${(error as Error).message.split("\n")[0]}`)];
  }
  if (backend?.specificationVersion !== "v1") {
    return [unavailable(entry, `${entry.factory}() did not return a v1 backend`)];
  }
  const declaration = (module.conformanceDeclaration ?? {}) as ConformanceDeclaration;
  const { tolerances, skips } = readDeclaration(declaration);
  return [
    { backend, tolerances, skips },
    ...(declaration.variants ?? []).map((variant) => ({
      backend,
      tolerances,
      skips,
      label: variant.label,
      sessionOptions: variant.sessionOptions,
      informational: variant.informational,
    })),
  ];
}

/**
 * The backend named `name`, ready to use: an unknown name or a backend that cannot run here is
 * refused with one line saying why (UnknownBackendError, BackendUnavailableError).
 */
export async function resolveBackend(name: string): Promise<SelfExtendBackendV1> {
  const entry = findRegisteredBackend(name);
  if (entry === undefined) throw new UnknownBackendError(name);
  const [loaded] = await loadRegisteredBackend(entry);
  const availability =
    loaded.unavailableReason !== undefined
      ? { available: false, reason: loaded.unavailableReason }
      : await loaded.backend.checkAvailability();
  if (!availability.available)
    throw new BackendUnavailableError(name, availability.reason ?? "no reason given");
  return loaded.backend;
}
