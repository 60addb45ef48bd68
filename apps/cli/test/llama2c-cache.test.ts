import { createHash } from "node:crypto";
import { readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { readGguf } from "@self-extend/models/node";
import { sharedModelPaths, useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { cachedLlama2cGguf, defaultCacheFolder } from "../src/llama2c-cache.js";

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

describe("the llama2.c conversion cache", () => {
  const temporary = useTemporaryFolder();

  it("lives in a per-user folder: SELF_EXTEND_CACHE_DIR, else XDG_CACHE_HOME, else ~/.cache", () => {
    expect(defaultCacheFolder({ SELF_EXTEND_CACHE_DIR: "/c", XDG_CACHE_HOME: "/x" }, "/home/u")).toBe("/c");
    expect(defaultCacheFolder({ XDG_CACHE_HOME: "/x" }, "/home/u")).toBe("/x/self-extend");
    expect(defaultCacheFolder({}, "/home/u")).toBe("/home/u/.cache/self-extend");
  });

  it("converts once, then reuses the entry only while its size and hash match the manifest", () => {
    const folder = join(temporary(), "cache");
    const convert = () => cachedLlama2cGguf(sharedModelPaths.stories260K, sharedModelPaths.tokenizer, folder);
    const path = convert();
    const good = readFileSync(path);
    const manifest = JSON.parse(readFileSync(path.replace(/\.gguf$/, ".json"), "utf8"));
    expect(manifest).toMatchObject({ size: good.length, sha256: sha256(path) });
    const name = basename(path, ".gguf");
    expect(name).toMatch(/^llama2c-[0-9a-f]{16}$/);
    expect(readdirSync(folder).sort()).toEqual([`${name}.gguf`, `${name}.json`]);
    expect((statSync(folder).mode & 0o777).toString(8)).toBe("700");

    // A verified entry is not rewritten: its modification time stays.
    const written = statSync(path).mtimeMs;
    expect(convert()).toBe(path);
    expect(statSync(path).mtimeMs).toBe(written);

    const damages: [string, () => void][] = [
      ["truncated", () => truncateSync(path, 1000)],
      [
        "one byte changed, same size",
        () => {
          const bytes = readFileSync(path);
          bytes[bytes.length - 1] ^= 0xff;
          writeFileSync(path, bytes);
        },
      ],
      ["emptied", () => writeFileSync(path, "")],
      ["manifest removed", () => rmSync(path.replace(/\.gguf$/, ".json"))],
      ["manifest corrupt", () => writeFileSync(path.replace(/\.gguf$/, ".json"), "{")],
      ["file removed", () => rmSync(path)],
    ];
    for (const [what, damage] of damages) {
      damage();
      expect(convert(), what).toBe(path);
      expect(readFileSync(path).equals(good), what).toBe(true);
      const gguf = readGguf(path);
      gguf.close();
      // Nothing half-made is left beside the entry.
      expect(readdirSync(folder), what).toHaveLength(2);
    }
  });
});
