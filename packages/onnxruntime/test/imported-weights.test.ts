/**
 * readImportedWeights on the exports made by the real exporters (test/fixtures/imported, see
 * tools/onnx-exports/README.md): the reference backend on the weights read from each float export
 * computes what the unmodified export computes in onnxruntime-node (last-position logits of a
 * 40-token prompt within 1e-4, 16 greedy tokens identical), every exporter of one family yields the
 * same weights (all were made from one Hugging Face model), genai's int4 and transformers.js's q8
 * weights dequantise to within rounding of the float weights, RoPE scaling baked into a graph is
 * run as the graph runs it, and graphs that are not what the reader recognises are refused naming
 * the node.
 */
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type { LlamaWeights } from "@self-extend/models";
import { createReferenceModel } from "@self-extend/reference";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { readImportedWeights } from "../src/export.js";
import {
  ModelProtoSchema,
  TensorProto_DataLocation,
  TensorProto_DataType,
  TensorProtoSchema,
} from "../src/generated/onnx/onnx_pb.js";
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
  ["ort-optimizer/llama", "model.onnx"],
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

  type OnnxModel = ReturnType<typeof fromBinary<typeof ModelProtoSchema>>;

  /** A copy of optimum/llama with its graph (and config.json) changed. */
  function editedExport(edit: (model: OnnxModel) => void, config: Record<string, unknown> = {}) {
    const source = join(fixtures, "optimum/llama");
    const folder = temporaryFolder();
    const model = fromBinary(ModelProtoSchema, readFileSync(join(source, "model.onnx")));
    edit(model);
    writeFileSync(join(folder, "model.onnx"), toBinary(ModelProtoSchema, model));
    const sourceConfig = JSON.parse(readFileSync(join(source, "config.json"), "utf8"));
    writeFileSync(join(folder, "config.json"), JSON.stringify({ ...sourceConfig, ...config }));
    return folder;
  }

  /** Divides the RoPE inv_freq constant of the optimum Llama export, pair by pair. */
  function divideInverseFrequencies(model: OnnxModel, divisors: readonly number[]) {
    const expand = model.graph?.node.find((node) => node.name === "/model/rotary_emb/Expand");
    const constant = model.graph?.node.find((node) => node.output[0] === expand?.input[0]);
    const tensor = constant?.attribute.find((attribute) => attribute.name === "value")?.t;
    if (tensor === undefined || tensor.rawData.byteLength !== 4 * divisors.length) {
      throw new Error("the fixture's inv_freq constant is not where it was");
    }
    const view = new DataView(tensor.rawData.buffer, tensor.rawData.byteOffset, tensor.rawData.byteLength);
    for (const [pair, divisor] of divisors.entries()) {
      view.setFloat32(pair * 4, view.getFloat32(pair * 4, true) / divisor, true);
    }
  }

  it("per-pair RoPE factors baked into the graph (as llama3 scaling does) are read and run as the graph runs them", async () => {
    const divisors = [1, 1, 1.5, 2.5, 4, 8, 8, 8];
    const folder = editedExport((model) => divideInverseFrequencies(model, divisors), {
      rope_scaling: {
        rope_type: "llama3",
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 32,
      },
    });
    const weights = readImportedWeights(folder);
    const factors = weights.description.ropeFrequencyFactors ?? [];
    expect(factors).toHaveLength(divisors.length);
    for (const [pair, divisor] of divisors.entries()) expect(factors[pair]).toBeCloseTo(divisor, 5);
    const plain = await runUnmodifiedExport(
      join(folder, "model.onnx"),
      weights.description,
      prompt,
      greedyTokens,
    );
    const reference = await runReference(weights);
    expect(largestDifference(reference.lastLogits, plain.lastLogits)).toBeLessThanOrEqual(1e-4);
    expect(reference.tokens).toEqual(plain.tokens);
    // Without the factors the same weights are visibly off: the comparison above can fail.
    const { ropeFrequencyFactors: _factors, ...unscaled } = weights.description;
    const withoutFactors = await runReference({ ...weights, description: unscaled });
    expect(largestDifference(withoutFactors.lastLogits, plain.lastLogits)).toBeGreaterThan(1e-2);
  });

  it("linear RoPE scaling from config.json is checked against the graph's inv_freq", async () => {
    const scaled = editedExport((model) => divideInverseFrequencies(model, Array(8).fill(2)), {
      rope_scaling: { type: "linear", factor: 2 },
    });
    const weights = readImportedWeights(scaled);
    expect(weights.description.ropeLinearScalingFactor).toBe(2);
    expect(weights.description.ropeFrequencyFactors).toBeUndefined();
    const plain = await runUnmodifiedExport(
      join(scaled, "model.onnx"),
      weights.description,
      prompt,
      greedyTokens,
    );
    expect(largestDifference((await runReference(weights)).lastLogits, plain.lastLogits)).toBeLessThanOrEqual(
      1e-4,
    );

    const unscaled = editedExport(() => {}, { rope_scaling: { type: "linear", factor: 2 } });
    expect(() => readImportedWeights(unscaled)).toThrow(
      /RoPE inv_freq onnx::Expand_\d+: the graph's RoPE frequencies are not rope_theta 10000 with the configured linear factor 2/,
    );
  });

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

  it("refuses attention scaled other than by 1/sqrt(head size), naming the score MatMul", () => {
    const folder = editedExport((model) => {
      const graph = model.graph;
      const scale = graph?.node.find((node) => node.name === "/model/layers.1/self_attn/Mul_8");
      const constant = graph?.node.find((node) => node.output[0] === scale?.input[1]);
      const tensor = constant?.attribute.find((attribute) => attribute.name === "value")?.t;
      if (tensor === undefined) throw new Error("the fixture has no layer 1 query scale");
      const view = new DataView(tensor.rawData.buffer, tensor.rawData.byteOffset, 4);
      view.setFloat32(0, view.getFloat32(0, true) * 2, true);
    });
    expect(() => readImportedWeights(folder)).toThrow(
      /layer 1: \/model\/layers\.1\/self_attn\/MatMul \(MatMul\) scales scores by 0\.5, not 1\/sqrt\(head size\) = 0\.25/,
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

  it("transformers.js q8: MatMulInteger and DequantizeLinear weights dequantise to within one int8 step of the float export's", () => {
    const quantized = readImportedWeights(join(fixtures, "transformersjs/llama/onnx/model_quantized.onnx"));
    const float = readImportedWeights(join(fixtures, "transformersjs/llama"));
    const { name: _quantizedName, ...quantizedDescription } = quantized.description;
    const { name: _floatName, ...floatDescription } = float.description;
    expect(quantizedDescription).toEqual(floatDescription);
    // Per-tensor 8-bit codes: int8 weights symmetric in -127 .. 127 (a step of max|w| / 127), the
    // uint8 embedding over [min, max] in 255 steps (at most 2 max|w| / 255): rounding stays within
    // half a step, max|w| / 254.
    const check = (name: string, actual: Float32Array, expected: Float32Array) => {
      expect(actual.length, name).toBe(expected.length);
      let largest = 0;
      for (const value of expected) largest = Math.max(largest, Math.abs(value));
      let changed = 0;
      for (let index = 0; index < expected.length; index++) {
        const error = Math.abs(actual[index] - expected[index]);
        expect(error, `${name}[${index}]`).toBeLessThanOrEqual((largest / 254) * (1 + 1e-5));
        if (error > 0) changed++;
      }
      expect(new Set(actual).size, `${name} has at most 256 levels`).toBeLessThanOrEqual(256);
      expect(changed, `${name} is quantised`).toBeGreaterThan(0);
    };
    check("token embedding", quantized.tokenEmbedding, float.tokenEmbedding);
    check("output", quantized.output, float.output);
    expect(quantized.outputNorm).toEqual(float.outputNorm);
    for (const [layerIndex, layer] of float.layers.entries()) {
      const actual = quantized.layers[layerIndex];
      expect(actual.attentionNorm).toEqual(layer.attentionNorm);
      expect(actual.feedForwardNorm).toEqual(layer.feedForwardNorm);
      for (const part of ["query", "key", "value", "output", "gate", "up", "down"] as const) {
        check(`layer ${layerIndex} ${part}`, actual[part], layer[part]);
      }
    }
  });

  /** A copy of a genai export (graph, data file, genai_config.json) with its graph changed. */
  function editedGenaiExport(folderName: string, edit: (model: OnnxModel) => void) {
    const source = join(fixtures, folderName);
    const folder = temporaryFolder();
    const model = fromBinary(ModelProtoSchema, readFileSync(join(source, "model.onnx")));
    edit(model);
    writeFileSync(join(folder, "model.onnx"), toBinary(ModelProtoSchema, model));
    for (const file of ["model.onnx.data", "genai_config.json"])
      copyFileSync(join(source, file), join(folder, file));
    return folder;
  }

  it("per-pair RoPE factors in genai's cos/sin cache are read and run as GroupQueryAttention runs them", async () => {
    const divisors = [1, 1, 1.5, 2.5, 4, 8, 8, 8];
    const rotaryDimension = 2 * divisors.length;
    const folder = editedGenaiExport("genai/llama", (model) => {
      for (const [name, trigonometry] of [
        ["cos_cache", Math.cos],
        ["sin_cache", Math.sin],
      ] as const) {
        const tensor = model.graph?.initializer.find((item) => item.name === name);
        if (tensor === undefined) throw new Error(`the fixture has no ${name}`);
        const rows = Number(tensor.dims[0]);
        const values = new Float32Array(rows * divisors.length);
        for (let position = 0; position < rows; position++) {
          for (const [pair, divisor] of divisors.entries()) {
            const frequency = 10000 ** ((-2 * pair) / rotaryDimension) / divisor;
            values[position * divisors.length + pair] = trigonometry(position * frequency);
          }
        }
        tensor.dataLocation = TensorProto_DataLocation.DEFAULT;
        tensor.externalData = [];
        tensor.rawData = new Uint8Array(values.buffer);
      }
    });
    const weights = readImportedWeights(folder);
    expect(weights.description.ropeBase).toBe(10000);
    const factors = weights.description.ropeFrequencyFactors ?? [];
    expect(factors).toHaveLength(divisors.length);
    for (const [pair, divisor] of divisors.entries()) expect(factors[pair]).toBeCloseTo(divisor, 5);
    const plain = await runUnmodifiedExport(
      join(folder, "model.onnx"),
      weights.description,
      prompt,
      greedyTokens,
    );
    const reference = await runReference(weights);
    expect(largestDifference(reference.lastLogits, plain.lastLogits)).toBeLessThanOrEqual(1e-4);
    expect(reference.tokens).toEqual(plain.tokens);
    const { ropeFrequencyFactors: _factors, ...unscaled } = weights.description;
    const withoutFactors = await runReference({ ...weights, description: unscaled });
    expect(largestDifference(withoutFactors.lastLogits, plain.lastLogits)).toBeGreaterThan(1e-2);
  });

  it("refuses MatMulNBits with zero points, naming the node", () => {
    const folder = editedGenaiExport("genai-int4/llama", (model) => {
      const graph = model.graph;
      const node = graph?.node.find((item) => item.name === "/model/layers.0/attn/qkv_proj/MatMul_Q4");
      if (graph === undefined || node === undefined)
        throw new Error("the fixture has no layer 0 MatMulNBits");
      graph.initializer.push(
        create(TensorProtoSchema, {
          name: "qkv_zero_points",
          dims: [128n, 1n],
          dataType: TensorProto_DataType.UINT8,
          rawData: new Uint8Array(128).fill(0x88),
        }),
      );
      node.input[3] = "qkv_zero_points";
    });
    expect(() => readImportedWeights(folder)).toThrow(
      /\/model\/layers\.0\/attn\/qkv_proj\/MatMul_Q4 \(com\.microsoft\.MatMulNBits\) has zero_points, g_idx or bias inputs; only symmetric MatMulNBits/,
    );
  });

  it("refuses a folder without a model", () => {
    const folder = temporaryFolder();
    expect(() => readImportedWeights(folder)).toThrow(/no model\.onnx in the folder or in its onnx\/ folder/);
  });
});
