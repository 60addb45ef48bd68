/**
 * The optional native bridge (native/llama-context-bridge.cc, built by
 * scripts/build-native-bridge.mjs): raw logits and llama.cpp's own seq_div on node-llama-cpp's
 * context. Without it the adapter still works in exact and fast-prefill modes, returning
 * log-softmax rows; llama.cpp-compatible mode needs it.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { SelfExtendError } from "@self-extend/core";

/** The addon's functions; the first two arguments are node-llama-cpp's native context and model. */
export interface NativeBridge {
  readLogits(nativeContext: unknown, nativeModel: unknown, batchIndex: number, target: Float32Array): number;
  divideSequencePositions(
    nativeContext: unknown,
    nativeModel: unknown,
    sequenceId: number,
    start: number,
    end: number,
    divisor: number,
  ): void;
  /** The position of every cell of the sequence in llama.cpp's KV cache, in cell order. */
  readSequencePositions(nativeContext: unknown, nativeModel: unknown, sequenceId: number): Int32Array;
  describe(
    nativeContext: unknown,
    nativeModel: unknown,
  ): { contextSize: number; vocabularySize: number; library: string };
}

/** Where the built addon lives: native/build/ beside src/ and dist/. */
export const nativeBridgePath = join(
  import.meta.dirname,
  "..",
  "native",
  "build",
  "llama-context-bridge.node",
);

/** How to build it, for error messages. */
export const nativeBridgeBuildCommand =
  "node node_modules/@self-extend/llama-cpp/scripts/build-native-bridge.mjs";

/** The bridge is needed (llama.cpp-compatible mode) but was not built or did not load. */
export class NativeBridgeUnavailableError extends SelfExtendError {
  override readonly name = "NativeBridgeUnavailableError";
  constructor(
    readonly purpose: string,
    readonly reason: string,
  ) {
    super(
      `${purpose} needs the native bridge (${nativeBridgePath}), which ${reason}; build it with \`${nativeBridgeBuildCommand}\` (Linux, a C++17 compiler and git)`,
    );
  }
}

let loaded: { bridge?: NativeBridge; reason?: string } | undefined;

/** Loads the addon once; undefined (with the reason kept for errors) when it is not there. */
export function loadNativeBridge(): NativeBridge | undefined {
  if (loaded === undefined) {
    if (process.env.SELF_EXTEND_DISABLE_NATIVE_BRIDGE === "1") {
      loaded = { reason: "is disabled by SELF_EXTEND_DISABLE_NATIVE_BRIDGE=1" };
    } else if (!existsSync(nativeBridgePath)) {
      loaded = { reason: "is not built" };
    } else {
      try {
        loaded = { bridge: createRequire(import.meta.url)(nativeBridgePath) as NativeBridge };
      } catch (error) {
        loaded = { reason: `failed to load: ${(error as Error).message}` };
      }
    }
  }
  return loaded.bridge;
}

/** Why {@link loadNativeBridge} returned undefined. */
export function nativeBridgeUnavailableReason(): string | undefined {
  loadNativeBridge();
  return loaded?.reason;
}

/** The bridge, or a clear error naming what needed it. */
export function requireNativeBridge(purpose: string): NativeBridge {
  const bridge = loadNativeBridge();
  if (bridge === undefined)
    throw new NativeBridgeUnavailableError(purpose, nativeBridgeUnavailableReason() ?? "");
  return bridge;
}
