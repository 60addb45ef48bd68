/**
 * The native bridge as a user gets it: built on first use into an empty per-user cache (here a
 * temporary SELF_EXTEND_LLAMA_CPP_CACHE), reused afterwards, rebuilt when the cached addon is
 * damaged, safe when two processes build at once, a one-line reason where no compiler exists, and
 * buildable from the packed package alone. Vitest runs each test file in its own module graph, so
 * the cache set here is the one this file's first context builds into.
 */
import { execFile, execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateTinyModel, tinyModelSpec, writeLlamaGguf } from "@self-extend/models/node";
import { createReferenceModel } from "@self-extend/reference";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkNativeBridgeFolder, nativeBridgeLocation } from "../scripts/native-bridge-cache.mjs";
import { compareLogSoftmax, logSoftmaxRows, seededTokens, tolerance } from "./helpers.js";

const packageFolder = join(import.meta.dirname, "..");
const buildScript = join(packageFolder, "scripts", "build-native-bridge.mjs");
const workFolder = mkdtempSync(join(tmpdir(), "llama-cpp-bridge-cache-"));
const cacheRoot = join(workFolder, "cache");
process.env.SELF_EXTEND_LLAMA_CPP_CACHE = cacheRoot;
delete process.env.SELF_EXTEND_DISABLE_NATIVE_BRIDGE;
const { createSelfExtendContext } = await import("../src/index.js");
const { findOrBuildNativeBridge } = await import("../src/native-bridge.js");

afterAll(() => rmSync(workFolder, { recursive: true, force: true }));

/** Entries of a cache folder, partial and stale leftovers included. */
function entries(folder: string): string[] {
  return existsSync(folder) ? readdirSync(folder).sort() : [];
}

/** Runs the build script with an environment of its own; resolves with its exit code and stderr. */
function runBuildScript(environment: NodeJS.ProcessEnv): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [buildScript],
      { env: { ...process.env, ...environment } },
      (error, _out, stderr) =>
        resolve({ code: error === null ? 0 : Number(error.code), stderr: String(stderr) }),
    );
  });
}

