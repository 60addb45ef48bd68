/**
 * Seeded mutation fuzzing of the GGUF reader: every mutated file must either parse or fail with a
 * one-line ModelFileError. Any other exception type (RangeError, TypeError, heap exhaustion) is a
 * reader bug. The seeds are fixed, so a failure names a mutation that reproduces it.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { readGguf } from "../src/gguf-file.js";
import { type GgufFile, parseGguf } from "../src/gguf-reader.js";
import { encodeGguf } from "../src/gguf-writer.js";
import { ModelFileError } from "../src/model-file-error.js";
import { writeLlamaGguf } from "../src/model-files.js";
import { generateTinyModel, tinyModelGrid } from "../src/tiny-model.js";

const demoModelPath = join(import.meta.dirname, "..", "..", "demo-model", "demo-model.gguf");

/** mulberry32: a small seeded generator, so every run tries the same mutations. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}

/** Values that break naive readers: zero, sign bits, 32-bit and 53-bit edges, model-sized counts. */
const interestingValues = [
  0n,
  1n,
  0x7fn,
  0xffn,
  0x7fffffffn,
  0x80000000n,
  0xffffffffn,
  0x100000000n,
  300_000_000n,
  2_500_000_000n,
  2n ** 53n - 1n,
  2n ** 53n + 1n,
  2n ** 63n,
  2n ** 64n - 1n,
];

type Mutation = (bytes: Uint8Array, headEnd: number, random: () => number) => Uint8Array;

const pick = <T>(items: readonly T[], random: () => number): T =>
  items[Math.floor(random() * items.length)] as T;
const position = (headEnd: number, random: () => number) => Math.floor(random() * headEnd);

const mutations: Record<string, Mutation> = {
  flipBits(bytes, headEnd, random) {
    const copy = bytes.slice();
    const flips = 1 + Math.floor(random() * 4);
    for (let flip = 0; flip < flips; flip++) copy[position(headEnd, random)] ^= 1 << Math.floor(random() * 8);
    return copy;
  },
  randomBytes(bytes, headEnd, random) {
    const copy = bytes.slice();
    const start = position(headEnd, random);
    const length = 1 + Math.floor(random() * 16);
    for (let index = start; index < Math.min(start + length, copy.length); index++) {
      copy[index] = Math.floor(random() * 256);
    }
    return copy;
  },
  interestingUint64(bytes, headEnd, random) {
    const copy = bytes.slice();
    const at = Math.min(position(headEnd, random), copy.length - 8);
    new DataView(copy.buffer).setBigUint64(at, pick(interestingValues, random), true);
    return copy;
  },
  interestingUint32(bytes, headEnd, random) {
    const copy = bytes.slice();
    const at = Math.min(position(headEnd, random), copy.length - 4);
    new DataView(copy.buffer).setUint32(at, Number(pick(interestingValues, random) & 0xffffffffn), true);
    return copy;
  },
  truncate(bytes, headEnd, random) {
    return bytes.slice(0, position(headEnd + 64, random));
  },
  deleteRange(bytes, headEnd, random) {
    const start = position(headEnd, random);
    const length = 1 + Math.floor(random() * 32);
    const copy = new Uint8Array(bytes.length - Math.min(length, bytes.length - start));
    copy.set(bytes.subarray(0, start));
    copy.set(bytes.subarray(start + length), start);
    return copy;
  },
  duplicateRange(bytes, headEnd, random) {
    const start = position(headEnd, random);
    const piece = bytes.subarray(start, start + 1 + Math.floor(random() * 64));
    const copy = new Uint8Array(bytes.length + piece.length);
    copy.set(bytes.subarray(0, start));
    copy.set(piece, start);
    copy.set(bytes.subarray(start), start + piece.length);
    return copy;
  },
};

/** Everything a caller does with a parsed file: metadata, tensor infos and small tensor reads. */
function useParsedFile(gguf: GgufFile): void {
  for (const tensor of gguf.tensors) {
    if (tensor.byteSize <= 1 << 16 && gguf.tensor(tensor.name) === tensor) {
      gguf.readTensor(tensor.name);
    }
  }
}

