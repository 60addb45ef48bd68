/**
 * Why llama.cpp's logits differ from ours on quantized weights, shown on one matrix product.
 * ggml's CPU backend computes mul_mat(quantized weights, float32 activations) for each weight type
 * (ggml-quantized-product.cc). We compute it in float64 two ways from the same dequantised weights:
 * with the float32 activations (what the reference, ONNX Runtime and WebGPU backends do), and with
 * the activations rounded to the 8-bit block format ggml's CPU backend pairs with that weight type
 * (its vec_dot_type: Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for the K-quants), rounded by
 * ggml's own reference quantizer. If activation rounding is the cause, the second matches ggml to
 * float32 accumulation error and the first is off by far more.
 */
import { createRandom } from "@self-extend/core";
import { useTemporaryFolder } from "@self-extend/test-fixtures";
import { describe, expect, it } from "vitest";
import { ggmlQuantizedProduct } from "./llama-quantize.js";

const temporaryFolder = useTemporaryFolder("quantized-products-");

const weightTypes = [
  { name: "Q4_0", weight: 2, activation: 8 },
  { name: "Q4_1", weight: 3, activation: 9 },
  { name: "Q5_0", weight: 6, activation: 8 },
  { name: "Q5_1", weight: 7, activation: 9 },
  { name: "Q8_0", weight: 8, activation: 8 },
  { name: "Q2_K", weight: 10, activation: 15 },
  { name: "Q3_K", weight: 11, activation: 15 },
  { name: "Q4_K", weight: 12, activation: 15 },
  { name: "Q5_K", weight: 13, activation: 15 },
  { name: "Q6_K", weight: 14, activation: 15 },
];

/**
 * Rows of `activations` (m x k) times rows of `weights` (n x k), in float64: m x n. With `blocks`,
 * each 32-value block's weights are split as (w - min) + min and the minimum's term takes the
 * block's given activation sum: sum_i (w_i - min) * x_i + min * s. That is how ggml multiplies
 * Q4_1/Q5_1 weights (x = d * q + m) by Q8_1 activations, whose block sum s is stored in F16; for
 * other types min is 0 and this is the plain product.
 */
function product(
  weights: Float32Array,
  activations: Float32Array,
  k: number,
  blocks?: { readonly weightMinima: Float32Array; readonly activationSums: Float32Array },
): Float64Array {
  const n = weights.length / k;
  const m = activations.length / k;
  const out = new Float64Array(m * n);
  for (let row = 0; row < m; row++) {
    for (let column = 0; column < n; column++) {
      let sum = 0;
      for (let block = 0; block < k / 32; block++) {
        const minimum = blocks === undefined ? 0 : blocks.weightMinima[(column * k) / 32 + block];
        for (let index = 32 * block; index < 32 * block + 32; index++) {
          sum += activations[row * k + index] * (weights[column * k + index] - minimum);
        }
        if (blocks !== undefined) sum += minimum * blocks.activationSums[(row * k) / 32 + block];
      }
      out[row * n + column] = sum;
    }
  }
  return out;
}

function largestDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let largest = 0;
  for (let index = 0; index < a.length; index++) largest = Math.max(largest, Math.abs(a[index] - b[index]));
  return largest;
}

describe("one quantized product on ggml's CPU backend", () => {
  const shape = { k: 512, n: 64, m: 8 };
  const random = createRandom(5);
  // Weights and activations of the size a 512-wide layer sees: uniform, then a few outliers, as
  // real activations have (they set the scale of an 8-bit activation block).
  const weights = Float32Array.from({ length: shape.n * shape.k }, () => (2 * random() - 1) * 0.08);
  const activations = Float32Array.from({ length: shape.m * shape.k }, (_, index) =>
    index % 97 === 0 ? 8 * (2 * random() - 1) : 2 * random() - 1,
  );

  for (const type of weightTypes) {
    it(`${type.name}: ggml's result is the product with activations rounded to its activation blocks`, () => {
      const ggml = ggmlQuantizedProduct(
        shape,
        type,
        weights,
        activations,
        `${temporaryFolder()}/${type.name}`,
      );
      const floatActivations = product(ggml.weights, activations, shape.k);
      const roundedActivations = product(ggml.weights, ggml.roundedActivations, shape.k, ggml);
      const scale = largestDifference(floatActivations, new Float64Array(floatActivations.length));
      const againstFloat = largestDifference(ggml.products, floatActivations) / scale;
      const againstRounded = largestDifference(ggml.products, roundedActivations) / scale;
      console.info(
        `${type.name}: ggml against float activations ${againstFloat.toExponential(2)}, against rounded activations ${againstRounded.toExponential(2)} (relative to the largest product)`,
      );
      // float32 accumulation of 512 terms: measured 0.8e-7 to 3.4e-7 relative to the largest
      // product, against 1.1e-2 to 2.1e-2 with float activations (conformance/quantized-weights.json).
      expect(againstRounded).toBeLessThan(2e-6);
      expect(againstFloat).toBeGreaterThan(1000 * againstRounded);
    });
  }
});
