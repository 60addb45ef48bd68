/**
 * The native bridge's per-user cache, and how one entry is built.
 *
 * The addon is compiled against node-llama-cpp's own headers, so it belongs to one node-llama-cpp
 * version, platform, architecture, Node ABI and bridge source: those make the key of its folder,
 * `<cache>/<version>-<platform>-<arch>-abi<modules>-<hash of the source and of this file>/`.
 * Keeping it outside node_modules means a reinstall does not lose it, and anything that changes
 * the binary gets a folder of its own instead of loading a stale one.
 *
 * An entry is built in a `.partial-*` folder beside it and renamed into place in one step, with a
 * manifest (size and SHA-256 of the addon) written before the rename: a folder under a key is
 * complete or absent, and a damaged addon is caught before it is loaded. Two processes building at
 * once each build their own partial folder; the first rename wins and the other uses its result.
 *
 * Plain JavaScript: the build script and the adapter (at run time) both use it, and it must run
 * before anything is compiled.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { extractLlamaCppSources, firstLine, locateNodeLlamaCpp } from "./llama-cpp-sources.mjs";

export const packageFolder = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const nativeBridgeSource = join(packageFolder, "native", "llama-context-bridge.cc");
export const nativeBridgeFileName = "llama-context-bridge.node";
const manifestFileName = "manifest.json";
const manifestFormat = "self-extend-llama-cpp-bridge";
/** Partial folders older than this are leftovers of a crashed build and are removed. */
const abandonedPartialAgeMs = 60 * 60 * 1000;

/** A build that cannot happen on this machine; its message is one line, fit for a user. */
export class NativeBridgeBuildError extends Error {
  name = "NativeBridgeBuildError";
}

/**
 * `SELF_EXTEND_LLAMA_CPP_CACHE` if set, else `$XDG_CACHE_HOME/self-extend/llama-cpp-bridge`, else
 * `~/.cache/self-extend/llama-cpp-bridge`.
 */
export function nativeBridgeCacheRoot(environment = process.env) {
  const explicit = environment.SELF_EXTEND_LLAMA_CPP_CACHE;
  if (explicit) return resolve(explicit);
  const cacheHome = environment.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(cacheHome, "self-extend", "llama-cpp-bridge");
}

/** The key of the cache folder for the installed node-llama-cpp `version` on this machine. */
export function nativeBridgeKey(version) {
  // This file holds the compiler arguments, so a change to them is a change of key too.
  const digest = createHash("sha256")
    .update(readFileSync(nativeBridgeSource))
    .update(readFileSync(fileURLToPath(import.meta.url)))
    .digest("hex")
    .slice(0, 16);
  return `${version}-${process.platform}-${process.arch}-abi${process.versions.modules}-${digest}`;
}

/**
 * Where the bridge for the installed node-llama-cpp lives under `cacheRoot` (it may not be built
 * yet). Throws NativeBridgeBuildError where it cannot exist: another OS, node-llama-cpp missing or
 * of another version.
 */
export function nativeBridgeLocation(cacheRoot = nativeBridgeCacheRoot()) {
  if (process.platform !== "linux") {
    throw new NativeBridgeBuildError(`is built on Linux only (this is ${process.platform})`);
  }
  let nodeLlamaCpp;
  try {
    nodeLlamaCpp = locateNodeLlamaCpp(packageFolder);
  } catch (error) {
    throw new NativeBridgeBuildError(firstLine(error.message));
  }
  const key = nativeBridgeKey(nodeLlamaCpp.version);
  const folder = join(cacheRoot, key);
  return { nodeLlamaCpp, cacheRoot, key, folder, file: join(folder, nativeBridgeFileName) };
}

