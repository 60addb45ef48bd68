/**
 * readImportedWeights on the exports made by the real exporters (test/fixtures/imported, see
 * tools/onnx-exports/README.md): the reference backend on the weights read from each float export
 * computes what the unmodified export computes in onnxruntime-node (last-position logits of a
 * 40-token prompt within 1e-4, 16 greedy tokens identical), every exporter of one family yields the
 * same weights (all were made from one Hugging Face model), genai's int4 weights dequantise to
 * within 4-bit rounding of its float weights, and graphs that are not what the reader recognises
 * are refused naming the node.
 */
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { LlamaWeights } from "@self-extend/models";
import { createReferenceModel } from "@self-extend/reference";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { readImportedWeights } from "../src/export.js";
import { ModelProtoSchema } from "../src/generated/onnx/onnx_pb.js";
import { runUnmodifiedExport } from "./imported/unmodified-export.js";

const fixtures = join(import.meta.dirname, "fixtures", "imported");
const temporaryFolder = useTemporaryFolder("onnxruntime-imported-weights-");

/** Float exports: [folder under fixtures, the .onnx file in it]. */
const floatExports = [
  ["optimum/llama", "model.onnx"],
  ["optimum/qwen2", "model.onnx"],
  ["optimum/phi3", "model.onnx"],
  ["genai/llama", "model.onnx"],
  ["genai/qwen2", "model.onnx"],
  ["genai/phi3", "model.onnx"],
  ["transformersjs/llama", "onnx/model.onnx"],
] as const;

const greedyTokens = 16;
/** BOS, then 39 tokens spread over the 512-token vocabulary. */
const prompt = [1, ...Array.from({ length: 39 }, (_, index) => (index * 37 + 11) % 512)];

function argmax(values: Float32Array): number {
  let best = 0;
  for (let index = 1; index < values.length; index++) if (values[index] > values[best]) best = index;
  return best;
}

async function runReference(weights: LlamaWeights) {
  const model = createReferenceModel(weights);
  const session = await model.createSession({
    selfExtend: { groupSize: 1, neighborWindow: 1 },
    contextSize: prompt.length + greedyTokens,
  });
  try {
    const evaluation = await session.evaluate(prompt, { logits: "last" });
    const lastLogits = evaluation.logits.slice();
    const tokens: number[] = [];
    let logits: Float32Array = lastLogits;
    for (let index = 0; index < greedyTokens; index++) {
      const token = argmax(logits);
      tokens.push(token);
      if (index + 1 < greedyTokens) logits = await session.decode(token);
    }
    return { lastLogits, tokens };
  } finally {
    await session.dispose();
    await model.dispose();
  }
}

function largestDifference(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let largest = 0;
  for (let index = 0; index < a.length; index++) largest = Math.max(largest, Math.abs(a[index] - b[index]));
  return largest;
}

