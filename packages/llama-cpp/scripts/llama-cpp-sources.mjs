/**
 * Where node-llama-cpp keeps what we compile against, and the llama.cpp sources of the release
 * its prebuilt binaries were built from (node-llama-cpp ships them as a git bundle,
 * llama/gitRelease.bundle). Used by build-native-bridge.mjs and by the test that builds
 * llama-completion against the same prebuilt libllama. Nothing here reaches the network.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/**
 * The one node-llama-cpp release whose internals (native context members, addon headers) this
 * package was written and tested against. Any other version is refused: those internals may
 * change in any release, patch releases included, and a wrong guess would not fail cleanly.
 */
export const supportedNodeLlamaCppVersion = "3.21.1";

/**
 * The one-line message for an installed node-llama-cpp (`foundVersion`, undefined when missing)
 * other than the supported one; undefined when it is the supported one.
 */
export function nodeLlamaCppVersionProblem(foundVersion) {
  if (foundVersion === supportedNodeLlamaCppVersion) return undefined;
  const install = `npm install --save-exact node-llama-cpp@${supportedNodeLlamaCppVersion}`;
  return foundVersion === undefined
    ? `node-llama-cpp is not installed: @self-extend/llama-cpp needs node-llama-cpp ${supportedNodeLlamaCppVersion} (a peer dependency); run \`${install}\``
    : `node-llama-cpp ${foundVersion} is installed, but @self-extend/llama-cpp works with node-llama-cpp ${supportedNodeLlamaCppVersion} exactly (it relies on that release's internals, which any release may change); run \`${install}\``;
}

/** The first line of a message: errors shown to users are one line, never a stack or a log. */
export function firstLine(message) {
  return String(message).split("\n")[0].trim();
}

/** The folder and version of package `name` as `require` resolves it (its exports map may hide package.json). */
export function findPackageRoot(require, name) {
  let folder = dirname(require.resolve(name));
  for (let depth = 0; depth < 5; depth++) {
    const manifestPath = join(folder, "package.json");
    if (existsSync(manifestPath)) {
      const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
      if (manifest.name === name) return { folder, version: manifest.version };
    }
    folder = dirname(folder);
  }
  throw new Error(`cannot find the package folder of ${name}`);
}

/**
 * node-llama-cpp as installed beside `fromFolder`: its folder, version, addon headers, bundle,
 * the llama.cpp release tag, and the folder of its prebuilt Linux x64 CPU binaries.
 */
export function locateNodeLlamaCpp(fromFolder) {
  const require = createRequire(join(fromFolder, "package.json"));
  let found;
  try {
    found = findPackageRoot(require, "node-llama-cpp");
  } catch {
    throw new Error(nodeLlamaCppVersionProblem(undefined));
  }
  const problem = nodeLlamaCppVersionProblem(found.version);
  if (problem !== undefined) throw new Error(problem);
  const llamaFolder = join(found.folder, "llama");
  const release = JSON.parse(readFileSync(join(llamaFolder, "llama.cpp.info.json"), "utf8")).tag;
  const requireFromNodeLlamaCpp = createRequire(join(found.folder, "package.json"));
  let prebuiltBinaries;
  try {
    const prebuilt = findPackageRoot(
      requireFromNodeLlamaCpp,
      `@node-llama-cpp/${process.platform}-${process.arch}`,
    );
    prebuiltBinaries = join(prebuilt.folder, "bins", `${process.platform}-${process.arch}`);
  } catch {
    prebuiltBinaries = undefined;
  }
  return {
    folder: found.folder,
    version: found.version,
    addonHeaders: join(llamaFolder, "addon"),
    bundle: join(llamaFolder, "gitRelease.bundle"),
    release,
    prebuiltBinaries,
    requireFromNodeLlamaCpp,
  };
}

/**
 * Extracts `paths` (folders or files of the llama.cpp tree) of the bundled release into
 * `destination`, once: a `.complete` marker names what was extracted.
 */
export function extractLlamaCppSources(bundle, paths, destination) {
  const marker = join(destination, ".complete");
  const wanted = paths.join("\n");
  if (existsSync(marker) && readFileSync(marker, "utf8") === wanted) return destination;
  rmSync(destination, { recursive: true, force: true });
  const repository = mkdtempSync(join(tmpdir(), "self-extend-llama-bundle-"));
  try {
    execFileSync("git", ["init", "--quiet", "--bare", repository]);
    execFileSync("git", ["-C", repository, "fetch", "--quiet", bundle, "HEAD"]);
    mkdirSync(destination, { recursive: true });
    const archive = execFileSync("git", ["-C", repository, "archive", "FETCH_HEAD", ...paths], {
      maxBuffer: 256 * 1024 * 1024,
    });
    execFileSync("tar", ["-x", "-C", destination], { input: archive });
    execFileSync("sh", ["-c", 'printf "%s" "$1" > "$2"', "sh", wanted, marker]);
  } catch (error) {
    rmSync(destination, { recursive: true, force: true });
    throw new Error(`cannot read ${paths.join(", ")} out of ${bundle} (is git installed?): ${error.message}`);
  } finally {
    rmSync(repository, { recursive: true, force: true });
  }
  return destination;
}
