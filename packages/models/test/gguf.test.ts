import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { float16BitsToNumber, numberToFloat16Bits, roundToFloat16 } from "../src/float16.js";
import { readGguf, writeGguf } from "../src/gguf-file.js";
import { parseGguf } from "../src/gguf-reader.js";
import { encodeGguf } from "../src/gguf-writer.js";
import { ModelFileError } from "../src/model-file-error.js";

/** Builds GGUF bytes by hand, independently of the writer, from little-endian pieces. */
class HandBuilder {
  parts: number[] = [];
  u8(...values: number[]) {
    this.parts.push(...values);
    return this;
  }
  u16(value: number) {
    return this.u8(value & 0xff, value >> 8);
  }
  u32(value: number) {
    return this.u8(value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, value >>> 24);
  }
  u64(value: number) {
    return this.u32(value).u32(0);
  }
  f32(value: number) {
    const bytes = new Uint8Array(new Float32Array([value]).buffer);
    return this.u8(...bytes);
  }
  str(value: string) {
    const bytes = Buffer.from(value, "utf8");
    return this.u64(bytes.length).u8(...bytes);
  }
  padTo(alignment: number) {
    while (this.parts.length % alignment !== 0) this.parts.push(0);
    return this;
  }
  bytes() {
    return new Uint8Array(this.parts);
  }
}

/** A file with two metadata entries and one 2x3 F32 tensor, laid out by hand. */
function handMadeFile(version = 3): Uint8Array {
  const builder = new HandBuilder()
    .u32(0x46554747)
    .u32(version)
    .u64(1)
    .u64(2)
    .str("general.architecture")
    .u32(8)
    .str("llama")
    .str("llama.block_count")
    .u32(4)
    .u32(5)
    .str("weight")
    .u32(2)
    .u64(3)
    .u64(2)
    .u32(0)
    .u64(0)
    .padTo(32);
  for (const value of [1, 2, 3, 4, 5, 6]) builder.f32(value);
  return builder.padTo(32).bytes();
}

