/**
 * WGSL of the non-attention parts of a Llama forward pass. They are simple on purpose: one
 * invocation per output value, loops only over a row's inner dimension (so one invocation stays far
 * below llvmpipe's 65535 loop iterations for any embedding width a device buffer can hold), and no
 * workgroup memory (CPU implementations run register-resident loops faster than shared tiles).
 * Matmuls also have a "tiled" kind for GPUs (see {@link MatmulKernel}).
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

/**
 * A float as a WGSL literal that converts to the same f32: a model's scales and caps are float32
 * values, whose shortest JavaScript text is an exact double, so nothing is rounded twice.
 */
export function wgslFloat(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`${value} is not a finite number for a WGSL constant`);
  const text = String(value);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

/**
 * tanh with its argument clamped to +-15, where f32 tanh is already exactly +-1: drivers may
 * build tanh from exp, which overflows to inf / inf = NaN for large arguments.
 */
const boundedTanh = /* wgsl */ `
fn boundedTanh(x: f32) -> f32 { return tanh(clamp(x, -15.0, 15.0)); }`;

function weightDeclarations(precision: WeightPrecision): { enable: string; type: string } {
  return precision === "float16" ? { enable: "enable f16;\n", type: "f16" } : { enable: "", type: "f32" };
}

/**
 * output[r, :] = table[tokens[r] - firstToken, :] for the tokens firstToken .. firstToken +
 * tokenCount - 1 the table slab holds; rows of other tokens are left to the other slabs. With a
 * `scale` (Gemma's sqrt(embeddingSize)) each value is multiplied by it, in float32 as llama.cpp does.
 */
export function embeddingShader(
  workgroupSize: number,
  precision: WeightPrecision = "float32",
  scale?: number,
): string {
  const { enable, type } = weightDeclarations(precision);
  const scaled = scale === undefined ? "" : ` * ${wgslFloat(scale)}`;
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
  result[index] = f32(table[(token - params.firstToken) * params.width + column])${scaled};
}`;
}

/**
 * output row r (+)= x row rows[r] * weight / sqrt(mean(x^2) + eps); rows[] gathers the logit rows.
 * `accumulate` adds into the output: Gemma 2's post-norms normalise a block's attention or
 * feed-forward output straight into the residual.
 */
/** The bindings of both RMSNorm kernels (one invocation per row, or a workgroup per row). */
const rmsNormBindings = /* wgsl */ `
struct Params { rows: u32, width: u32, epsilon: f32, accumulate: u32, }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> rowIndices: array<u32>;
@group(0) @binding(2) var<storage, read> source: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read_write> result: array<f32>;`;

export function rmsNormShader(workgroupSize: number): string {
  return /* wgsl */ `${flatIndex}${rmsNormBindings}
${entry(workgroupSize)}
  if (index >= params.rows) { return; }
  let start = rowIndices[index] * params.width;
  var squares = 0.0;
  for (var i = 0u; i < params.width; i++) { let x = source[start + i]; squares += x * x; }
  let inverse = inverseSqrt(squares / f32(params.width) + params.epsilon);
  let destination = index * params.width;
  if (params.accumulate != 0u) {
    for (var i = 0u; i < params.width; i++) { result[destination + i] += source[start + i] * inverse * weight[i]; }
  } else {
    for (var i = 0u; i < params.width; i++) { result[destination + i] = source[start + i] * inverse * weight[i]; }
  }
}`;
}

/** Invocations of a row-parallel RMSNorm workgroup (a power of two, for the halving reduction). */
export const rowNormWorkgroupSize = 256;

/**
 * The "tiled" kind's RMSNorm: the same values as {@link rmsNormShader}, but a workgroup per row
 * whose invocations share out the row's width and add their sums of squares by halving in
 * workgroup memory. One invocation per row leaves a GPU idle on a decode's one row, walking 2048
 * values (Llama-3.2-1B) one load at a time, 33 times per token.
 */
export function rowRmsNormShader(): string {
  const size = rowNormWorkgroupSize;
  return /* wgsl */ `${rmsNormBindings}
