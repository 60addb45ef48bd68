/**
 * The native bridge (native/llama-context-bridge.cc): raw logits, llama.cpp's own seq_div and a
 * K-shift of only the moved cells on node-llama-cpp's context. It is built once per user, on first
 * use, into a cache folder keyed by node-llama-cpp version, platform, architecture, Node ABI and
 * source (scripts/native-bridge-cache.mjs), so reinstalling node_modules keeps it; the addon is
 * checked against its manifest before it is loaded. Where it cannot be built the adapter still
 * works in exact and fast-prefill modes, returning log-softmax rows (and llama.cpp's own whole-cache
 * K-shift), and llama.cpp-compatible mode is refused with a one-line reason.
 */
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { SelfExtendError } from "@self-extend/core";
// Shared with the build script (plain JavaScript, so that it runs before anything is compiled).
import { firstLine } from "../scripts/llama-cpp-sources.mjs";
import {
  checkNativeBridgeFolder,
  nativeBridgeCacheRoot,
  nativeBridgeLocation,
  packageFolder,
} from "../scripts/native-bridge-cache.mjs";

/** An opaque handle of the bridge: its scheduler for the moved-cells K-shift. */
export type KeyShifter = { readonly __keyShifter: unique symbol };

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
  /**
   * A scheduler of the bridge's own over the context's backends, for applyPendingKeyShifts (so the
   * context's own scheduler keeps its decode graph); or why there is none.
   */
  createKeyShifter(nativeContext: unknown, nativeModel: unknown): KeyShifter | string;
  /**
   * Rotates the keys of the cells with a pending shift (llama_memory_seq_add), over the range of
   * cells holding them, and clears the shifts, so the next decode has no whole-cache K-shift to do.
   * Returns the number of cells in that range, or why it left the shift to llama.cpp.
   */
  applyPendingKeyShifts(
    nativeContext: unknown,
    nativeModel: unknown,
    sequenceId: number,
    shifter: KeyShifter,
  ): number | string;
  /** Frees a key shifter's scheduler; call it before disposing of the context it was made for. */
  releaseKeyShifter(shifter: KeyShifter): void;
  /** The position of every cell of the sequence in llama.cpp's KV cache, in cell order. */
  readSequencePositions(nativeContext: unknown, nativeModel: unknown, sequenceId: number): Int32Array;
  describe(
    nativeContext: unknown,
    nativeModel: unknown,
  ): { contextSize: number; vocabularySize: number; library: string };
}

/** The bridge, or why there is none (one line, phrased to follow "the native bridge"). */
export type NativeBridgeState =
  | { readonly bridge: NativeBridge; readonly reason?: undefined }
  | { readonly bridge?: undefined; readonly reason: string };

const buildScript = join(packageFolder, "scripts", "build-native-bridge.mjs");

/** How to build it by hand (and see the compiler's output), for error messages. */
export const nativeBridgeBuildCommand = "npx self-extend-llama-cpp-build-native";

/** The bridge is needed (llama.cpp-compatible mode) but could not be built or loaded. */
export class NativeBridgeUnavailableError extends SelfExtendError {
  override readonly name = "NativeBridgeUnavailableError";
  constructor(
    readonly purpose: string,
    readonly reason: string,
  ) {
    super(
      `${purpose} needs the native bridge, which ${reason}; it is built on first use into ${nativeBridgeCacheRoot()} (Linux, a C++17 compiler, git and Node's headers), or by hand with \`${nativeBridgeBuildCommand}\` (scripts/build-native-bridge.mjs)`,
    );
  }
}

/** The outcome of finding, or else building, the bridge in the cache; never throws. */
export interface NativeBridgeBuildOutcome {
  /** The verified addon, when there is one. */
  readonly file?: string;
  /** True when this call built it. */
  readonly built: boolean;
  /** Why there is no file. */
  readonly reason?: string;
}

/** Runs the build script in a child process, so a first-use build does not block the event loop. */
function runBuildScript(cacheRoot: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [buildScript],
      {
        // Under Electron, execPath is Electron itself: ask it to behave as Node.
        env: { ...process.env, SELF_EXTEND_LLAMA_CPP_CACHE: cacheRoot, ELECTRON_RUN_AS_NODE: "1" },
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, _stdout, stderr) => {
        if (error === null) {
          resolve(undefined);
          return;
        }
        // The script's last stderr line is its one-line reason; above it may be compiler output.
        const lines = String(stderr)
          .split("\n")
          .map((line) => line.trim())
          .filter((line) => line !== "");
        const last = lines.at(-1) ?? firstLine(error.message);
        resolve(last.replace(/^build-native-bridge: /, ""));
      },
    );
  });
}

/**
 * Finds a sound bridge for the installed node-llama-cpp in `cacheRoot`, building it there when it
 * is missing or fails its manifest check (a truncated or altered file is rebuilt).
 */
export async function findOrBuildNativeBridge(
  cacheRoot = nativeBridgeCacheRoot(),
): Promise<NativeBridgeBuildOutcome> {
  let location: ReturnType<typeof nativeBridgeLocation>;
  try {
    location = nativeBridgeLocation(cacheRoot);
  } catch (error) {
    return { built: false, reason: firstLine((error as Error).message) };
  }
  if (checkNativeBridgeFolder(location.folder, location.key) === undefined) {
    return { file: location.file, built: false };
  }
  console.warn(
    `@self-extend/llama-cpp: building the native bridge for raw logits, once, into ${location.folder} (a few seconds)`,
  );
  const failure = await runBuildScript(cacheRoot);
  if (failure !== undefined) return { built: true, reason: `could not be built: ${failure}` };
  const problem = checkNativeBridgeFolder(location.folder, location.key);
  if (problem !== undefined) return { built: true, reason: `was built but ${location.folder} ${problem}` };
  return { file: location.file, built: true };
}

let prepared: Promise<NativeBridgeState> | undefined;

async function findBuildAndLoad(): Promise<NativeBridgeState> {
  if (process.env.SELF_EXTEND_DISABLE_NATIVE_BRIDGE === "1") {
    return { reason: "is disabled by SELF_EXTEND_DISABLE_NATIVE_BRIDGE=1" };
  }
  const outcome = await findOrBuildNativeBridge();
  if (outcome.file === undefined) {
    const reason = outcome.reason ?? "is not available";
    if (outcome.built) {
      console.warn(
        `@self-extend/llama-cpp: the native bridge ${reason}; rows are log-softmax and llama.cpp-compatible mode is unavailable`,
      );
    }
    return { reason };
  }
  try {
    return { bridge: createRequire(import.meta.url)(outcome.file) as NativeBridge };
  } catch (error) {
    return { reason: `failed to load (${firstLine((error as Error).message)})` };
  }
}

/**
 * The bridge of this process: found, built on first use and loaded once; later calls share the
 * outcome. Never rejects: a missing bridge comes with its reason.
 */
export function prepareNativeBridge(): Promise<NativeBridgeState> {
  prepared ??= findBuildAndLoad();
  return prepared;
}

/** The bridge, or a clear error naming what needed it. */
export async function requireNativeBridge(purpose: string): Promise<NativeBridge> {
  const state = await prepareNativeBridge();
  if (state.bridge === undefined) throw new NativeBridgeUnavailableError(purpose, state.reason);
  return state.bridge;
}