describe.sequential("the native bridge's per-user cache", () => {
  const spec = tinyModelSpec("llama-h16-gqa2");
  const weights = generateTinyModel(spec, 5);
  const modelPath = join(workFolder, "model.gguf");
  beforeAll(() => writeLlamaGguf(modelPath, weights));
  const { key, folder, file } = nativeBridgeLocation(cacheRoot);

  it("the first context builds it into the empty cache and returns raw logits", async () => {
    expect(entries(cacheRoot)).toEqual([]);
    const config = { groupSize: 4, neighborWindow: 32 };
    const prompt = seededTokens(2 * spec.trainedContext, spec.vocabularySize, 7);
    const context = await createSelfExtendContext({
      model: modelPath,
      ...config,
      contextSize: prompt.length,
      threads: 1,
    });
    try {
      expect(context.logitKind).toBe("logits");
      // Exactly one entry under the key, complete, and nothing left half-written beside it.
      expect(entries(cacheRoot)).toEqual([key]);
      expect(entries(folder)).toEqual(["llama-context-bridge.node", "manifest.json"]);
      expect(checkNativeBridgeFolder(folder, key)).toBeUndefined();

      const V = spec.vocabularySize;
      const ours = await context.evaluate(prompt, { logits: "all" });
      const reference = await createReferenceModel(weights).createSession({
        selfExtend: config,
        contextSize: prompt.length,
      });
      const theirs = await reference.evaluate(prompt, { logits: "all" });
      // Raw logits are not normalised: the last row's probabilities do not sum to one...
      const last = ours.logits.subarray((prompt.length - 1) * V);
      let largest = Number.NEGATIVE_INFINITY;
      for (const value of last) largest = Math.max(largest, value);
      let sum = 0;
      for (const value of last) sum += Math.exp(value - largest);
      expect(Math.abs(largest + Math.log(sum))).toBeGreaterThan(1e-3);
      // ...and once normalised they are the reference's.
      const comparison = compareLogSoftmax(logSoftmaxRows(theirs.logits, V), ours.logits, V);
      expect(comparison.maxDifference).toBeLessThanOrEqual(tolerance().atol);
    } finally {
      await context.dispose();
    }
  });

  it("a later use finds the verified addon and does not rebuild it", async () => {
    const before = statSync(file);
    const outcome = await findOrBuildNativeBridge(cacheRoot);
    expect(outcome).toEqual({ file, built: false });
    const after = statSync(file);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  it("a damaged addon fails its check and is rebuilt before anything loads it", async () => {
    const original = readFileSync(file);
    const altered = Buffer.from(original);
    altered[altered.length >> 1] ^= 0xff;
    writeFileSync(file, altered);
    expect(checkNativeBridgeFolder(folder, key)).toMatch(/does not match its SHA-256/);
    truncateSync(file, 1000);
    expect(checkNativeBridgeFolder(folder, key)).toBe(
      `has a llama-context-bridge.node of 1000 bytes, not ${original.length}`,
    );

    const outcome = await findOrBuildNativeBridge(cacheRoot);
    expect(outcome).toEqual({ file, built: true });
    expect(checkNativeBridgeFolder(folder, key)).toBeUndefined();
    expect(statSync(file).size).toBe(original.length);
    expect(entries(cacheRoot)).toEqual([key]);
  });

  it("two processes building at once leave one sound addon and no partial folders", async () => {
    const sharedRoot = join(workFolder, "shared-cache");
    const results = await Promise.all([
      runBuildScript({ SELF_EXTEND_LLAMA_CPP_CACHE: sharedRoot }),
      runBuildScript({ SELF_EXTEND_LLAMA_CPP_CACHE: sharedRoot }),
    ]);
    expect(results.map((result) => result.code)).toEqual([0, 0]);
    expect(entries(sharedRoot)).toEqual([key]);
    expect(checkNativeBridgeFolder(join(sharedRoot, key), key)).toBeUndefined();
  });

  it.each([
    [
      "self-extend-no-such-compiler",
      /^could not be built: no C\+\+ compiler: `self-extend-no-such-compiler` was not found \(install g\+\+ or clang\+\+, or set CXX\)$/,
    ],
    [
      "/bin/false",
      /^could not be built: the C\+\+ compiler `\/bin\/false` failed \(exit status 1\); a C\+\+17 compiler is needed \(set CXX\)$/,
    ],
  ])("CXX=%s gives a one-line reason and leaves nothing in the cache", async (compiler, reason) => {
    const emptyRoot = join(workFolder, `no-compiler-${compiler.replaceAll("/", "-")}`);
    const previous = process.env.CXX;
    process.env.CXX = compiler;
    try {
      const outcome = await findOrBuildNativeBridge(emptyRoot);
      expect(outcome.file).toBeUndefined();
      expect(outcome.reason).toMatch(reason);
      expect(entries(emptyRoot)).toEqual([]);
    } finally {
      if (previous === undefined) delete process.env.CXX;
      else process.env.CXX = previous;
    }
  });

  it("the packed package holds everything the first-use build needs", () => {
    const packFolder = join(workFolder, "pack");
    mkdirSync(packFolder);
    execFileSync("pnpm", ["pack", "--pack-destination", packFolder], {
      cwd: packageFolder,
      stdio: "ignore",
    });
    const [tarball] = readdirSync(packFolder).filter((name) => name.endsWith(".tgz"));
    // A user's project: the unpacked package beside node-llama-cpp, and nothing of this checkout.
    const project = join(workFolder, "project");
    const installed = join(project, "node_modules", "@self-extend", "llama-cpp");
    mkdirSync(installed, { recursive: true });
    execFileSync("tar", ["-xzf", join(packFolder, tarball), "-C", installed, "--strip-components=1"]);
    symlinkSync(
      realpathSync(join(packageFolder, "node_modules", "node-llama-cpp")),
      join(project, "node_modules", "node-llama-cpp"),
    );
    const userCache = join(workFolder, "user-cache");
    const output = execFileSync(process.execPath, [join(installed, "scripts", "build-native-bridge.mjs")], {
      env: { ...process.env, SELF_EXTEND_LLAMA_CPP_CACHE: userCache },
      encoding: "utf8",
    });
    // The same key as this checkout's: the packed source and build recipe are the ones tested here.
    expect(output).toContain(`built ${join(userCache, key, "llama-context-bridge.node")}`);
    expect(checkNativeBridgeFolder(join(userCache, key), key)).toBeUndefined();
  });
});