describe("readImportedWeights", () => {
  it.each(floatExports)(
    "%s: the reference backend on the read weights matches the unmodified export in onnxruntime-node",
    async (folder, modelFile) => {
      const weights = readImportedWeights(join(fixtures, folder));
      const { description } = weights;
      const plain = await runUnmodifiedExport(
        join(fixtures, folder, modelFile),
        description,
        prompt,
        greedyTokens,
      );
      const reference = await runReference(weights);
      expect(largestDifference(reference.lastLogits, plain.lastLogits)).toBeLessThanOrEqual(1e-4);
      // The logits are spread out (the models are initialised with a wide range), so the check above
      // is not met by two near-constant vectors.
      expect(Math.max(...plain.lastLogits) - Math.min(...plain.lastLogits)).toBeGreaterThan(1);
      expect(reference.tokens).toEqual(plain.tokens);
    },
  );

  it("reads what the model configurations say (shape, RoPE, norm epsilon, biases)", () => {
    const llama = readImportedWeights(join(fixtures, "optimum/llama")).description;
    expect(llama).toMatchObject({
      architecture: "llama",
      layerCount: 2,
      headCount: 4,
      kvHeadCount: 2,
      headSize: 16,
      embeddingSize: 64,
      feedForwardSize: 172,
      vocabularySize: 512,
      trainedContext: 128,
      normEpsilon: 1e-5,
      ropeBase: 10000,
      ropeLayout: "half-split",
      rotaryDimension: 16,
      ropeLinearScalingFactor: 1,
      hasQkvBias: false,
    });
    expect(llama.ropeFrequencyFactors).toBeUndefined();
    expect(readImportedWeights(join(fixtures, "genai/qwen2")).description.hasQkvBias).toBe(true);
    expect(readImportedWeights(join(fixtures, "optimum/phi3")).description.feedForwardSize).toBe(128);
  });

  it.each(["llama", "qwen2", "phi3"])(
    "%s: every exporter's graph gives the same weights (one Hugging Face model)",
    (family) => {
      const folders = floatExports
        .map(([folder]) => folder)
        .filter((folder) => folder.endsWith(`/${family}`));
      expect(folders.length).toBeGreaterThanOrEqual(2);
      const [first, ...others] = folders.map((folder) => readImportedWeights(join(fixtures, folder)));
      for (const other of others) {
        const { name: _firstName, ...firstDescription } = first.description;
        const { name: _otherName, ...otherDescription } = other.description;
        expect(otherDescription).toEqual(firstDescription);
        expect(other.tokenEmbedding).toEqual(first.tokenEmbedding);
        expect(other.outputNorm).toEqual(first.outputNorm);
        expect(other.output).toEqual(first.output);
        expect(other.layers).toEqual(first.layers);
      }
    },
  );

  it("genai int4: MatMulNBits weights dequantise to within 4-bit rounding of the float export's", () => {
    const quantized = readImportedWeights(join(fixtures, "genai-int4/llama"));
    const float = readImportedWeights(join(fixtures, "genai/llama"));
    // Embedding and norms stay float in the int4 export.
    expect(quantized.tokenEmbedding).toEqual(float.tokenEmbedding);
    expect(quantized.outputNorm).toEqual(float.outputNorm);
    const blockSize = 32;
    const check = (name: string, actual: Float32Array, expected: Float32Array, inputs: number) => {
      expect(actual.length, name).toBe(expected.length);
      let changed = 0;
      for (let row = 0; row < expected.length / inputs; row++) {
        for (let start = 0; start < inputs; start += blockSize) {
          const end = Math.min(start + blockSize, inputs);
          let largest = 0;
          const levels = new Set<number>();
          for (let column = start; column < end; column++) {
            largest = Math.max(largest, Math.abs(expected[row * inputs + column]));
            levels.add(actual[row * inputs + column]);
          }
          // Symmetric 4-bit codes -8 .. 7 with the block's largest magnitude at -8 steps: at most 16
          // levels, a step of largest / 8, rounding within half a step except at the clipped +8
          // end, which is within one step.
          expect(levels.size, name).toBeLessThanOrEqual(16);
          for (let column = start; column < end; column++) {
            const error = Math.abs(actual[row * inputs + column] - expected[row * inputs + column]);
            expect(error, `${name}[${row}, ${column}]`).toBeLessThanOrEqual((largest / 8) * (1 + 1e-6));
            if (error > 0) changed++;
          }
        }
      }
      expect(changed, `${name} is quantised`).toBeGreaterThan(0);
    };
    const { embeddingSize, feedForwardSize, headCount, headSize } = float.description;
    check("output", quantized.output, float.output, embeddingSize);
    for (const [layerIndex, layer] of float.layers.entries()) {
      const actual = quantized.layers[layerIndex];
      expect(actual.attentionNorm).toEqual(layer.attentionNorm);
      expect(actual.feedForwardNorm).toEqual(layer.feedForwardNorm);
      check(`layer ${layerIndex} query`, actual.query, layer.query, embeddingSize);
      check(`layer ${layerIndex} key`, actual.key, layer.key, embeddingSize);
      check(`layer ${layerIndex} value`, actual.value, layer.value, embeddingSize);
      check(`layer ${layerIndex} output`, actual.output, layer.output, headCount * headSize);
      check(`layer ${layerIndex} gate`, actual.gate, layer.gate, embeddingSize);
      check(`layer ${layerIndex} up`, actual.up, layer.up, embeddingSize);
      check(`layer ${layerIndex} down`, actual.down, layer.down, feedForwardSize);
    }
  });

  it("genai int4: the reference backend on the dequantised weights follows the int4 export in onnxruntime-node", async () => {
    const folder = join(fixtures, "genai-int4/llama");
    const quantized = readImportedWeights(folder);
    const plain = await runUnmodifiedExport(
      join(folder, "model.onnx"),
      quantized.description,
      prompt,
      greedyTokens,
    );
    const reference = await runReference(quantized);
    const unquantized = await runReference(readImportedWeights(join(fixtures, "genai/llama")));
    // The export's MatMulNBits runs with accuracy_level 4 (int8 activations on CPU), so the logits
    // are not equal to float32 precision; the dequantised weights must still explain the export far
    // better than the float weights it was quantised from, and give the same greedy tokens.
    const difference = largestDifference(reference.lastLogits, plain.lastLogits);
    expect(difference).toBeLessThanOrEqual(0.25);
    expect(difference).toBeLessThan(largestDifference(unquantized.lastLogits, plain.lastLogits) / 2);
    expect(reference.tokens).toEqual(plain.tokens);
  });

  /** A copy of optimum/llama with its graph changed by `edit`. */
  function editedExport(edit: (model: ReturnType<typeof fromBinary<typeof ModelProtoSchema>>) => void) {
    const source = join(fixtures, "optimum/llama");
    const folder = temporaryFolder();
    const model = fromBinary(ModelProtoSchema, readFileSync(join(source, "model.onnx")));
    edit(model);
    writeFileSync(join(folder, "model.onnx"), toBinary(ModelProtoSchema, model));
    copyFileSync(join(source, "config.json"), join(folder, "config.json"));
    return folder;
  }

  it("refuses an MLP that is not SwiGLU, naming the layer", () => {
    const folder = editedExport((model) => {
      const sigmoid = model.graph?.node.find((node) => node.name === "/model/layers.0/mlp/act_fn/Sigmoid");
      if (sigmoid === undefined) throw new Error("the fixture has no layer 0 Sigmoid");
      sigmoid.opType = "Tanh";
    });
    expect(() => readImportedWeights(folder)).toThrow(
      /model\.onnx: cannot rewrite attention for Self-Extend: layer 0: no SwiGLU MLP .* reads the feed-forward norm's output \/model\/layers\.0\/post_attention_layernorm\/Mul_1_output_0/,
    );
  });

  it("refuses RoPE scaled by an attention factor, naming the Cos node", () => {
    const folder = editedExport((model) => {
      const graph = model.graph;
      const scale = graph?.node.find((node) => node.name === "/model/rotary_emb/Mul_1");
      const constant = graph?.node.find((node) => node.output[0] === scale?.input[1]);
      const tensor = constant?.attribute.find((attribute) => attribute.name === "value")?.t;
      if (tensor === undefined) throw new Error("the fixture has no cos scaling constant");
      new DataView(tensor.rawData.buffer, tensor.rawData.byteOffset, 4).setFloat32(0, 1.5, true);
    });
    expect(() => readImportedWeights(folder)).toThrow(
      /\/model\/rotary_emb\/Cos \(Cos\): the graph scales cos\/sin by 1\.5/,
    );
  });

  it("refuses norms whose epsilons differ, naming the node", () => {
    const folder = editedExport((model) => {
      const graph = model.graph;
      const add = graph?.node.find((node) => node.name === "/model/layers.1/input_layernorm/Add");
      const constant = graph?.node.find((node) => node.output[0] === add?.input[1]);
      const tensor = constant?.attribute.find((attribute) => attribute.name === "value")?.t;
      if (tensor === undefined) throw new Error("the fixture has no layer 1 epsilon constant");
      new DataView(tensor.rawData.buffer, tensor.rawData.byteOffset, 4).setFloat32(0, 1e-6, true);
    });
    expect(() => readImportedWeights(folder)).toThrow(
      /\/model\/layers\.1\/input_layernorm\/Mul_1 \(Mul\) has epsilon 0\.000001, other norms 0\.00001/,
    );
  });

  it("refuses a folder without a model", () => {
    const folder = temporaryFolder();
    expect(() => readImportedWeights(folder)).toThrow(/no model\.onnx in the folder or in its onnx\/ folder/);
  });
});