describe("GGUF reader under seeded mutations", () => {
  const useFolder = useTemporaryFolder();

  function sampleFiles(): { name: string; bytes: Uint8Array<ArrayBufferLike> }[] {
    const folder = useFolder();
    const files: { name: string; bytes: Uint8Array<ArrayBufferLike> }[] = [
      { name: "demo-model.gguf", bytes: new Uint8Array(readFileSync(demoModelPath)) },
    ];
    for (const [index, spec] of tinyModelGrid.slice(0, 3).entries()) {
      const path = join(folder, `${spec.name}.gguf`);
      writeLlamaGguf(path, generateTinyModel(spec, index + 1), {
        tensorType: index % 2 === 0 ? "F32" : "F16",
      });
      files.push({ name: `${spec.name}.gguf`, bytes: new Uint8Array(readFileSync(path)) });
    }
    files.push({
      name: "every-type.gguf",
      bytes: encodeGguf({
        metadata: {
          "a.u8": { type: "uint8", value: 7 },
          "a.i64": { type: "int64", value: -5n },
          "a.bool": { type: "bool", value: true },
          "a.f64": { type: "float64", value: 0.5 },
          "a.strings": { type: "array", itemType: "string", value: ["x", "yy", ""] },
          "a.bools": { type: "array", itemType: "bool", value: [true, false] },
          "a.u64s": { type: "array", itemType: "uint64", value: [1n, 2n] },
        },
        tensors: [
          { name: "f32", shape: [2, 32], type: "F32", data: new Float32Array(64).fill(1) },
          { name: "f16", shape: [32], type: "F16", data: new Float32Array(32).fill(2) },
        ],
      }),
    });
    return files;
  }

  it("gives only ModelFileError, in one short line, for 4000 mutations of 5 files", () => {
    const files = sampleFiles();
    const names = Object.keys(mutations);
    const unexpected: string[] = [];
    const outcomes = { parsed: 0, refused: 0 };
    const folder = useFolder();
    const heapBefore = process.memoryUsage().heapUsed;
    let heapPeak = heapBefore;
    const mutationsPerFile = 800;
    for (const [fileIndex, file] of files.entries()) {
      // The head ends where tensor data begins; mutations there are the ones the parser sees.
      const headEnd = parseGguf(file.bytes).dataOffset;
      for (let run = 0; run < mutationsPerFile; run++) {
        const seed = fileIndex * 100_000 + run;
        const random = seededRandom(seed);
        const name = pick(names, random);
        const mutated = (mutations[name] as Mutation)(file.bytes, headEnd, random);
        // Every 16th mutation goes through a file on disk, to exercise the windowed positioned reads.
        const throughDisk = run % 16 === 0 && mutated.length < 1 << 20;
        let gguf: GgufFile | undefined;
        try {
          if (throughDisk) {
            const path = join(folder, "mutated.gguf");
            writeFileSync(path, mutated);
            gguf = readGguf(path);
          } else {
            gguf = parseGguf(mutated, "mutated.gguf");
          }
          useParsedFile(gguf);
          outcomes.parsed++;
        } catch (error) {
          const message = (error as Error).message ?? "";
          if (!(error instanceof ModelFileError) || message.includes("\n") || message.length > 1000) {
            unexpected.push(
              `${file.name} seed ${seed} ${name}: ${(error as Error).name}: ${message.slice(0, 200)}`,
            );
          } else {
            outcomes.refused++;
          }
        } finally {
          gguf?.close();
        }
        if (run % 64 === 0) heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
      }
    }
    expect(unexpected).toEqual([]);
    expect(outcomes.parsed + outcomes.refused).toBe(files.length * mutationsPerFile);
    // Both outcomes occur, so the mutations are neither all harmless nor all fatal.
    expect(outcomes.refused).toBeGreaterThan(files.length * mutationsPerFile * 0.2);
    expect(outcomes.parsed).toBeGreaterThan(files.length * mutationsPerFile * 0.05);
    expect(heapPeak - heapBefore).toBeLessThan(300 * 1024 * 1024);
  }, 60_000);
});
