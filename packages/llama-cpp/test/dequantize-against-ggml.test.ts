/**
 * @self-extend/models' dequantiser against ggml's own: a generated model is quantized by
 * llama-quantize to each weight type, then every tensor is dequantised twice, by our reader and by
 * ggml's `to_float` (ggml-dequantize-tensors.cc, linked to node-llama-cpp's prebuilt libggml-base).
 * Both follow the same float32 rounding steps, so the values must be bit-identical.
 */
import { join } from "node:path";
import { ggmlTypeInfo, readGguf } from "@self-extend/models/node";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { dequantizeWithGgml } from "./llama-quantize.js";
import { pureWeightTypes, quantizedModel } from "./quantized-models.js";

const temporaryFolder = useTemporaryFolder("dequantize-against-ggml-");

/** Tensor name -> ggml type id, and the count of values whose bits differ from ggml's. */
function compareWithGgml(file: string): { types: Map<string, number>; differingValues: number } {
  const expected = dequantizeWithGgml(file, join(temporaryFolder(), "ggml.f32"));
  const gguf = readGguf(file);
  try {
    expect(gguf.tensors.map((tensor) => tensor.name).sort()).toEqual([...expected.keys()].sort());
    const types = new Map<string, number>();
    let differingValues = 0;
    for (const tensor of gguf.tensors) {
      const ggml = expected.get(tensor.name);
      if (ggml === undefined) continue;
      types.set(tensor.name, tensor.type);
      expect(tensor.type).toBe(ggml.typeId);
      const ours = new Uint32Array(gguf.readTensor(tensor.name).buffer);
      const theirs = new Uint32Array(ggml.values.buffer, ggml.values.byteOffset, ggml.values.length);
      expect(ours.length).toBe(theirs.length);
      for (let index = 0; index < ours.length; index++) if (ours[index] !== theirs[index]) differingValues++;
    }
    return { types, differingValues };
  } finally {
    gguf.close();
  }
}

describe.sequential("dequantisation against ggml's to_float on llama-quantize output", () => {
  for (const { type, typeId } of pureWeightTypes) {
    it(`${type} --pure: every matrix is ${ggmlTypeInfo(typeId)?.name}, every value bit-identical`, () => {
      const { types, differingValues } = compareWithGgml(quantizedModel(temporaryFolder(), type, true));
      const matrices = [...types].filter(([name]) => !name.endsWith("norm.weight"));
      expect(matrices.length).toBeGreaterThan(0);
      for (const [name, id] of matrices) expect({ name, id }).toEqual({ name, id: typeId });
      expect(differingValues).toBe(0);
    });
  }

  it("Q4_K_M as llama-quantize mixes it (Q4_K with Q6_K): every value bit-identical", () => {
    const { types, differingValues } = compareWithGgml(quantizedModel(temporaryFolder(), "Q4_K_M", false));
    const present = new Set(types.values());
    expect(present.has(12)).toBe(true); // Q4_K
    expect(present.has(14)).toBe(true); // Q6_K
    expect(differingValues).toBe(0);
  });
});