function sha256OfFile(path) {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** Why the cached folder cannot be loaded, or undefined when its addon matches its manifest. */
export function checkNativeBridgeFolder(folder, key) {
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(folder, manifestFileName), "utf8"));
  } catch (error) {
    return `has no readable manifest (${error.code ?? firstLine(String(error))})`;
  }
  if (manifest?.format !== manifestFormat || manifest.key !== key) {
    return `has a manifest for ${JSON.stringify(manifest?.key)}, not ${key}`;
  }
  const file = join(folder, nativeBridgeFileName);
  let size;
  try {
    size = statSync(file).size;
  } catch (error) {
    return `has no ${nativeBridgeFileName} (${error.code})`;
  }
  if (size !== manifest.size) return `has a ${nativeBridgeFileName} of ${size} bytes, not ${manifest.size}`;
  if (sha256OfFile(file) !== manifest.sha256) {
    return `has a ${nativeBridgeFileName} that does not match its SHA-256`;
  }
  return undefined;
}

function removeAbandonedPartials(cacheRoot) {
  let names;
  try {
    names = readdirSync(cacheRoot);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(".partial-") && !name.startsWith(".stale-")) continue;
    const path = join(cacheRoot, name);
    try {
      if (Date.now() - statSync(path).mtimeMs > abandonedPartialAgeMs)
        rmSync(path, { recursive: true, force: true });
    } catch {
      // Another process may be removing it too.
    }
  }
}

/** Node's headers (node_api.h): beside this Node, the usual system folders, or SELF_EXTEND_NODE_HEADERS. */
function findNodeHeaders() {
  const candidates = [
    process.env.SELF_EXTEND_NODE_HEADERS,
    join(dirname(process.execPath), "..", "include", "node"),
    "/usr/include/node",
    "/usr/local/include/node",
  ].filter(Boolean);
  const found = candidates.find((folder) => existsSync(join(folder, "node_api.h")));
  if (found === undefined) {
    throw new NativeBridgeBuildError(
      `Node's headers (node_api.h) are not in ${candidates.join(", ")}; set SELF_EXTEND_NODE_HEADERS to the folder that holds them`,
    );
  }
  return found;
}

function compilerFailure(compiler, error) {
  return new NativeBridgeBuildError(
    error.code === "ENOENT"
      ? `no C++ compiler: \`${compiler}\` was not found (install g++ or clang++, or set CXX)`
      : `the C++ compiler \`${compiler}\` failed (${error.status === null || error.status === undefined ? firstLine(error.message) : `exit status ${error.status}`}); a C++17 compiler is needed (set CXX)`,
  );
}

/**
 * Checks what the compile needs besides llama.cpp's headers (node-llama-cpp's addon headers,
 * node-addon-api, Node's headers, a compiler that runs) and returns the compile step. Done before
 * the headers are extracted, so a machine that cannot build says so in milliseconds, not seconds.
 */
function prepareCompile(nodeLlamaCpp) {
  const { addonHeaders } = nodeLlamaCpp;
  if (!existsSync(join(addonHeaders, "AddonContext.h"))) {
    throw new NativeBridgeBuildError(
      `node-llama-cpp's package lacks ${join(addonHeaders, "AddonContext.h")}`,
    );
  }
  let nodeAddonApi;
  try {
    nodeAddonApi = dirname(nodeLlamaCpp.requireFromNodeLlamaCpp.resolve("node-addon-api/package.json"));
  } catch {
    throw new NativeBridgeBuildError("node-addon-api (a dependency of node-llama-cpp) cannot be resolved");
  }
  const nodeHeaders = findNodeHeaders();
  const compiler = process.env.CXX || "c++";
  try {
    execFileSync(compiler, ["--version"], { stdio: "ignore" });
  } catch (error) {
    throw compilerFailure(compiler, error);
  }
  return (llamaHeaders, output) => {
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
      `-I${join(llamaHeaders, "src")}`,
      `-I${nodeAddonApi}`,
      `-I${nodeHeaders}`,
      nativeBridgeSource,
      "-o",
      output,
      "-ldl",
    ];
    try {
      // The compiler's own diagnostics go to stderr; the error below is the one-line summary.
      execFileSync(compiler, commandArguments, { stdio: ["ignore", "ignore", "inherit"] });
    } catch (error) {
      throw compilerFailure(compiler, error);
    }
  };
}

