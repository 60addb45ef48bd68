#!/usr/bin/env node
/**
 * Builds the native bridge (native/llama-context-bridge.cc): a small Node-API addon that calls the
 * two llama.cpp functions node-llama-cpp does not expose (raw logits, seq_div) on node-llama-cpp's
 * own context. It goes into the per-user cache (see native-bridge-cache.mjs), where the adapter
 * looks for it, and where the adapter itself builds it on first use (by running this script).
 * Running it by hand builds ahead of time (an image, a machine without write access later) or shows
 * the compiler's own output when the automatic build failed.
 *
 * Everything it compiles against comes from packages already installed, nothing is downloaded:
 * - node-llama-cpp's addon headers (llama/addon/*.h), for the exact layout of its AddonContext;
 * - llama.h and ggml's headers of the llama.cpp release node-llama-cpp's prebuilt binaries were
 *   built from, read out of the git bundle node-llama-cpp ships (llama/gitRelease.bundle);
 * - node-addon-api (node-llama-cpp's own dependency) and Node's headers (<node>/include/node).
 *
 * Usage: node scripts/build-native-bridge.mjs [--force] [--optional]
 * Needs Linux, a C++17 compiler (CXX, else c++) and git. The folder is SELF_EXTEND_LLAMA_CPP_CACHE,
 * else $XDG_CACHE_HOME/self-extend/llama-cpp-bridge, else ~/.cache/self-extend/llama-cpp-bridge.
 * With --optional (what the repository's own build uses) a machine that cannot build it gets a
 * warning, not a failed build. On failure the last line on stderr is the one-line reason.
 */
import { buildNativeBridge, NativeBridgeBuildError } from "./native-bridge-cache.mjs";

const force = process.argv.includes("--force");
const optional = process.argv.includes("--optional");

try {
  const result = buildNativeBridge({ force });
  console.log(
    result.built
      ? `build-native-bridge: built ${result.file} against node-llama-cpp ${result.nodeLlamaCpp.version} (llama.cpp ${result.nodeLlamaCpp.release})`
      : `build-native-bridge: ${result.file} is up to date`,
  );
} catch (error) {
  if (!(error instanceof NativeBridgeBuildError)) throw error;
  if (optional) {
    console.warn(
      `build-native-bridge: not built (${error.message}); @self-extend/llama-cpp works without it (log-softmax rows, no llama.cpp-compatible mode)`,
    );
  } else {
    console.error(`build-native-bridge: ${error.message}`);
    process.exitCode = 1;
  }
}