describe("GGUF reader", () => {
  it("reads a hand-made version 3 file", () => {
    const gguf = parseGguf(handMadeFile());
    expect(gguf.version).toBe(3);
    expect(gguf.metadata.get("general.architecture")).toBe("llama");
    expect(gguf.metadata.get("llama.block_count")).toBe(5);
    expect(gguf.typedMetadata.get("llama.block_count")).toEqual({ type: "uint32", value: 5 });
    expect(gguf.tensors).toHaveLength(1);
    const [tensor] = gguf.tensors;
    expect(tensor).toMatchObject({
      name: "weight",
      dimensions: [3, 2],
      shape: [2, 3],
      type: 0,
      typeName: "F32",
    });
    expect(tensor.byteSize).toBe(24);
    expect(tensor.fileOffset % 32).toBe(0);
    expect([...gguf.readTensor("weight")]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("accepts version 2 and rejects version 1 and big-endian files, naming the version", () => {
    expect(parseGguf(handMadeFile(2)).version).toBe(2);
    expect(() => parseGguf(handMadeFile(1), "old.gguf")).toThrow(
      /old\.gguf: has GGUF version 1; versions 2 and 3/,
    );
    const bigEndian = handMadeFile();
    bigEndian.set([0, 0, 0, 3], 4);
    expect(() => parseGguf(bigEndian)).toThrow(/big-endian/);
  });

  it("writer output equals the hand-made bytes", () => {
    const written = encodeGguf({
      metadata: {
        "general.architecture": { type: "string", value: "llama" },
        "llama.block_count": { type: "uint32", value: 5 },
      },
      tensors: [{ name: "weight", shape: [2, 3], type: "F32", data: new Float32Array([1, 2, 3, 4, 5, 6]) }],
    });
    expect(Buffer.from(written).equals(Buffer.from(handMadeFile()))).toBe(true);
  });

  it("round-trips every metadata type through a file on disk, lazily", () => {
    const folder = useFolder();
    const path = join(folder, "all-types.gguf");
    const metadata = {
      "test.u8": { type: "uint8", value: 250 },
      "test.i8": { type: "int8", value: -5 },
      "test.u16": { type: "uint16", value: 65000 },
      "test.i16": { type: "int16", value: -32000 },
      "test.u32": { type: "uint32", value: 4000000000 },
      "test.i32": { type: "int32", value: -2000000000 },
      "test.f32": { type: "float32", value: 0.5 },
      "test.f64": { type: "float64", value: Math.PI },
      "test.u64": { type: "uint64", value: 12345678901234567890n },
      "test.i64": { type: "int64", value: -5n },
      "test.bool": { type: "bool", value: true },
      "test.string": { type: "string", value: "héllo ▁" },
      "test.strings": { type: "array", itemType: "string", value: ["a", "", "▁b"] },
      "test.floats": { type: "array", itemType: "float32", value: [0.25, -1] },
      "test.ints": { type: "array", itemType: "int32", value: [1, -2, 3] },
      "test.bools": { type: "array", itemType: "bool", value: [true, false] },
    } as const;
    writeGguf(path, { metadata, tensors: [] });
    const gguf = readGguf(path);
    try {
      expect(gguf.metadata.get("test.u8")).toBe(250);
      expect(gguf.metadata.get("test.i16")).toBe(-32000);
      expect(gguf.metadata.get("test.u32")).toBe(4000000000);
      expect(gguf.metadata.get("test.i32")).toBe(-2000000000);
      expect(gguf.metadata.get("test.f64")).toBe(Math.PI);
      expect(gguf.metadata.get("test.u64")).toBe(12345678901234567890n);
      expect(gguf.metadata.get("test.i64")).toBe(-5n);
      expect(gguf.metadata.get("test.bool")).toBe(true);
      expect(gguf.metadata.get("test.string")).toBe("héllo ▁");
      expect(gguf.metadata.get("test.strings")).toEqual(["a", "", "▁b"]);
      expect(gguf.metadata.get("test.floats")).toEqual(new Float32Array([0.25, -1]));
      expect(gguf.metadata.get("test.ints")).toEqual(new Int32Array([1, -2, 3]));
      expect(gguf.metadata.get("test.bools")).toEqual([true, false]);
      expect([...gguf.typedMetadata.keys()]).toEqual(Object.keys(metadata));
      expect(gguf.typedMetadata.get("test.strings")).toMatchObject({ type: "array", itemType: "string" });
    } finally {
      gguf.close();
    }
    expect(readdirSync(folder)).toEqual(["all-types.gguf"]);
  });

  it("round-trips F32 exactly and F16 to the nearest half, at 32-byte alignment", () => {
    const values = Float32Array.from({ length: 70 }, (_, index) => Math.sin(index) * 3);
    const bytes = encodeGguf({
      metadata: {},
      tensors: [
        { name: "a", shape: [7, 10], type: "F32", data: values },
        { name: "b", shape: [70], type: "F16", data: values },
        { name: "c", shape: [2, 5, 7], type: "F32", data: values },
      ],
    });
    const gguf = parseGguf(bytes);
    expect(gguf.readTensor("a")).toEqual(values);
    expect(gguf.tensor("c")?.dimensions).toEqual([7, 5, 2]);
    const half = gguf.readTensor("b");
    for (let index = 0; index < values.length; index++) {
      expect(half[index]).toBe(roundToFloat16(values[index]));
      expect(Math.abs(half[index] - values[index])).toBeLessThanOrEqual(
        Math.abs(values[index]) * 2 ** -11 + 1e-7,
      );
    }
    for (const tensor of gguf.tensors) expect(tensor.fileOffset % 32).toBe(0);
  });

  it("writes tensors larger than one encoded piece (16M values) whole, and the tensors after them in place", () => {
    // Node writes at most 2 GiB per call, so the writer encodes tensors in pieces of 16M values; a
    // Gemma-2-2B embedding (590M values) once failed with ERR_OUT_OF_RANGE.
    const count = 16 * 1024 * 1024 + 1003;
    const values = new Float32Array(count);
    for (let index = 0; index < count; index++) values[index] = ((index * 7919) % 2001) / 8 - 125;
    const path = join(useFolder(), "large.gguf");
    writeGguf(path, {
      metadata: {},
      tensors: [
        { name: "large32", shape: [count], type: "F32", data: values },
        { name: "large16", shape: [count], type: "F16", data: values },
        { name: "after", shape: [3], type: "F32", data: new Float32Array([1, 2, 3]) },
      ],
    });
    const gguf = readGguf(path);
    try {
      for (const name of ["large32", "large16"]) {
        const read = gguf.readTensor(name);
        let differences = 0;
        // Every value is a multiple of 1/8 within 125 of 0: exact in float16 too.
        for (let index = 0; index < count; index++) if (read[index] !== values[index]) differences++;
        expect(differences, name).toBe(0);
      }
      expect([...gguf.readTensor("after")]).toEqual([1, 2, 3]);
    } finally {
      gguf.close();
    }
  });

  it("honours general.alignment", () => {
    const bytes = encodeGguf({
      metadata: { "general.alignment": { type: "uint32", value: 64 } },
      tensors: [
        { name: "a", shape: [3], type: "F32", data: new Float32Array([1, 2, 3]) },
        { name: "b", shape: [3], type: "F32", data: new Float32Array([4, 5, 6]) },
      ],
    });
    const gguf = parseGguf(bytes);
    expect(gguf.alignment).toBe(64);
    expect(gguf.tensor("b")?.offset).toBe(64);
    expect([...gguf.readTensor("b")]).toEqual([4, 5, 6]);
  });

  it("rejects an alignment that is not a power of two", () => {
    const builder = new HandBuilder()
      .u32(0x46554747)
      .u32(3)
      .u64(0)
      .u64(1)
      .str("general.alignment")
      .u32(4)
      .u32(24);
    expect(() => parseGguf(builder.bytes())).toThrow(/general\.alignment must be a uint32 power of two/);
  });

  const useFolder = useTemporaryFolder();
});

describe("F16 conversion", () => {
  it("matches known bit patterns", () => {
    const known: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [2 ** -24, 0x0001],
      [2 ** -14, 0x0400],
      [0.1, 0x2e66],
      [1 / 3, 0x3555],
      [70000, 0x7c00],
      [2 ** -26, 0x0000],
    ];
    for (const [value, bits] of known) {
      expect(numberToFloat16Bits(value)).toBe(bits);
      if (bits !== 0x7c00 && bits !== 0) expect(float16BitsToNumber(bits)).toBeCloseTo(value, 3);
    }
    // 1 + 2^-11 lies halfway between 1 and the next half; ties go to even (1).
    expect(numberToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00);
    expect(numberToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
  });
});

describe("quantised tensors", () => {
  /** A file with one tensor of `count` values (one block) whose stored block bytes are given. */
  function fileWithBlock(typeId: number, block: number[], count = 32): Uint8Array {
    const builder = new HandBuilder().u32(0x46554747).u32(3).u64(1).u64(0);
    builder
      .str("q")
      .u32(1)
      .u64(count)
      .u32(typeId)
      .u64(0)
      .padTo(32)
      .u8(...block);
    return builder.bytes();
  }

  it("dequantises Q8_0: x = d * q", () => {
    const quants = Array.from({ length: 32 }, (_, index) => index - 16);
    const block = [0x00, 0x38, ...quants.map((value) => value & 0xff)]; // d = 0.5 (F16 0x3800)
    const values = parseGguf(fileWithBlock(8, block)).readTensor("q");
    expect([...values]).toEqual(quants.map((value) => value * 0.5));
  });

  it("dequantises Q4_0: low nibbles are values 0..15, high nibbles 16..31, x = d * (q - 8)", () => {
    const nibbles = Array.from({ length: 32 }, (_, index) => (index * 7) % 16);
    const packed = Array.from({ length: 16 }, (_, index) => nibbles[index] | (nibbles[index + 16] << 4));
    const block = [0x00, 0x40, ...packed]; // d = 2 (F16 0x4000)
    const values = parseGguf(fileWithBlock(2, block)).readTensor("q");
    expect([...values]).toEqual(nibbles.map((value) => (value - 8) * 2));
  });

  it("dequantises Q4_1: x = d * q + m", () => {
    const nibbles = Array.from({ length: 32 }, (_, index) => (index < 16 ? index : 31 - index));
    const packed = Array.from({ length: 16 }, (_, index) => nibbles[index] | (nibbles[index + 16] << 4));
    const block = [0x00, 0x40, 0x00, 0xbc, ...packed]; // d = 2, m = -1
    const values = parseGguf(fileWithBlock(3, block)).readTensor("q");
    expect([...values]).toEqual(nibbles.map((value) => 2 * value - 1));
  });

  it("dequantises Q5_0: bit i of the uint32 after d is value i's fifth bit, x = d * (q - 16)", () => {
    const block = [0x00, 0x38, 0x01, 0x00, 0x00, 0x80, ...new Array(16).fill(0x33)]; // d = 0.5
    const values = parseGguf(fileWithBlock(6, block)).readTensor("q");
    const expected = Array.from({ length: 32 }, (_, index) => (index === 0 || index === 31 ? 1.5 : -6.5));
    expect([...values]).toEqual(expected);
  });

  it("dequantises Q2_K: sub-block 9 (values 144..159) takes scale byte 9 and bits 0..1 of bytes 48..63", () => {
    const scales = new Array(16).fill(0);
    scales[9] = 0x25; // scale 5, min 2
    const quants = new Array(64).fill(0);
    for (let index = 48; index < 64; index++) quants[index] = 0x03;
    const block = [...scales, ...quants, 0x00, 0x3c, 0x00, 0x3c]; // d = 1, dmin = 1
    const values = parseGguf(fileWithBlock(10, block, 256)).readTensor("q");
    const expected = Array.from({ length: 256 }, (_, index) => (index >= 144 && index < 160 ? 5 * 3 - 2 : 0));
    expect([...values]).toEqual(expected);
  });

  it("dequantises Q4_K: sub-blocks 4..7 take the top two bits of scale bytes 0..7", () => {
    const scales = new Array(12).fill(0);
    scales[1] = 0b01_000011; // sub-block 1 scale 3; bits 6..7 are sub-block 5's scale bits 4..5
    scales[5] = 0b10_000010; // sub-block 1 min 2; bits 6..7 are sub-block 5's min bits 4..5
    scales[9] = 0x47; // sub-block 5: scale low bits 7, min low bits 4 -> scale 23, min 36
    const block = [0x00, 0x3c, 0x00, 0x38, ...scales, ...new Array(128).fill(0x5a)]; // d = 1, dmin = 0.5
    const values = parseGguf(fileWithBlock(12, block, 256)).readTensor("q");
    // Sub-blocks 1 and 5 are the high nibbles (5) of their 64-value chunks.
    const expected = Array.from({ length: 256 }, (_, index) =>
      index >= 32 && index < 64 ? 3 * 5 - 0.5 * 2 : index >= 160 && index < 192 ? 23 * 5 - 0.5 * 36 : 0,
    );
    expect([...values]).toEqual(expected);
  });

  it("dequantises Q8_K: float32 d, then 256 int8 q; x = d * q", () => {
    const quants = Array.from({ length: 256 }, (_, index) => index - 128);
    const block = [0x00, 0x00, 0x80, 0x3e, ...quants.map((value) => value & 0xff), ...new Array(32).fill(0)]; // d = 0.25
    const values = parseGguf(fileWithBlock(15, block, 256)).readTensor("q");
    expect([...values]).toEqual(quants.map((value) => value * 0.25));
  });

  it("dequantises BF16", () => {
    const builder = new HandBuilder().u32(0x46554747).u32(3).u64(1).u64(0);
    builder.str("b").u32(1).u64(2).u32(30).u64(0).padTo(32).u16(0x3f80).u16(0xc040);
    expect([...parseGguf(builder.bytes()).readTensor("b")]).toEqual([1, -3]);
  });

  it("lists a known but unsupported type and refuses to read it by name", () => {
    const block = new Array(136).fill(0);
    const builder = new HandBuilder().u32(0x46554747).u32(3).u64(1).u64(0);
    builder
      .str("k")
      .u32(1)
      .u64(256)
      .u32(23)
      .u64(0)
      .padTo(32)
      .u8(...block);
    const gguf = parseGguf(builder.bytes(), "k.gguf");
    expect(gguf.tensor("k")).toMatchObject({ typeName: "IQ4_XS", byteSize: 136 });
    expect(() => gguf.readTensor("k")).toThrow(
      /k\.gguf: tensor "k" has type IQ4_XS \(id 23\), which cannot be read here \(supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K\)/,
    );
  });
});

describe("corrupt GGUF files", () => {
  const useFolder = useTemporaryFolder();
  const valid = encodeGguf({
    metadata: {
      "general.architecture": { type: "string", value: "llama" },
      "tokenizer.ggml.tokens": { type: "array", itemType: "string", value: ["<unk>", "<s>", "</s>", "▁a"] },
      "tokenizer.ggml.scores": { type: "array", itemType: "float32", value: [0, 0, 0, -1] },
    },
    tensors: [
      { name: "x", shape: [4, 8], type: "F32", data: new Float32Array(32).fill(1) },
      { name: "y", shape: [8], type: "F16", data: new Float32Array(8).fill(2) },
    ],
  });

  it("gives ModelFileError (never RangeError) for every truncation", () => {
    // The zero padding after the last tensor carries nothing, so cuts inside it are still readable.
    const last = parseGguf(valid).tensor("y");
    const end = (last?.fileOffset ?? 0) + (last?.byteSize ?? 0);
    expect(end).toBe(valid.length - 16);
    for (let length = 0; length < end; length++) {
      let caught: unknown;
      try {
        parseGguf(valid.subarray(0, length), "cut.gguf");
      } catch (error) {
        caught = error;
      }
      expect(caught, `truncated at ${length}`).toBeInstanceOf(ModelFileError);
      expect(String((caught as Error).message)).toMatch(/^cut\.gguf: /);
    }
  });

  it("names the problem for a truncated file on disk", () => {
    const path = join(useFolder(), "cut.gguf");
    writeFileSync(path, valid.subarray(0, valid.length - 20));
    expect(() => readGguf(path)).toThrow(/tensor "y" data .* lies past the end of the file .*truncated/);
    writeFileSync(path, valid.subarray(0, 200));
    expect(() => readGguf(path)).toThrow(
      /truncated: needs 8 more bytes .* reading metadata entry 2 \("tokenizer.ggml.scores"\)/,
    );
  });

  it("rejects a flipped magic", () => {
    const flipped = valid.slice();
    flipped[0] ^= 0xff;
    expect(() => parseGguf(flipped, "flip.gguf")).toThrow(/flip\.gguf: does not start with the GGUF magic/);
  });

  it("names an unknown tensor type and its tensor", () => {
    // Tensor info of "x": name (uint64 length 1, "x"), 2 dimensions, two uint64 sizes, then the type.
    const bytes = valid.slice();
    const nameRecord = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, "x".charCodeAt(0), 2, 0, 0, 0]);
    const at = Buffer.from(bytes).indexOf(nameRecord);
    expect(at).toBeGreaterThan(0);
    const typeOffset = at + nameRecord.length + 16;
    new DataView(bytes.buffer).setUint32(typeOffset, 99, true);
    expect(() => parseGguf(bytes, "odd.gguf")).toThrow(/odd\.gguf: tensor "x" has unknown ggml type id 99/);
  });

  it("rejects a huge string length without allocating it", () => {
    const bytes = valid.slice();
    new DataView(bytes.buffer).setUint32(24, 0xffffffff, true); // first key's length, low half
    new DataView(bytes.buffer).setUint32(28, 0xffff, true);
    expect(() => parseGguf(bytes)).toThrow(ModelFileError);
  });

  it("reports a missing file as ModelFileError", () => {
    expect(() => readGguf(join(useFolder(), "none.gguf"))).toThrow(/none\.gguf: cannot be opened \(ENOENT\)/);
  });

  it("leaves no partial file behind when writing fails", () => {
    const folder = useFolder();
    expect(() =>
      writeGguf(join(folder, "bad.gguf"), {
        metadata: { "a.b": { type: "uint32", value: -1 } },
        tensors: [],
      }),
    ).toThrow(/-1 is not a valid uint32/);
    expect(() =>
      writeGguf(join(folder, "bad.gguf"), {
        metadata: {},
        tensors: [{ name: "t", shape: [3], type: "F32", data: new Float32Array(2) }],
      }),
    ).toThrow(/shape \[3\] does not match 2 values/);
    expect(readdirSync(folder)).toEqual([]);
  });
});
