#!/usr/bin/env node
/**
 * Builds native/llama-context-bridge.node: a small Node-API addon that calls the two llama.cpp
 * functions node-llama-cpp does not expose (raw logits, seq_div) on node-llama-cpp's own context.
 *
 * Everything it compiles against comes from packages already installed, nothing is downloaded:
 * - node-llama-cpp's addon headers (llama/addon/*.h), for the exact layout of its AddonContext;
 * - llama.h and ggml's headers of the llama.cpp release node-llama-cpp's prebuilt binaries were
 *   built from, read out of the git bundle node-llama-cpp ships (llama/gitRelease.bundle);
 * - node-addon-api (node-llama-cpp's own dependency) and Node's headers (<node>/include/node).
 *
 * Usage: node scripts/build-native-bridge.mjs [--force] [--optional]
 * Needs a C++17 compiler (CXX, else c++) and git. Linux only for now. With --optional (what the
 * package's own build uses) a machine that cannot build it gets a warning, not a failed build: the
 * adapter then returns log-softmax rows and refuses llama.cpp-compatible mode, saying why.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { extractLlamaCppSources, locateNodeLlamaCpp } from "./llama-cpp-sources.mjs";

const packageFolder = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const source = join(packageFolder, "native", "llama-context-bridge.cc");
const buildFolder = join(packageFolder, "native", "build");
const output = join(buildFolder, "llama-context-bridge.node");
const force = process.argv.includes("--force");
const optional = process.argv.includes("--optional");

function fail(message) {
  if (optional) {
    console.warn(
      `build-native-bridge: not built (${message}); @self-extend/llama-cpp works without it (log-softmax rows, no llama.cpp-compatible mode)`,
    );
    process.exit(0);
  }
  console.error(`build-native-bridge: ${message}`);
  process.exit(1);
}

if (process.platform !== "linux") {
  fail(
    `the native bridge is built on Linux only (this is ${process.platform}); without it the adapter returns log-softmax rows and llama.cpp-compatible mode is unavailable`,
  );
}

let nodeLlamaCpp;
try {
  nodeLlamaCpp = locateNodeLlamaCpp(packageFolder);
} catch (error) {
  fail(error.message);
}
const { addonHeaders, bundle } = nodeLlamaCpp;
for (const needed of [join(addonHeaders, "AddonContext.h"), bundle]) {
  if (!existsSync(needed)) fail(`node-llama-cpp's package lacks ${needed}`);
}

let nodeAddonApi;
try {
  nodeAddonApi = dirname(nodeLlamaCpp.requireFromNodeLlamaCpp.resolve("node-addon-api/package.json"));
} catch {
  fail("node-addon-api (a dependency of node-llama-cpp) cannot be resolved");
}

const nodeHeaderCandidates = [
  process.env.SELF_EXTEND_NODE_HEADERS,
  join(dirname(process.execPath), "..", "include", "node"),
  "/usr/include/node",
  "/usr/local/include/node",
].filter(Boolean);
const nodeHeaders = nodeHeaderCandidates.find((folder) => existsSync(join(folder, "node_api.h")));
if (nodeHeaders === undefined) {
  fail(
    `Node's headers (node_api.h) are not in ${nodeHeaderCandidates.join(", ")}; set SELF_EXTEND_NODE_HEADERS to the folder that holds them`,
  );
}

const newest = Math.max(
  ...[source, fileURLToPath(import.meta.url), join(packageFolder, "scripts", "llama-cpp-sources.mjs")].map(
    (path) => statSync(path).mtimeMs,
  ),
);
if (!force && existsSync(output) && statSync(output).mtimeMs >= newest) {
  console.log(`build-native-bridge: ${output} is up to date`);
  process.exit(0);
}

// llama.h and ggml's headers of the exact llama.cpp release, from node-llama-cpp's bundle.
let llamaHeaders;
try {
  llamaHeaders = extractLlamaCppSources(
    bundle,
    ["include", "ggml/include"],
    join(buildFolder, `llama.cpp-${nodeLlamaCpp.release}-headers`),
  );
} catch (error) {
  fail(error.message);
}

mkdirSync(buildFolder, { recursive: true });
const compiler = process.env.CXX || "c++";
const temporaryOutput = `${output}.${process.pid}.tmp`;
const commandArguments = [
  "-std=c++17",
  "-O2",
  "-fPIC",
  "-shared",
  "-fvisibility=hidden",
  // node-llama-cpp builds its addon with Node-API 7; the wrapped object layout must match.
  "-DNAPI_VERSION=7",
  "-DNAPI_DISABLE_CPP_EXCEPTIONS",
  "-DNODE_GYP_MODULE_NAME=llama_context_bridge",
  `-I${addonHeaders}`,
  `-I${join(llamaHeaders, "include")}`,
  `-I${join(llamaHeaders, "ggml", "include")}`,
  `-I${nodeAddonApi}`,
  `-I${nodeHeaders}`,
  source,
  "-o",
  temporaryOutput,
  "-ldl",
];
try {
  execFileSync(compiler, commandArguments, { stdio: ["ignore", "inherit", "inherit"] });
} catch (error) {
  rmSync(temporaryOutput, { force: true });
  fail(`${compiler} failed (${error.message.split("\n")[0]}); a C++17 compiler is needed (set CXX)`);
}
renameSync(temporaryOutput, output);
console.log(
  `build-native-bridge: built ${output} against node-llama-cpp ${nodeLlamaCpp.version} (llama.cpp ${nodeLlamaCpp.release})`,
);