var<workgroup> partial: array<f32, ${size}>;
@compute @workgroup_size(${size})
fn main(@builtin(workgroup_id) workgroupId: vec3<u32>, @builtin(num_workgroups) workgroupCount: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let index = workgroupId.y * workgroupCount.x + workgroupId.x;
  // Uniform across the workgroup (it depends on the workgroup id only), so the barriers below are too.
  if (index >= params.rows) { return; }
  let start = rowIndices[index] * params.width;
  var squares = 0.0;
  for (var i = lane; i < params.width; i += ${size}u) { let x = source[start + i]; squares += x * x; }
  partial[lane] = squares;
  workgroupBarrier();
  for (var half = ${size / 2}u; half > 0u; half = half / 2u) {
    if (lane < half) { partial[lane] += partial[lane + half]; }
    workgroupBarrier();
  }
  let inverse = inverseSqrt(partial[0] / f32(params.width) + params.epsilon);
  let destination = index * params.width;
  if (params.accumulate != 0u) {
    for (var i = lane; i < params.width; i += ${size}u) { result[destination + i] += source[start + i] * inverse * weight[i]; }
  } else {
    for (var i = lane; i < params.width; i += ${size}u) { result[destination + i] = source[start + i] * inverse * weight[i]; }
  }
}`;
}

/**
 * Gemma 3's per-head RMSNorm: row r (one head of one token, `width` = headSize values) of `source`
 * normalised with the layer's shared head weights into result[outputOffset + r * width ..], so
 * normalised keys land straight in their cache rows.
 */
export function headNormShader(workgroupSize: number): string {
  return /* wgsl */ `${flatIndex}
struct Params { rows: u32, width: u32, epsilon: f32, outputOffset: u32, }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> source: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> result: array<f32>;
${entry(workgroupSize)}
  if (index >= params.rows) { return; }
  let start = index * params.width;
  var squares = 0.0;
  for (var i = 0u; i < params.width; i++) { let x = source[start + i]; squares += x * x; }
  let inverse = inverseSqrt(squares / f32(params.width) + params.epsilon);
  let destination = params.outputOffset + start;
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

/**
 * How matmuls run. "per-output": one invocation per output value, each reading its whole weight
 * row (the kernel above: fastest on CPU implementations, whose invocations are SIMD lanes of one
 * thread). "tiled", for GPUs: for a few rows (matrix-vector, decoding) a workgroup computes 4 output
 * values, 64 invocations each reading the value's weight row side by side, so reads coalesce, then
 * adding up their partial sums in workgroup memory, and 16 x 16 tiles staged in workgroup memory for longer blocks
 * (prefill: each weight value loaded once per 16 rows instead of once per row). Same products, added
 * in another order: results differ from "per-output" by float32 rounding only.
 */
export type MatmulKernel = "per-output" | "tiled";

/** Rows below this go to the matrix-vector kernel; from it on, to the 16 x 16 tiles. */
export const tiledMatmulSmallestRows = 8;

/**
 * How the matrix-vector kernel shares out its work: `lanes` invocations (a power of two) read one
 * weight row side by side, and a workgroup computes `outputs` rows' values at once, so one halving
 * reduction (log2(lanes) barriers) serves `outputs` values.
 */
export interface MatrixVectorLayout {
  readonly lanes: number;
  readonly outputs: number;
}

/**
 * 64 lanes x 4 outputs (256 invocations, WebGPU's default limit): on an H100 through Vulkan
 * (benchmark-matrix-vector.ts, README) 64 x 4, 64 x 1 and 128 x 2 were within a few percent of each
 * other on Llama-3.2-1B's shapes and 32 x 8 up to 29% slower on the 8192-input one; 64 x 4 needs a
 * quarter of 64 x 1's workgroups.
 */
export const matrixVectorLayout: MatrixVectorLayout = { lanes: 64, outputs: 4 };

/** Side of the tiled kernel's square tiles (its workgroup is side x side invocations). */
export const matmulTileSide = 16;

const matmulParams = /* wgsl */ `
struct Params { rows: u32, outputs: u32, inputs: u32, outputOffset: u32, accumulate: u32, hasBias: u32, resultStride: u32, }`;