/**
 * Publishes the built `partial` folder as `folder`, atomically. Returns false when another
 * process published a sound one first (ours is then discarded).
 */
function publish(partial, folder, key, cacheRoot) {
  if (existsSync(folder)) {
    if (checkNativeBridgeFolder(folder, key) === undefined) {
      rmSync(partial, { recursive: true, force: true });
      return false;
    }
    // A damaged entry is moved aside first (a rename is atomic; removing is not), then removed.
    const stale = mkdtempSync(join(cacheRoot, ".stale-"));
    try {
      renameSync(folder, join(stale, "entry"));
    } catch {
      // Another process moved or replaced it meanwhile; the rename below decides.
    }
    rmSync(stale, { recursive: true, force: true });
  }
  try {
    renameSync(partial, folder);
    return true;
  } catch (error) {
    // Another process published between our check and our rename: use theirs if it is sound.
    rmSync(partial, { recursive: true, force: true });
    if (existsSync(folder) && checkNativeBridgeFolder(folder, key) === undefined) return false;
    throw new NativeBridgeBuildError(
      `cannot move the built bridge into ${folder} (${error.code ?? firstLine(error.message)})`,
    );
  }
}

/**
 * Builds the bridge into the cache unless a sound one is there. Returns its location and whether
 * this call built it. Throws NativeBridgeBuildError (one line) where it cannot be built.
 */
export function buildNativeBridge({ cacheRoot = nativeBridgeCacheRoot(), force = false } = {}) {
  const location = nativeBridgeLocation(cacheRoot);
  const { folder, key, nodeLlamaCpp } = location;
  if (!force && checkNativeBridgeFolder(folder, key) === undefined) return { ...location, built: false };
  if (!existsSync(nodeLlamaCpp.bundle)) {
    throw new NativeBridgeBuildError(`node-llama-cpp's package lacks ${nodeLlamaCpp.bundle}`);
  }
  const compile = prepareCompile(nodeLlamaCpp);
  try {
    mkdirSync(cacheRoot, { recursive: true });
  } catch (error) {
    throw new NativeBridgeBuildError(
      `cannot create the cache folder ${cacheRoot} (${error.code}); set SELF_EXTEND_LLAMA_CPP_CACHE to a writable folder`,
    );
  }
  removeAbandonedPartials(cacheRoot);
  let partial;
  try {
    partial = mkdtempSync(join(cacheRoot, `.partial-${key}-`));
  } catch (error) {
    throw new NativeBridgeBuildError(
      `cannot write in the cache folder ${cacheRoot} (${error.code}); set SELF_EXTEND_LLAMA_CPP_CACHE to a writable folder`,
    );
  }
  let published;
  try {
    // llama.h, ggml's headers and llama.cpp's internal ones (src/) of the exact llama.cpp release, from node-llama-cpp's bundle;
    // extracted inside the partial folder, so that concurrent builds never share a half-written tree.
    const headers = join(partial, "headers");
    try {
      extractLlamaCppSources(nodeLlamaCpp.bundle, ["include", "ggml/include", "src"], headers);
    } catch (error) {
      throw new NativeBridgeBuildError(firstLine(error.message));
    }
    const output = join(partial, nativeBridgeFileName);
    compile(headers, output);
    rmSync(headers, { recursive: true, force: true });
    const manifest = {
      format: manifestFormat,
      key,
      nodeLlamaCppVersion: nodeLlamaCpp.version,
      llamaCppRelease: nodeLlamaCpp.release,
      size: statSync(output).size,
      sha256: sha256OfFile(output),
    };
    writeFileSync(join(partial, manifestFileName), `${JSON.stringify(manifest, null, 2)}\n`);
    published = publish(partial, folder, key, cacheRoot);
  } catch (error) {
    rmSync(partial, { recursive: true, force: true });
    throw error;
  }
  return { ...location, built: published };
}
