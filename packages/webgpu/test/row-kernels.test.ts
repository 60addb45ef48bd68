/**
 * The "tiled" kind's row kernels on their own against float64 computed here: the matrix-vector
 * kernel (below) and the workgroup-per-row RMSNorm (at the end). Matrix-vector:
 * output counts that are not a multiple of the workgroup's outputs, inner sizes that run the
 * four-way unrolled loop, its remainder loop, or only the remainder, a bias, accumulation into the
 * result, and a slab's output offset and result stride (the classifier's layout; the columns outside
 * the slab are compared too, against their untouched values).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { matrixVectorLayout, matrixVectorShader, rowRmsNormShader } from "../src/forward-pass.wgsl.js";
import { readFloat32, uniformUsage, uploadFloat32, uploadUint32 } from "../src/gpu-buffers.js";
import { requestWebGpuDevice, type WebGpuContext } from "../src/index.js";
import { randomValues } from "./browser/attention-inputs.js";

let context: WebGpuContext;
let pipeline: GPUComputePipeline;

beforeAll(async () => {
  context = await requestWebGpuDevice();
  const { device } = context;
  pipeline = device.createComputePipeline({
    layout: "auto",
    compute: {
      module: device.createShaderModule({ code: matrixVectorShader("float32") }),
      entryPoint: "main",
    },
  });
});

afterAll(() => context?.destroy());

/** Runs `pipeline` on `buffers` (bindings 0, 1, ...) and returns the largest |result - expected|. */
async function runAndCompare(
  pipeline: GPUComputePipeline,
  buffers: readonly GPUBuffer[],
  workgroups: number,
  result: GPUBuffer,
  expected: Float64Array,
): Promise<number> {
  const { device } = context;
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(
    0,
    device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    }),
  );
  pass.dispatchWorkgroups(workgroups);
  pass.end();
  device.queue.submit([encoder.finish()]);
  const actual = await readFloat32(device, result, expected.length * 4);
  context.assertHealthy();
  let largest = 0;
  for (let index = 0; index < expected.length; index++) {
    largest = Math.max(largest, Math.abs(actual[index] - expected[index]));
  }
  return largest;
}

interface Case {
  readonly rows: number;
  readonly outputs: number;
  readonly inputs: number;
  readonly bias?: boolean;
  readonly accumulate?: boolean;
  /** A slab: outputs land at columns outputOffset.. of rows resultStride wide. */
  readonly slab?: { readonly outputOffset: number; readonly resultStride: number };
}

const cases: Case[] = [
  { rows: 1, outputs: 37, inputs: 300 },
  { rows: 3, outputs: 9, inputs: 2048, bias: true },
  { rows: 1, outputs: 8, inputs: 40, accumulate: true },
  { rows: 2, outputs: 21, inputs: 128, bias: true, accumulate: true },
  { rows: 2, outputs: 13, inputs: 257, slab: { outputOffset: 5, resultStride: 30 } },
];

describe("matrix-vector kernel vs float64 products", () => {
  it.each(cases)("%o", async (testCase) => {
    const { device } = context;
    const { rows, outputs, inputs } = testCase;
    const weights = randomValues(outputs * inputs, outputs + inputs);
    const x = randomValues(rows * inputs, 7);
    const bias = randomValues(outputs, 11);
    const resultStride = testCase.slab?.resultStride ?? outputs;
    const outputOffset = testCase.slab?.outputOffset ?? 0;
    const initial = randomValues(rows * resultStride, 13);
    const expected = Float64Array.from(initial);
    for (let row = 0; row < rows; row++) {
      for (let o = 0; o < outputs; o++) {
        let sum = testCase.bias ? bias[o] : 0;
        for (let i = 0; i < inputs; i++) sum += weights[o * inputs + i] * x[row * inputs + i];
        const at = outputOffset + row * resultStride + o;
        expected[at] = testCase.accumulate ? initial[at] + sum : sum;
      }
    }
    const uniform = device.createBuffer({ size: 32, usage: uniformUsage, mappedAtCreation: true });
    new Uint32Array(uniform.getMappedRange()).set([
      rows,
      outputs,
      inputs,
      outputOffset,
      testCase.accumulate ? 1 : 0,
      testCase.bias ? 1 : 0,
      resultStride,
    ]);
    uniform.unmap();
    const result = uploadFloat32(device, initial);
    const buffers = [
      uniform,
      uploadFloat32(device, x),
      uploadFloat32(device, weights),
      uploadFloat32(device, bias),
      result,
    ];
    const largest = await runAndCompare(
      pipeline,
      buffers,
      Math.ceil(outputs / matrixVectorLayout.outputs),
      result,
      expected,
    );
    // Values are sums of up to 2048 products of numbers below 1 in size: float32 rounding only.
    expect(largest).toBeLessThan(1e-4);
  });
});

describe("row-parallel RMSNorm vs float64", () => {
  it.each([
    { rows: 1, width: 2048, accumulate: false },
    { rows: 3, width: 300, accumulate: true },
    { rows: 2, width: 40, accumulate: false },
  ])("%o", async ({ rows, width, accumulate }) => {
    const { device } = context;
    const normPipeline = device.createComputePipeline({
      layout: "auto",
      compute: { module: device.createShaderModule({ code: rowRmsNormShader() }), entryPoint: "main" },
    });
    const epsilon = 1e-5;
    // Rows are picked through an index list (the final norm reads only the rows asked for).
    const sourceRows = rows + 2;
    const source = randomValues(sourceRows * width, width);
    const weight = randomValues(width, 3);
    const rowIndices = Uint32Array.from({ length: rows }, (_, row) => sourceRows - 1 - row);
    const initial = randomValues(rows * width, 5);
    const expected = Float64Array.from(initial);
    for (let row = 0; row < rows; row++) {
      const start = rowIndices[row] * width;
      let squares = 0;
      for (let i = 0; i < width; i++) squares += source[start + i] ** 2;
      const inverse = 1 / Math.sqrt(squares / width + epsilon);
      for (let i = 0; i < width; i++) {
        const value = source[start + i] * inverse * weight[i];
        expected[row * width + i] = accumulate ? initial[row * width + i] + value : value;
      }
    }
    const uniform = device.createBuffer({ size: 16, usage: uniformUsage, mappedAtCreation: true });
    new Uint32Array(uniform.getMappedRange()).set([rows, width, 0, accumulate ? 1 : 0]);
    uniform.unmap();
    device.queue.writeBuffer(uniform, 8, Float32Array.of(epsilon));
    const result = uploadFloat32(device, initial);
    const buffers = [
      uniform,
      uploadUint32(device, rowIndices),
      uploadFloat32(device, source),
      uploadFloat32(device, weight),
      result,
    ];
    const largest = await runAndCompare(normPipeline, buffers, rows, result, expected);
    expect(largest).toBeLessThan(1e-5);
  });
});