function matmulBindings(type: string): string {
  return /* wgsl */ `@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<${type}>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> result: array<f32>;
fn store(row: u32, o: u32, value: f32) {
  var sum = value;
  if (params.hasBias != 0u) { sum += bias[o]; }
  let at = params.outputOffset + row * params.resultStride + o;
  if (params.accumulate != 0u) { result[at] += sum; } else { result[at] = sum; }
}`;
}

/**
 * The "tiled" kind's matrix-vector kernel: workgroup (y * count.x + x) computes outputs
 * `outputs` x that .. + outputs - 1 for every row. Lane l of an output adds the products l,
 * l + lanes, ... of its weight row (neighbouring lanes read neighbouring weights, so reads
 * coalesce), four independent sums at a time so each invocation keeps four loads in flight, then
 * the lanes' sums are added by halving in workgroup memory.
 */
export function matrixVectorShader(
  precision: WeightPrecision = "float32",
  layout: MatrixVectorLayout = matrixVectorLayout,
): string {
  const { enable, type } = weightDeclarations(precision);
  const { lanes, outputs } = layout;
  const size = lanes * outputs;
  return /* wgsl */ `${enable}${matmulParams}
${matmulBindings(type)}
const LANES: u32 = ${lanes}u;
const OUTPUTS: u32 = ${outputs}u;
var<workgroup> partial: array<f32, ${size}>;
@compute @workgroup_size(${size})
fn main(@builtin(workgroup_id) workgroupId: vec3<u32>, @builtin(num_workgroups) workgroupCount: vec3<u32>, @builtin(local_invocation_index) localIndex: u32) {
  let first = (workgroupId.y * workgroupCount.x + workgroupId.x) * OUTPUTS;
  // Uniform across the workgroup (it depends on the workgroup id only), so the barriers below are too.
  if (first >= params.outputs) { return; }
  let lane = localIndex % LANES;
  let o = first + localIndex / LANES;
  let computes = o < params.outputs;
  let w = o * params.inputs;
  for (var row = 0u; row < params.rows; row++) {
    let v = row * params.inputs;
    var sum0 = 0.0; var sum1 = 0.0; var sum2 = 0.0; var sum3 = 0.0;
    if (computes) {
      var i = lane;
      for (; i + 3u * LANES < params.inputs; i += 4u * LANES) {
        sum0 += f32(weight[w + i]) * x[v + i];
        sum1 += f32(weight[w + i + LANES]) * x[v + i + LANES];
        sum2 += f32(weight[w + i + 2u * LANES]) * x[v + i + 2u * LANES];
        sum3 += f32(weight[w + i + 3u * LANES]) * x[v + i + 3u * LANES];
      }
      for (; i < params.inputs; i += LANES) { sum0 += f32(weight[w + i]) * x[v + i]; }
    }
    partial[localIndex] = (sum0 + sum1) + (sum2 + sum3);
    workgroupBarrier();
    for (var half = LANES / 2u; half > 0u; half = half / 2u) {
      if (lane < half) { partial[localIndex] += partial[localIndex + half]; }
      workgroupBarrier();
    }
    if (lane == 0u && computes) { store(row, o, partial[localIndex]); }
    workgroupBarrier();
  }
}`;
}

/**
 * The "tiled" kind's kernel for blocks: workgroup (x, y) computes outputs 16x .. 16x + 15 of rows
 * 16y .. 16y + 15, one per invocation, walking the inner dimension 16 at a time through a tile of x
 * and a tile of weights in workgroup memory (zero past the edges, so every invocation reaches
 * every barrier).
 */
export function tiledMatmulShader(precision: WeightPrecision = "float32"): string {
  const { enable, type } = weightDeclarations(precision);
  const side = matmulTileSide;
  return /* wgsl */ `${enable}${matmulParams}
${matmulBindings(type)}
var<workgroup> xTile: array<array<f32, ${side}>, ${side}>;
var<workgroup> weightTile: array<array<f32, ${side + 1}>, ${side}>;
@compute @workgroup_size(${side}, ${side})
fn main(@builtin(workgroup_id) workgroupId: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
  let outputBase = workgroupId.x * ${side}u;
  let rowBase = workgroupId.y * ${side}u;
  let row = rowBase + local.y;
  var sum = 0.0;
  for (var k0 = 0u; k0 < params.inputs; k0 += ${side}u) {
    let k = k0 + local.x;
    var xValue = 0.0;
    if (row < params.rows && k < params.inputs) { xValue = x[row * params.inputs + k]; }
    xTile[local.y][local.x] = xValue;
    let loadedOutput = outputBase + local.y;
    var weightValue = 0.0;
    if (loadedOutput < params.outputs && k < params.inputs) { weightValue = f32(weight[loadedOutput * params.inputs + k]); }
    weightTile[local.y][local.x] = weightValue;
    workgroupBarrier();
    for (var j = 0u; j < ${side}u; j++) { sum += xTile[local.y][j] * weightTile[local.x][j]; }
    workgroupBarrier();
  }
  let o = outputBase + local.x;
  if (row < params.rows && o < params.outputs) { store(row, o, sum); }
}`;
}

