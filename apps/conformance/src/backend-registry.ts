/**
 * The adapters the app knows. Each is an optional peer package, imported only when the suite runs,
 * so a machine without a runtime still runs everything else and reports that adapter as
 * "not available" with the reason. Third-party adapters use `runConformance` directly.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { type BackendUnderTest, readValidatedJson, type ToleranceTable } from "@self-extend/conformance";
import type { SelfExtendBackendV1 } from "@self-extend/core";
import { createReferenceBackend } from "@self-extend/reference";

export interface RegisteredBackend {
  /** The `--backend` name. */
  readonly name: string;
  readonly packageName: string;
  /** The factory the package exports. */
  readonly factory: string;
  /** Extra runs of the same backend in other modes, each its own column. */
  readonly variants?: readonly {
    readonly label: string;
    readonly sessionOptions: BackendUnderTest["sessionOptions"];
    /** Measured and reported, not counted (see BackendUnderTest.informational). */
    readonly informational?: BackendUnderTest["informational"];
  }[];
}

export const registeredBackends: readonly RegisteredBackend[] = [
  { name: "reference", packageName: "@self-extend/reference", factory: "createReferenceBackend" },
  {
    name: "llama-cpp",
    packageName: "@self-extend/llama-cpp",
    factory: "createLlamaCppBackend",
    variants: [
      {
        label: "llama-cpp:fast-prefill",
        sessionOptions: { mode: "fast-prefill" },
        informational: {
          why: "fast-prefill: batched prompt with a bounded, documented deviation from exact (decoding stays exact); measured, not counted",
          // Chunks of C = G tokens (the adapter's default): largest position error
          // C - 1 - floor((C - 1) / G) = G - 1 (@self-extend/llama-cpp's fastPrefillPositionError).
          describe: ({ groupSize }) =>
            `chunk ${groupSize} = G: largest position error ${groupSize - 1 - Math.floor((groupSize - 1) / groupSize)}`,
        },
      },
    ],
  },
  { name: "onnxruntime", packageName: "@self-extend/onnxruntime", factory: "createOnnxRuntimeBackend" },
  { name: "webgpu", packageName: "@self-extend/webgpu", factory: "createWebGpuBackend" },
];

const require = createRequire(import.meta.url);

/**
 * An adapter's own tolerance table for the suite (`conformance/suite-tolerances.json` in its
 * package, in the suite's tolerances schema), if it ships one. Tolerances for the adapters in this
 * repository live in the suite's own data/tolerances.json; this is for third-party adapters.
 */
function adapterTolerances(packageName: string): ToleranceTable | undefined {
  let path: string;
  try {
    path = join(
      dirname(require.resolve(`${packageName}/package.json`)),
      "conformance",
      "suite-tolerances.json",
    );
  } catch {
    return undefined;
  }
  return existsSync(path) ? readValidatedJson<ToleranceTable>(path, "tolerances.schema.json") : undefined;
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
          ? `${entry.packageName} is not installed (or not built): pnpm add ${entry.packageName}`
          : `${entry.packageName} failed to load: ${(error as Error).message.split("\n")[0]}`,
      ),
    ];
  }
  const factory = module[entry.factory];
  if (typeof factory !== "function") {
    return [unavailable(entry, `${entry.packageName} does not export ${entry.factory} yet`)];
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
  const tolerances = adapterTolerances(entry.packageName);
  return [
    { backend, tolerances },
    ...(entry.variants ?? []).map((variant) => ({
      backend,
      tolerances,
      label: variant.label,
      sessionOptions: variant.sessionOptions,
      informational: variant.informational,
    })),
  ];
}

export function findRegisteredBackend(name: string): RegisteredBackend | undefined {
  return registeredBackends.find((entry) => entry.name === name);
}
