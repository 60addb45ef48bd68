/**
 * The node-llama-cpp version policy: the peer range is exactly the version whose internals the
 * adapter uses, and any other installed version (what a user's saved `^3.21.1` may bring) is
 * refused with one line naming both versions, the rule and the fix, before any work. Other
 * versions are faked two ways: a node-llama-cpp package.json in a temporary folder, and (for the
 * whole createSelfExtendContext path) the version read from node-llama-cpp's package.json.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { locateNodeLlamaCpp } from "../scripts/llama-cpp-sources.mjs";
import {
  assertSupportedNodeLlamaCpp,
  createSelfExtendContext,
  installedNodeLlamaCppVersion,
  NodeLlamaCppVersionError,
  supportedNodeLlamaCppVersion,
} from "../src/index.js";

// The version createSelfExtendContext reads from node-llama-cpp's package.json, when a test fakes it.
const faked = vi.hoisted(() => ({ version: undefined as string | undefined, missing: false }));
vi.mock("../scripts/llama-cpp-sources.mjs", async (importOriginal) => {
  const original = await importOriginal<typeof import("../scripts/llama-cpp-sources.mjs")>();
  return {
    ...original,
    findPackageRoot(require: NodeJS.Require, name: string) {
      if (name === "node-llama-cpp" && faked.missing) throw new Error("Cannot find module 'node-llama-cpp'");
      const found = original.findPackageRoot(require, name);
      return name === "node-llama-cpp" && faked.version !== undefined
        ? { ...found, version: faked.version }
        : found;
    },
  };
});
afterEach(() => {
  faked.version = undefined;
  faked.missing = false;
});

const workFolder = mkdtempSync(join(tmpdir(), "llama-cpp-version-"));
afterAll(() => rmSync(workFolder, { recursive: true, force: true }));

/** A project folder whose node_modules holds a node-llama-cpp package.json of `version`. */
function projectWithNodeLlamaCpp(version: string): string {
  const project = mkdtempSync(join(workFolder, "project-"));
  const installed = join(project, "node_modules", "node-llama-cpp");
  mkdirSync(installed, { recursive: true });
  writeFileSync(
    join(installed, "package.json"),
    JSON.stringify({ name: "node-llama-cpp", version, main: "index.js" }),
  );
  writeFileSync(join(installed, "index.js"), "");
  return project;
}

const newer =
  "node-llama-cpp 3.22.1 is installed, but @self-extend/llama-cpp works with node-llama-cpp 3.21.1 exactly (it relies on that release's internals, which any release may change); run `npm install --save-exact node-llama-cpp@3.21.1`";
const missing =
  "node-llama-cpp is not installed: @self-extend/llama-cpp needs node-llama-cpp 3.21.1 (a peer dependency); run `npm install --save-exact node-llama-cpp@3.21.1`";

describe("node-llama-cpp version policy", () => {
  it("the peer range is exactly the supported version, the one installed here", () => {
    const manifest = JSON.parse(readFileSync(join(import.meta.dirname, "..", "package.json"), "utf8"));
    expect(supportedNodeLlamaCppVersion).toBe("3.21.1");
    expect(manifest.peerDependencies["node-llama-cpp"]).toBe("3.21.1");
    expect(manifest.devDependencies["node-llama-cpp"]).toBe("3.21.1");
    expect(installedNodeLlamaCppVersion()).toBe("3.21.1");
    expect(() => assertSupportedNodeLlamaCpp()).not.toThrow();
  });

  it("another installed version is refused in one line naming both versions and the fix", () => {
    const project = projectWithNodeLlamaCpp("3.22.1");
    expect(installedNodeLlamaCppVersion(project)).toBe("3.22.1");
    const attempt = () => assertSupportedNodeLlamaCpp(installedNodeLlamaCppVersion(project));
    expect(attempt).toThrow(NodeLlamaCppVersionError);
    expect(attempt).toThrow(newer);
    // The native bridge's build reads the same package and refuses with the same words.
    expect(() => locateNodeLlamaCpp(project)).toThrow(newer);
    // An older patch release is no more compatible than a newer minor one.
    expect(() => assertSupportedNodeLlamaCpp("3.21.0")).toThrow(/node-llama-cpp 3\.21\.0 is installed, but/);
  });

  it("a missing node-llama-cpp is named as such", async () => {
    expect(new NodeLlamaCppVersionError(undefined).message).toBe(missing);
    faked.missing = true;
    expect(installedNodeLlamaCppVersion()).toBeUndefined();
    await expect(
      createSelfExtendContext({
        model: join(workFolder, "no-such-model.gguf"),
        groupSize: 4,
        neighborWindow: 32,
      }),
    ).rejects.toThrow(missing);
  });

  it("createSelfExtendContext refuses another version before any work", async () => {
    faked.version = "3.22.1";
    // The model file does not exist: the version error comes before anything looks for it.
    const attempt = createSelfExtendContext({
      model: join(workFolder, "no-such-model.gguf"),
      groupSize: 4,
      neighborWindow: 32,
    });
    await expect(attempt).rejects.toBeInstanceOf(NodeLlamaCppVersionError);
    await expect(attempt).rejects.toThrow(newer);
  });
});