/** The gate's activation of a gated feed-forward block: SiLU (SwiGLU) or tanh-approximated GELU (GeGLU). */
export type GateActivation = "silu" | "gelu-tanh";

/**
 * gate = activation(gate) * up: silu(g) = g / (1 + e^-g), or Gemma's
 * gelu_tanh(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))).
 */
export function gatedActivationShader(workgroupSize: number, activation: GateActivation = "silu"): string {
  const activated =
    activation === "gelu-tanh"
      ? `0.5 * g * (1.0 + boundedTanh(${wgslFloat(Math.sqrt(2 / Math.PI))} * (g + 0.044715 * g * g * g)))`
      : "g / (1.0 + exp(-g))";
  return /* wgsl */ `${flatIndex}${activation === "gelu-tanh" ? boundedTanh : ""}
struct Params { count: u32, }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
${entry(workgroupSize)}
  if (index >= params.count) { return; }
  let g = gate[index];
  gate[index] = ${activated} * up[index];
}`;
}

/** values[i] = cap * tanh(values[i] / cap) for the first `count` values: Gemma 2's final logit soft-cap. */
export function softCapShader(workgroupSize: number, cap: number): string {
  const capText = wgslFloat(cap);
  return /* wgsl */ `${flatIndex}${boundedTanh}
struct Params { count: u32, }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> values: array<f32>;
${entry(workgroupSize)}
  if (index >= params.count) { return; }
  values[index] = ${capText} * boundedTanh(values[index] / ${capText});
}`;
}

/**
 * Rotates `rows` consecutive tokens of `heads` head vectors in place, token r to position
 * firstPosition + r (keys entering the cache, which keeps key j rotated at j). Both layouts and
 * partial rotary come from the same table the attention kernel reads. With `groupCopy`, each key
 * is also written rotated at its group position (see {@link GroupKeyCopy}).
 */
export function ropeShader(
  workgroupSize: number,
  headSize: number,
  rotaryDimension: number,
  layout: RopeLayout,
  groupCopy?: GroupKeyCopy,
): string {
  const pairs = rotaryDimension / 2;
  const indices =
    layout === "interleaved"
      ? "let first = base + 2u * pair; let second = first + 1u;"
      : `let first = base + pair; let second = first + ${pairs}u;`;
  // The group-level copy: the same raw key rotated at floor(position / G), written groupCopy.at
  // floats further on; dimensions past the rotary ones are copied as they are.
  const copy =
    groupCopy === undefined
      ? ""
      : `
  let groupAt = (((params.firstPosition + row) / ${groupCopy.groupSize}u) * ${pairs}u + pair) * 2u;
  let groupCos = rope[groupAt];
  let groupSin = rope[groupAt + 1u];
  vectors[${groupCopy.at}u + first] = x * groupCos - y * groupSin;
  vectors[${groupCopy.at}u + second] = x * groupSin + y * groupCos;
  for (var d = ${rotaryDimension}u + pair; d < ${headSize}u; d += ${pairs}u) {
    vectors[${groupCopy.at}u + base + d] = vectors[base + d];
  }`;
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
  vectors[second] = x * s + y * c;${copy}
}`;
}

/**
 * A RoPE kernel's second write, for attention with cached group keys: each key also rotated at its
 * group position floor(j / groupSize), `at` floats after its copy at j (the key cache's capacity x
 * its row width).
 */
export interface GroupKeyCopy {
  readonly groupSize: number;
  readonly at: number;
}
