/**
 * WGSL of the non-attention parts of a Llama forward pass. They are simple on purpose: one
 * invocation per output value, loops only over a row's inner dimension (so one invocation stays far
 * below llvmpipe's 65535 loop iterations for any embedding width a device buffer can hold), and no
 * workgroup memory (CPU implementations run register-resident loops faster than shared tiles; a
 * real GPU would want tiled matmuls, see the README).
 *
 * Every kernel reads its sizes from a uniform and flattens its index over up to two dispatch
 * dimensions, because maxComputeWorkgroupsPerDimension (65535) is smaller than a logits row count
 * times the vocabulary.
 */
import type { RopeLayout } from "@self-extend/core";

const flatIndex = /* wgsl */ `
fn flatIndex(workgroup: vec3<u32>, count: vec3<u32>, local: u32, size: u32) -> u32 {
  return (workgroup.y * count.x + workgroup.x) * size + local;
}`;

function entry(workgroupSize: number): string {
  return `@compute @workgroup_size(${workgroupSize})
fn main(@builtin(workgroup_id) workgroupId: vec3<u32>, @builtin(num_workgroups) workgroupCount: vec3<u32>, @builtin(local_invocation_index) localIndex: u32) {
  let index = flatIndex(workgroupId, workgroupCount, localIndex, ${workgroupSize}u);`;
}

/**
 * How weight matrices (and the token embedding) are stored: float32, or float16 with the
 * `shader-f16` feature (read as f16, widened to f32 before any arithmetic: activations,
 * accumulators and the KV cache stay float32).
 */
export type WeightPrecision = "float32" | "float16";

function weightDeclarations(precision: WeightPrecision): { enable: string; type: string } {
  return precision === "float16" ? { enable: "enable f16;\n", type: "f16" } : { enable: "", type: "f32" };
}

/**
 * output[r, :] = table[tokens[r] - firstToken, :] for the tokens firstToken .. firstToken +
 * tokenCount - 1 the table slab holds; rows of other tokens are left to the other slabs.
 */
export function embeddingShader(workgroupSize: number, precision: WeightPrecision = "float32"): string {
  const { enable, type } = weightDeclarations(precision);
  return /* wgsl */ `${enable}${flatIndex}
struct Params { rows: u32, width: u32, firstToken: u32, tokenCount: u32, }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<${type}>;
@group(0) @binding(3) var<storage, read_write> result: array<f32>;
${entry(workgroupSize)}
  if (index >= params.rows * params.width) { return; }
  let row = index / params.width;
  let column = index % params.width;
  let token = tokens[row];
  if (token < params.firstToken || token - params.firstToken >= params.tokenCount) { return; }
  result[index] = f32(table[(token - params.firstToken) * params.width + column]);
}`;
}

/** output row r = x row rows[r] * weight / sqrt(mean(x^2) + eps); rows[] gathers the logit rows. */
export function rmsNormShader(workgroupSize: number): string {
  return /* wgsl */ `${flatIndex}
struct Params { rows: u32, width: u32, epsilon: f32, }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> rowIndices: array<u32>;
@group(0) @binding(2) var<storage, read> source: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read_write> result: array<f32>;
${entry(workgroupSize)}
  if (index >= params.rows) { return; }
  let start = rowIndices[index] * params.width;
  var squares = 0.0;
  for (var i = 0u; i < params.width; i++) { let x = source[start + i]; squares += x * x; }
  let inverse = inverseSqrt(squares / f32(params.width) + params.epsilon);
  let destination = index * params.width;
  for (var i = 0u; i < params.width; i++) { result[destination + i] = source[start + i] * inverse * weight[i]; }
}`;
}

/**
 * result[outputOffset + r * resultStride + o] (+)= sum_i weight[o * inputs + i] * x[r * inputs + i] + bias[o]
 * (row-major [out, in] weights, as GGUF stores them). `accumulate` adds into the result: the
 * residual connections without a separate add kernel. resultStride is `outputs` except for a
 * slab of the classifier, whose outputs are some columns of each logits row.
 */
export function matmulShader(workgroupSize: number, precision: WeightPrecision = "float32"): string {
  const { enable, type } = weightDeclarations(precision);
  return /* wgsl */ `${enable}${flatIndex}
struct Params { rows: u32, outputs: u32, inputs: u32, outputOffset: u32, accumulate: u32, hasBias: u32, resultStride: u32, }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<${type}>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> result: array<f32>;
${entry(workgroupSize)}
  if (index >= params.rows * params.outputs) { return; }
  let row = index / params.outputs;
  let o = index % params.outputs;
  let w = o * params.inputs;
  let v = row * params.inputs;
  var sum = 0.0;
  for (var i = 0u; i < params.inputs; i++) { sum += f32(weight[w + i]) * x[v + i]; }
  if (params.hasBias != 0u) { sum += bias[o]; }
  let at = params.outputOffset + row * params.resultStride + o;
  if (params.accumulate != 0u) { result[at] += sum; } else { result[at] = sum; }
}`;
}

/** gate = silu(gate) * up */
export function swiGluShader(workgroupSize: number): string {
  return /* wgsl */ `${flatIndex}
struct Params { count: u32, }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
${entry(workgroupSize)}
  if (index >= params.count) { return; }
  let g = gate[index];
  gate[index] = g / (1.0 + exp(-g)) * up[index];
}`;
}

/**
 * Rotates `rows` consecutive tokens of `heads` head vectors in place, token r to position
 * firstPosition + r (keys entering the cache, which keeps key j rotated at j). Both layouts and
 * partial rotary come from the same table the attention kernel reads.
 */
export function ropeShader(
  workgroupSize: number,
  headSize: number,
  rotaryDimension: number,
  layout: RopeLayout,
): string {
  const pairs = rotaryDimension / 2;
  const indices =
    layout === "interleaved"
      ? "let first = base + 2u * pair; let second = first + 1u;"
      : `let first = base + pair; let second = first + ${pairs}u;`;
  return /* wgsl */ `${flatIndex}
struct Params { rows: u32, heads: u32, firstPosition: u32, offset: u32, }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> rope: array<f32>;
@group(0) @binding(2) var<storage, read_write> vectors: array<f32>;
${entry(workgroupSize)}
  if (index >= params.rows * params.heads * ${pairs}u) { return; }
  let pair = index % ${pairs}u;
  let head = index / ${pairs}u;
  let row = head / params.heads;
  let base = params.offset + head * ${headSize}u;
  ${indices}
  let at = ((params.firstPosition + row) * ${pairs}u + pair) * 2u;
  let c = rope[at];
  let s = rope[at + 1u];
  let x = vectors[first];
  let y = vectors[second];
  vectors[first] = x * c - y * s;
  vectors[second] = x * s + y * c;
}`;
}
