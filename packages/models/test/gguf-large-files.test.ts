import { execFileSync } from "node:child_process";
import { closeSync, ftruncateSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { repositoryRoot, useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { ggufValueTypeIds } from "../src/gguf-types.js";

/** Little-endian GGUF head pieces, written by hand so the counts can be anything. */
class Head {
  private readonly parts: Buffer[] = [];
  u32(value: number) {
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32LE(value);
    this.parts.push(bytes);
    return this;
  }
  u64(value: number | bigint) {
    const bytes = Buffer.alloc(8);
    bytes.writeBigUInt64LE(BigInt(value));
    this.parts.push(bytes);
    return this;
  }
  text(value: string) {
    const bytes = Buffer.from(value, "utf8");
    return this.u64(bytes.length).raw(bytes);
  }
  raw(bytes: Buffer) {
    this.parts.push(bytes);
    return this;
  }
  start(tensorCount: number, metadataCount: number) {
    return this.u32(0x46554747).u32(3).u64(tensorCount).u64(metadataCount);
  }
  bytes() {
    return Buffer.concat(this.parts);
  }
}

const gigabyte = 1_000_000_000;
const megabyte = 1024 * 1024;
const childScript = join(import.meta.dirname, "read-gguf-head.ts");

interface ChildResult {
  error?: { name: string; message: string };
  tensorBytes: number;
  milliseconds: number;
  residentBefore: number;
  peakResident: number;
}

describe("model-sized GGUF files (sparse, made in the test)", () => {
  const useFolder = useTemporaryFolder();

  /** Writes `head` and extends the file with a hole to `size` bytes; no disk space is used. */
  function sparseFile(name: string, head: Buffer, size: number): string {
    const path = join(useFolder(), name);
    const descriptor = openSync(path, "w");
    try {
      writeSync(descriptor, head, 0, head.length, 0);
      ftruncateSync(descriptor, size);
    } finally {
      closeSync(descriptor);
    }
    return path;
  }

  function parseInChild(path: string): ChildResult {
    const output = execFileSync(process.execPath, ["--import", "tsx", childScript, path], {
      cwd: repositoryRoot(),
      encoding: "utf8",
    });
    return JSON.parse(output) as ChildResult;
  }

  const tokensKey = "tokenizer.ggml.tokens";
  const corruptCases = [
    {
      what: "a tokens array count of 3e8 in a 5 GB file",
      head: new Head()
        .start(0, 1)
        .text(tokensKey)
        .u32(ggufValueTypeIds.array)
        .u32(ggufValueTypeIds.string)
        .u64(300_000_000),
      message:
        /array length 300000000 would need \d+ bytes of memory, over the \d+-byte limit .*reading metadata entry 0 \("tokenizer\.ggml\.tokens"\)/,
    },
    {
      what: "a uint8 array count of 2.5e9 in a 5 GB file",
      head: new Head()
        .start(0, 1)
        .text("tokenizer.ggml.precompiled_charsmap")
        .u32(ggufValueTypeIds.array)
        .u32(ggufValueTypeIds.uint8)
        .u64(2_500_000_000),
      message: /array length 2500000000 would need 2500000000 bytes of memory, over the \d+-byte limit/,
    },
    {
      what: "a key length of 1.5 GB in a 5 GB file",
      head: new Head().start(0, 1).u64(1_500_000_000),
      message:
        /key length 1500000000 is over the limit of 65535: corrupt \(at byte 32, reading metadata entry 0\)/,
    },
    {
      what: "a tensor count of 1e8 in a 5 GB file",
      head: new Head().start(100_000_000, 0),
      message: /tensor count 100000000 is over the limit of \d+: corrupt/,
    },
    {
      what: "a tensor whose size overflows 64 bits",
      head: new Head()
        .start(1, 0)
        .text("blk.0.attn_q.weight")
        .u32(2)
        .u64(2n ** 40n)
        .u64(2n ** 40n)
        .u32(0)
        .u64(0),
      message:
        /tensor "blk\.0\.attn_q\.weight" of shape \[1099511627776, 1099511627776\] needs \d+ bytes, more than the whole file/,
    },
  ];

  for (const { what, head, message } of corruptCases) {
    it(`refuses ${what} with one clear line, in under 200 MB`, () => {
      const path = sparseFile("corrupt.gguf", head.bytes(), 5 * gigabyte);
      const result = parseInChild(path);
      expect(result.error?.name).toBe("ModelFileError");
      expect(result.error?.message).toMatch(message);
      expect(result.error?.message.startsWith(`${path}: `)).toBe(true);
      expect(result.error?.message).not.toContain("\n");
      expect(result.error?.message.length).toBeLessThan(500);
      expect(result.peakResident).toBeLessThan(200 * megabyte);
    });
  }

  it("shortens a long corrupt key in the message instead of quoting it whole", () => {
    const longKey = "k".repeat(60_000);
    const head = new Head()
      .start(0, 2)
      .text(longKey)
      .u32(ggufValueTypeIds.uint32)
      .u32(1)
      .text(longKey)
      .u32(ggufValueTypeIds.uint32)
      .u32(1)
      .bytes();
    const result = parseInChild(sparseFile("duplicate.gguf", head, head.length));
    expect(result.error?.message).toMatch(/duplicate metadata key "k{60}"\.\.\. \(60000 characters\)/);
    expect(result.error?.message.length).toBeLessThan(500);
  });

  it("parses the head of a valid 5 GB file quickly, in under 100 MB, leaving tensor data on disk", () => {
    const tensorValues = 1_250_000_000; // F32: 5 GB of data
    const head = new Head()
      .start(1, 1)
      .text("general.architecture")
      .u32(ggufValueTypeIds.string)
      .text("llama")
      .text("token_embd.weight")
      .u32(1)
      .u64(tensorValues)
      .u32(0)
      .u64(0)
      .bytes();
    const dataOffset = Math.ceil(head.length / 32) * 32;
    const result = parseInChild(sparseFile("large.gguf", head, dataOffset + tensorValues * 4));
    expect(result.error).toBeUndefined();
    expect(result.tensorBytes).toBe(tensorValues * 4);
    expect(result.peakResident - result.residentBefore).toBeLessThan(100 * megabyte);
    // The head is a few dozen bytes; a whole-file read of 5 GB could not finish in this time.
    expect(result.milliseconds).toBeLessThan(1000);
  });
});
