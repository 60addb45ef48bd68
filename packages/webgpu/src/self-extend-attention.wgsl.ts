/**
 * WGSL source of the fused Self-Extend attention kernel, generated per shape so head size, tile
 * sizes, window and group are compile-time constants (private arrays need constant sizes, and a
 * constant G = 1 lets the compiler drop the group level entirely).
 *
 * One workgroup owns a tile of queries for one kv head (every query head that shares the kv head,
 * so grouped-query attention loads each key once). It walks the keys ONCE, a tile at a time:
 * - the tile's keys and values are staged in workgroup memory; keys are cached rotated at their own
 *   position j, which is already the neighbor-level key;
 * - when some pair in the tile is at the group level, the group-level key R(floor(j/G)) k is derived
 *   from that same copy by rotating it back by j - floor(j/G) (RoPE rotations compose), once per
 *   tile, shared by every query of the workgroup. No second key cache exists;
 * - each invocation (one query head of one query) holds its query rotated to both levels, picks
 *   the level per pair (neighbor iff i - j < W), and folds the tile into an online softmax
 *   (running max, running sum, rescaled accumulator): one merged softmax, as the spec requires.
 *
 * Key splits (flash-decoding): a workgroup walks its keys alone, so a call with few query tiles
 * (decoding: one query) keeps a handful of workgroups busy however long the context, which
 * under-fills a GPU. The fused kernel can therefore split the keys into `splitCount` contiguous
 * ranges (workgroup z), each folded into its own online softmax and written as a normalised
 * partial output plus its log-sum-exp; {@link mergeKeySplitsShader} combines them exactly as the
 * softmax would have (the same merge the two-pass baseline uses for its two levels). With one split
 * the kernel writes the output directly.
 *
 * Modes other than `fused` exist only for the benchmark's two-pass baseline: `neighbor-only` and
 * `group-only` keep one level's pairs and also write each row's log-sum-exp, which a merge kernel
 * combines the way the official flash path does.
 */
import type { RopeLayout } from "@self-extend/core";
import { wgslFloat } from "./forward-pass.wgsl.js";

export type AttentionKernelMode = "fused" | "neighbor-only" | "group-only";

export interface AttentionShaderOptions {
  readonly headCount: number;
  readonly kvHeadCount: number;
  readonly headSize: number;
  readonly rotaryDimension: number;
  readonly layout: RopeLayout;
  readonly groupSize: number;
  readonly neighborWindow: number;
  readonly queryTile: number;
  readonly keyTile: number;
  readonly workgroupSize: number;
  readonly mode: AttentionKernelMode;
  /** Scaled scores become cap * tanh(score / cap) before the softmax (Gemma 2). */
  readonly logitSoftCap?: number;
  /**
   * Query i sees only keys with i - j < slidingWindow (Gemma 2's local layers; plain attention
   * only, since such a layer keeps every key at its exact position).
   */
  readonly slidingWindow?: number;
  /**
   * Where `keys` holds a second copy of every key, rotated at its group position floor(j/G), starting
   * at row `capacity` (written once when the key is appended): group-level keys are read from it
   * instead of being rotated back from the copy at j on every call. Fused mode with G > 1 only.
   */
  readonly groupKeyRows?: { readonly capacity: number };
}

/** `GROUP_KEYS_AT`: where the cached group-level copy starts in `keys`, in the kernel's elements (f32 or vec4). */
function groupKeysAtWgsl(
  options: Pick<AttentionShaderOptions, "groupKeyRows" | "kvHeadCount" | "headSize">,
  elementFloats: number,
): string {
  const capacity = options.groupKeyRows?.capacity ?? 0;
  return `// Key j rotated at its group position floor(j/G) is row capacity + j of keys.
const GROUP_KEYS_AT: u32 = ${(capacity * options.kvHeadCount * options.headSize) / elementFloats}u;`;
}

/**
 * Mesa's llvmpipe (behind the OpenGL ES CPU path) stops any shader invocation after 65535 loop
 * iterations in total, silently (gallivm's loop limiter). Loops over the head dimension are
 * therefore unrolled here into vec4 code (also faster: the head stays in registers), and what
 * remains are loops over keys: about 3 iterations per key per invocation. {@link
 * loopIterationsPerKey} lets the kernel refuse calls that would cross the limit on such drivers.
 */
export const loopIterationsPerKey = 3;

function unrolled(count: number, line: (index: number) => string, separator = "\n"): string {
  return Array.from({ length: count }, (_, index) => line(index)).join(separator);
}

/**
 * The uniform of one attention call, shared by the attention kernel and the key-split merge (which
 * reads the same buffer): 24 bytes of fields in a 32-byte buffer (see the kernel's
 * createCallParameters).
 */
const callParametersStruct = /* wgsl */ `struct Params {
  queryStart: u32,
  queryCount: u32,
  keyCount: u32,
  scale: f32,
  // Keys per split (a multiple of KEY_TILE) and the number of splits (workgroups along z).
  keysPerSplit: u32,
  splitCount: u32,
}`;

/**
 * The kernel's position arithmetic as WGSL: every position the attention kernel rotates a query or
 * a key at, and the level it picks per pair, comes from these functions. The position probe
 * (self-extend-positions.ts) runs the same text on the device and reads the relative positions
 * back, so what the conformance suite checks is what the kernel computes.
 *
 * With G = 1 both levels coincide; a window past every distance makes every pair a neighbor.
 */
export function attentionPositionsWgsl(groupSize: number, neighborWindow: number): string {
  const windowConstant = groupSize === 1 ? "0xffffffffu" : `${neighborWindow}u`;
  return /* wgsl */ `const GROUP: u32 = ${groupSize}u;
const WINDOW: u32 = ${windowConstant};
const GROUP_OFFSET: u32 = ${neighborWindow - Math.floor(neighborWindow / groupSize)}u;

// Neighbor level: query i at i (key j is cached rotated at j by the forward pass's RoPE kernel).
fn neighborQueryPosition(queryIndex: u32) -> u32 { return queryIndex; }
// Group level: query i at floor(i/G) + W - W/G.
fn groupQueryPosition(queryIndex: u32) -> u32 { return queryIndex / GROUP + GROUP_OFFSET; }
// How far key j's cached copy (at j) is rotated back to reach its group position floor(j/G),
// j - floor(j/G), in two parts that add up to it: (G - 1) floor(j/G), the same for the G keys of a
// group, and j mod G, one of G values. The key-parallel kernel rotates by each part, so the G
// invocations of a group read one RoPE table row together and the other rows come from G rows.
fn groupKeyBackRotationParts(keyIndex: u32) -> vec2<u32> {
  let group = keyIndex / GROUP;
  return vec2<u32>(group * (GROUP - 1u), keyIndex - group * GROUP);
}
fn groupKeyBackRotation(keyIndex: u32) -> u32 {
  let parts = groupKeyBackRotationParts(keyIndex);
  return parts.x + parts.y;
}
// The pair (i, j), j <= i, is at the neighbor level iff i - j < W.
fn isNeighborPair(distance: u32) -> bool { return distance < WINDOW; }`;
}

/** WGSL that finds dimension d's rotation pair and partner (`pair`, `first`, `partner`) for a layout. */
function partnerWgsl(layout: RopeLayout): string {
  return layout === "interleaved"
    ? "let pair = d / 2u; let first = (d % 2u) == 0u; let partner = select(d - 1u, d + 1u, first);"
    : "let pair = d % PAIRS; let first = d < PAIRS; let partner = select(d - PAIRS, d + PAIRS, first);";
}

/**
 * Value d of the query head at queries[base..] rotated by R(position). Dimensions past the rotary
 * ones pass through; padding past HEAD_SIZE reads as 0. The pair's first value becomes x cos - y sin
 * under R(+p), the second x cos + y sin (y = the partner).
 */
/** `ropeAt`: WGSL reading the RoPE table's float at a u32 index (a kernel may bind the table as vec4s). */
function rotatedQueryWgsl(layout: RopeLayout, ropeAt = (index: string) => `rope[${index}]`): string {
  return /* wgsl */ `fn rotatedQuery(base: u32, d: u32, position: u32) -> f32 {
  if (d >= HEAD_SIZE) { return 0.0; }
  let x = queries[base + d];
  if (d >= ROTARY) { return x; }
  ${partnerWgsl(layout)}
  let index = (position * PAIRS + pair) * 2u;
  return x * ${ropeAt("index")} + select(1.0, -1.0, first) * queries[base + partner] * ${ropeAt("index + 1u")};
}`;
}

/**
 * What both attention kernels declare alike: the shape, the positions, the workgroup size, and the
 * score's soft-cap and sliding window.
 */
function sharedDeclarations(options: KeyParallelShaderOptions): string {
  const { headCount, kvHeadCount, headSize, rotaryDimension, groupSize, neighborWindow } = options;
  const { workgroupSize, logitSoftCap, slidingWindow } = options;
  const capScore =
    logitSoftCap === undefined
      ? "fn capScore(score: f32) -> f32 { return score; }"
      : `// tanh's argument is clamped to +-15, where f32 tanh is exactly +-1: drivers may build tanh
// from exp, which overflows to inf / inf = NaN for large arguments.
fn capScore(score: f32) -> f32 { return ${wgslFloat(logitSoftCap)} * tanh(clamp(score / ${wgslFloat(logitSoftCap)}, -15.0, 15.0)); }`;
  return /* wgsl */ `const HEADS: u32 = ${headCount}u;
const KV_HEADS: u32 = ${kvHeadCount}u;
const HEAD_SIZE: u32 = ${headSize}u;
// Heads are handled as vec4s; a head size that is not a multiple of 4 is zero-padded.
const VECTORS: u32 = ${Math.ceil(headSize / 4)}u;
const HEADS_PER_KV: u32 = ${headCount / kvHeadCount}u;
const PAIRS: u32 = ${rotaryDimension / 2}u;
const ROTARY: u32 = ${rotaryDimension}u;
${attentionPositionsWgsl(groupSize, neighborWindow)}
const WORKGROUP: u32 = ${workgroupSize}u;
const LOWEST: f32 = -3.0e38;
${slidingWindow === undefined ? "" : `const SLIDING_WINDOW: u32 = ${slidingWindow}u;`}
${capScore}`;
}

export function selfExtendAttentionShader(options: AttentionShaderOptions): string {
  const { headSize, rotaryDimension, layout, groupSize } = options;
  const { queryTile, keyTile, workgroupSize, mode, slidingWindow } = options;
  const vectors = Math.ceil(headSize / 4);
  const plain = groupSize === 1;
  const usesGroupLevel = !plain && mode !== "neighbor-only";
  const cached = usesGroupLevel && options.groupKeyRows !== undefined;
  if (cached && mode !== "fused") throw new RangeError(`cached group keys need the fused mode; got ${mode}`);
  const writesLogSumExp = mode !== "fused";
  const levelCondition =
    mode === "neighbor-only" ? "distance < WINDOW" : mode === "group-only" ? "distance >= WINDOW" : "true";
  const keepPair =
    slidingWindow === undefined ? levelCondition : `${levelCondition} && distance < SLIDING_WINDOW`;
  // Fused with a sliding window: the walk starts at the tile of the first query's oldest visible key.
  const fusedKeyBegin =
    slidingWindow === undefined
      ? "let keyBegin = splitBegin;"
      : `let windowBegin = (select(0u, firstQuery + 1u - SLIDING_WINDOW, firstQuery + 1u >= SLIDING_WINDOW) / KEY_TILE) * KEY_TILE;
  let keyBegin = max(splitBegin, windowBegin);`;
  // Whole-vec4 back-rotation needs pairs inside a vec4 and a rotary width that ends on one.
  const vectorRotation = layout === "interleaved" && rotaryDimension % 4 === 0 && headSize % 4 === 0;
  const partnerCode = partnerWgsl(layout);
  return /* wgsl */ `
${sharedDeclarations(options)}
const QUERY_TILE: u32 = ${queryTile}u;
const KEY_TILE: u32 = ${keyTile}u;

${callParametersStruct}

@group(0) @binding(0) var<uniform> params: Params;
// [queryCount, HEADS, HEAD_SIZE], not rotated.
@group(0) @binding(1) var<storage, read> queries: array<f32>;
// [capacity, KV_HEADS, HEAD_SIZE], key j rotated at position j (then, with cached group keys,
// [capacity, KV_HEADS, HEAD_SIZE] rotated at floor(j/G)).
@group(0) @binding(2) var<storage, read> keys: array<f32>;
@group(0) @binding(3) var<storage, read> values: array<f32>;
// [position, PAIRS, 2]: cos, sin of position * frequency, computed in float64 on the host.
@group(0) @binding(4) var<storage, read> rope: array<f32>;
// [queryCount, HEADS, HEAD_SIZE]
@group(0) @binding(5) var<storage, read_write> attentionOutput: array<f32>;
${
  writesLogSumExp
    ? "// [queryCount, HEADS]: log-sum-exp of the kept scores (LOWEST when none were kept).\n@group(0) @binding(6) var<storage, read_write> logSumExp: array<f32>;"
    : `// With several key splits: [splitCount, queryCount, HEADS, HEAD_SIZE] normalised partial outputs
// and [splitCount, queryCount, HEADS] their log-sum-exp (LOWEST for a split with no visible key).
@group(0) @binding(6) var<storage, read_write> splitOutput: array<f32>;
@group(0) @binding(7) var<storage, read_write> splitLogSumExp: array<f32>;`
}
${cached ? groupKeysAtWgsl(options, 1) : ""}

var<workgroup> keyTile: array<vec4<f32>, ${keyTile * vectors}>;
var<workgroup> groupKeyTile: array<vec4<f32>, ${usesGroupLevel ? keyTile * vectors : 1}>;
var<workgroup> valueTile: array<vec4<f32>, ${keyTile * vectors}>;

${rotatedQueryWgsl(layout)}

fn rotatedBackKey(base: u32, d: u32, position: u32) -> f32 {
  if (d >= HEAD_SIZE) { return 0.0; }
  let x = keys[base + d];
  if (d >= ROTARY) { return x; }
  ${partnerCode}
  let index = (position * PAIRS + pair) * 2u;
  return x * rope[index] + select(-1.0, 1.0, first) * keys[base + partner] * rope[index + 1u];
}

${
  vectorRotation
    ? `// Interleaved pairs never straddle a vec4, so the whole vec4 (two pairs) rotates at once from
// two table entries: the common Llama case, and the one the benchmark measures.
fn rotateBackInterleaved(key: vec4<f32>, d: u32, position: u32) -> vec4<f32> {
  if (d >= ROTARY) { return key; }
  let at = (position * PAIRS + d / 2u) * 2u;
  let c = vec4<f32>(rope[at], rope[at], rope[at + 2u], rope[at + 2u]);
  let s = vec4<f32>(rope[at + 1u], -rope[at + 1u], rope[at + 3u], -rope[at + 3u]);
  return key * c + key.yxwz * s;
}
`
    : ""
}
fn plainValue(source: u32, base: u32, d: u32) -> f32 {
  if (d >= HEAD_SIZE) { return 0.0; }
  return select(values[base + d], keys[base + d], source == 0u);
}
${
  cached
    ? `fn cachedGroupKey(base: u32, d: u32) -> f32 {
  if (d >= HEAD_SIZE) { return 0.0; }
  return keys[GROUP_KEYS_AT + base + d];
}
`
    : ""
}
@compute @workgroup_size(${workgroupSize})
fn main(@builtin(local_invocation_index) localIndex: u32, @builtin(workgroup_id) workgroupId: vec3<u32>) {
  let kvHead = workgroupId.y;
  let tileFirst = workgroupId.x * QUERY_TILE;
  let tileEnd = min(tileFirst + QUERY_TILE, params.queryCount);
  let q = tileFirst + localIndex / HEADS_PER_KV;
  let ownsQuery = localIndex < QUERY_TILE * HEADS_PER_KV && q < params.queryCount;
  let head = kvHead * HEADS_PER_KV + localIndex % HEADS_PER_KV;
  let queryIndex = params.queryStart + q;

  // The query at both levels, in registers for the whole walk over the keys.
  var neighborQuery: array<vec4<f32>, VECTORS>;
  var groupQuery: array<vec4<f32>, VECTORS>;
  var accumulator: array<vec4<f32>, VECTORS>;
  if (ownsQuery) {
    let base = (q * HEADS + head) * HEAD_SIZE;
    let groupPosition = groupQueryPosition(queryIndex);
    // Rotate through a scratch array in a loop (inlining the rotation per dimension made shaders
    // that took CPU drivers tens of seconds to compile), then pack into vec4 registers with
    // constant indices (a dynamic index would move the query arrays to memory).
    var scratch: array<f32, ${vectors * 4}>;
    for (var d = 0u; d < ${vectors * 4}u; d++) { scratch[d] = rotatedQuery(base, d, neighborQueryPosition(queryIndex)); }
${unrolled(vectors, (c) => `    neighborQuery[${c}] = vec4<f32>(scratch[${4 * c}], scratch[${4 * c + 1}], scratch[${4 * c + 2}], scratch[${4 * c + 3}]);`)}
${
  usesGroupLevel
    ? `    for (var d = 0u; d < ${vectors * 4}u; d++) { scratch[d] = rotatedQuery(base, d, groupPosition); }
` +
      unrolled(
        vectors,
        (c) =>
          `    groupQuery[${c}] = vec4<f32>(scratch[${4 * c}], scratch[${4 * c + 1}], scratch[${4 * c + 2}], scratch[${4 * c + 3}]);`,
      )
    : ""
}
  }

  // Keys after the tile's last query are masked for every query of the tile: stop there.
  let lastQuery = params.queryStart + tileEnd - 1u;
  let firstQuery = params.queryStart + tileFirst;
  ${
    mode === "group-only"
      ? `// Two-pass baseline, group pass: only keys at least W behind some query of the tile.
  let keyEnd = min(select(0u, lastQuery + 1u - WINDOW, lastQuery + 1u >= WINDOW), params.keyCount);`
      : mode === "fused"
        ? `// This workgroup's key split: keys [split * keysPerSplit, (split + 1) * keysPerSplit).
  let split = workgroupId.z;
  let splitBegin = split * params.keysPerSplit;
  let keyEnd = min(min(lastQuery + 1u, params.keyCount), splitBegin + params.keysPerSplit);`
        : "let keyEnd = min(lastQuery + 1u, params.keyCount);"
  }
  ${
    mode === "neighbor-only"
      ? `// Two-pass baseline, neighbor pass: a sliding window, starting at the tile holding key i - W + 1.
  let keyBegin = (select(0u, firstQuery + 1u - WINDOW, firstQuery + 1u >= WINDOW) / KEY_TILE) * KEY_TILE;`
      : mode === "fused"
        ? fusedKeyBegin
        : "let keyBegin = 0u;"
  }
  var runningMax = LOWEST;
  var runningSum = 0.0;
  var scores: array<f32, KEY_TILE>;

  for (var tileStart = keyBegin; tileStart < keyEnd; tileStart += KEY_TILE) {
    // Uniform per workgroup: does any pair (i, j) of this tile sit at the group level (i - j >= W)?
    let groupLevelInTile = ${usesGroupLevel ? "lastQuery >= tileStart + WINDOW" : "false"};
${
  cached
    ? `    // And at the neighbor level (i - j < W for the tile's first query and last key)? With cached
    // group keys a tile without such a pair needs no key at j.
    let neighborLevelInTile = firstQuery < min(tileStart + KEY_TILE, keyEnd) - 1u + WINDOW;
`
    : ""
}    workgroupBarrier();
    for (var e = localIndex; e < KEY_TILE * VECTORS; e += WORKGROUP) {
      let j = tileStart + e / VECTORS;
      var key = vec4<f32>(0.0);
      var value = vec4<f32>(0.0);
      var groupKey = vec4<f32>(0.0);
      if (j < keyEnd) {
        let base = (j * KV_HEADS + kvHead) * HEAD_SIZE;
        let d = 4u * (e % VECTORS);
        ${cached ? "if (neighborLevelInTile) { key = " : "key = "}vec4<f32>(plainValue(0u, base, d), plainValue(0u, base, d + 1u), plainValue(0u, base, d + 2u), plainValue(0u, base, d + 3u));${cached ? " }" : ""}
        value = vec4<f32>(plainValue(1u, base, d), plainValue(1u, base, d + 1u), plainValue(1u, base, d + 2u), plainValue(1u, base, d + 3u));
        ${
          cached
            ? `if (groupLevelInTile) {
          groupKey = vec4<f32>(cachedGroupKey(base, d), cachedGroupKey(base, d + 1u), cachedGroupKey(base, d + 2u), cachedGroupKey(base, d + 3u));
        }`
            : usesGroupLevel
              ? `if (groupLevelInTile) {
          // R(floor(j/G)) k = R(-(j - floor(j/G))) R(j) k: rotate the one cached copy back.
          let back = groupKeyBackRotation(j);
          groupKey = ${vectorRotation ? "rotateBackInterleaved(key, d, back)" : "vec4<f32>(rotatedBackKey(base, d, back), rotatedBackKey(base, d + 1u, back), rotatedBackKey(base, d + 2u, back), rotatedBackKey(base, d + 3u, back))"};
        }`
              : ""
        }
      }
      keyTile[e] = key;
      valueTile[e] = value;
      ${usesGroupLevel ? "groupKeyTile[e] = groupKey;" : ""}
    }
    workgroupBarrier();
    // No early "continue" for idle invocations: the barriers above must stay in uniform control flow.
    // Runtime trip counts on purpose: a constant one lets CPU drivers fully unroll these loops
    // around the unrolled head code, and compiling that took minutes on llvmpipe.
    let tileKeys = min(KEY_TILE, keyEnd - tileStart);
    if (ownsQuery) {
      var tileMax = LOWEST;
      for (var k = 0u; k < tileKeys; k++) {
        let j = tileStart + k;
        var score = LOWEST;
        if (j <= queryIndex) {
          let distance = queryIndex - j;
          if (${keepPair}) {
            let at = k * VECTORS;
            if (isNeighborPair(distance)) {
              score = capScore((${unrolled(vectors, (c) => `dot(neighborQuery[${c}], keyTile[at + ${c}u])`, " + ")}) * params.scale);
            } else {
              score = capScore((${usesGroupLevel ? unrolled(vectors, (c) => `dot(groupQuery[${c}], groupKeyTile[at + ${c}u])`, " + ") : "0.0"}) * params.scale);
            }
          }
        }
        scores[k] = score;
        tileMax = max(tileMax, score);
      }
      if (tileMax > LOWEST) {
        // Online softmax: rescale what was summed under the old maximum, then add this tile.
        let newMax = max(runningMax, tileMax);
        let correction = exp(runningMax - newMax);
        runningSum *= correction;
${unrolled(vectors, (c) => `        accumulator[${c}] *= correction;`)}
        for (var k = 0u; k < tileKeys; k++) {
          if (scores[k] > LOWEST) {
            let weight = exp(scores[k] - newMax);
            runningSum += weight;
            let at = k * VECTORS;
${unrolled(vectors, (c) => `            accumulator[${c}] += weight * valueTile[at + ${c}u];`)}
          }
        }
        runningMax = newMax;
      }
    }
  }

  if (ownsQuery) {
    let inverse = select(0.0, 1.0 / runningSum, runningSum > 0.0);
${
  writesLogSumExp
    ? `    let base = (q * HEADS + head) * HEAD_SIZE;
${unrolled(headSize, (d) => `    attentionOutput[base + ${d}u] = accumulator[${d >> 2}][${d & 3}] * inverse;`)}
    logSumExp[q * HEADS + head] = select(LOWEST, runningMax + log(runningSum), runningSum > 0.0);`
    : `    if (params.splitCount == 1u) {
      let base = (q * HEADS + head) * HEAD_SIZE;
${unrolled(headSize, (d) => `      attentionOutput[base + ${d}u] = accumulator[${d >> 2}][${d & 3}] * inverse;`)}
    } else {
      let row = (split * params.queryCount + q) * HEADS + head;
      let base = row * HEAD_SIZE;
${unrolled(headSize, (d) => `      splitOutput[base + ${d}u] = accumulator[${d >> 2}][${d & 3}] * inverse;`)}
      splitLogSumExp[row] = select(LOWEST, runningMax + log(runningSum), runningSum > 0.0);
    }`
}
  }
}
`;
}

/** Merges two partial attentions through their log-sum-exp (the official flash path's merge). */
export function mergeLogSumExpShader(headSize: number, workgroupSize: number): string {
  return /* wgsl */ `
const HEAD_SIZE: u32 = ${headSize}u;
struct Params { rows: u32, }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> neighborOutput: array<f32>;
@group(0) @binding(2) var<storage, read> neighborLse: array<f32>;
@group(0) @binding(3) var<storage, read> groupOutput: array<f32>;
@group(0) @binding(4) var<storage, read> groupLse: array<f32>;
@group(0) @binding(5) var<storage, read_write> merged: array<f32>;

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let row = id.x;
  if (row >= params.rows) { return; }
  let a = neighborLse[row];
  let b = groupLse[row];
  let top = max(a, b);
  let wa = exp(a - top);
  let wb = exp(b - top);
  let total = wa + wb;
  for (var d = 0u; d < HEAD_SIZE; d++) {
    let i = row * HEAD_SIZE + d;
    merged[i] = (wa * neighborOutput[i] + wb * groupOutput[i]) / total;
  }
}
`;
}

/**
 * Combines the fused kernel's key splits: O = sum_s e^(lse_s - top) O_s / sum_s e^(lse_s - top).
 * Reads the attention kernel's own uniform (same Params layout).
 */
export function mergeKeySplitsShader(headCount: number, headSize: number, workgroupSize: number): string {
  return /* wgsl */ `
const HEADS: u32 = ${headCount}u;
const HEAD_SIZE: u32 = ${headSize}u;
const LOWEST: f32 = -3.0e38;
${callParametersStruct}
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> splitOutput: array<f32>;
@group(0) @binding(2) var<storage, read> splitLogSumExp: array<f32>;
@group(0) @binding(3) var<storage, read_write> attentionOutput: array<f32>;

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  // One invocation per output value (row, d): a decode's few rows still spread over many threads.
  let rows = params.queryCount * HEADS;
  let row = id.x / HEAD_SIZE;
  let d = id.x % HEAD_SIZE;
  if (row >= rows) { return; }
  var top = LOWEST;
  for (var s = 0u; s < params.splitCount; s++) { top = max(top, splitLogSumExp[s * rows + row]); }
  var total = 0.0;
  var sum = 0.0;
  for (var s = 0u; s < params.splitCount; s++) {
    let lse = splitLogSumExp[s * rows + row];
    if (lse > LOWEST) {
      let weight = exp(lse - top);
      total += weight;
      sum += weight * splitOutput[(s * rows + row) * HEAD_SIZE + d];
    }
  }
  attentionOutput[row * HEAD_SIZE + d] = select(0.0, sum / total, total > 0.0);
}
`;
}

/**
 * The bindings of both single-query kernels (key-parallel and subgroup): the same buffers in the
 * same slots, so one bind group serves either, and the same outputs as the query-tiled kernel.
 */
const singleQueryBindings = /* wgsl */ `${callParametersStruct}

@group(0) @binding(0) var<uniform> params: Params;
// [1, HEADS, HEAD_SIZE], not rotated.
@group(0) @binding(1) var<storage, read> queries: array<f32>;
// [capacity, KV_HEADS, VECTORS] as vec4s, key j rotated at position j (then, with cached group keys,
// the same rows rotated at floor(j/G)).
@group(0) @binding(2) var<storage, read> keys: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> values: array<vec4<f32>>;
// [position, PAIRS, 2]: cos, sin of position * frequency, computed in float64 on the host; read as
// vec4s (ROTARY % 4 == 0, so every row starts on a vec4).
@group(0) @binding(4) var<storage, read> ropeVectors: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> attentionOutput: array<f32>;
@group(0) @binding(6) var<storage, read_write> splitOutput: array<f32>;
@group(0) @binding(7) var<storage, read_write> splitLogSumExp: array<f32>;`;

/**
 * The single-query kernels' query rotation: {@link rotatedQueryWgsl} over the RoPE table bound as
 * vec4s, and `rotatedQueryVector`, the head's vec4 v rotated by R(position).
 */
function singleQueryRotationWgsl(layout: RopeLayout): string {
  return /* wgsl */ `${rotatedQueryWgsl(layout, (index) => `ropeVectors[(${index}) / 4u][(${index}) % 4u]`)}

fn rotatedQueryVector(base: u32, v: u32, position: u32) -> vec4<f32> {
  let d = 4u * v;
  return vec4<f32>(rotatedQuery(base, d, position), rotatedQuery(base, d + 1u, position), rotatedQuery(base, d + 2u, position), rotatedQuery(base, d + 3u, position));
}`;
}

/** WGSL of a single-query workgroup's keys: its split's, none after the query, none outside a sliding window. */
function singleQueryKeyRange(slidingWindow: number | undefined): string {
  return /* wgsl */ `  // This workgroup's key split: keys [split * keysPerSplit, (split + 1) * keysPerSplit), none after the query.
  let split = workgroupId.z;
  let splitBegin = split * params.keysPerSplit;
  let keyEnd = min(min(queryIndex + 1u, params.keyCount), splitBegin + params.keysPerSplit);
  ${
    slidingWindow === undefined
      ? "let keyBegin = splitBegin;"
      : "let keyBegin = max(splitBegin, select(0u, queryIndex + 1u - SLIDING_WINDOW, queryIndex + 1u >= SLIDING_WINDOW));"
  }`;
}

/**
 * WGSL merging `count` partial online softmaxes of head `h` of the workgroup's kv head through their
 * log-sum-exp, O = sum_p e^(m_p - top) a_p / sum_p e^(m_p - top) l_p, for the head's vec4 `vector`:
 * maxima and sums in `{prefix}Max` and `{prefix}Sum` ([count, HEADS_PER_KV]), accumulators in
 * `{prefix}Accumulator` ([count, HEADS_PER_KV, VECTORS]). Written as the query-tiled kernel writes a
 * row: the output, or a split's normalised output plus its log-sum-exp. Shared by the key-parallel
 * (slices) and subgroup (row groups) kernels.
 */
function mergePartialSoftmaxesWgsl(prefix: string, count: string, vector: string): string {
  return /* wgsl */ `    var top = LOWEST;
    for (var p = 0u; p < ${count}; p++) { top = max(top, ${prefix}Max[p * HEADS_PER_KV + h]); }
    var total = 0.0;
    var sum = vec4<f32>(0.0);
    for (var p = 0u; p < ${count}; p++) {
      let partTop = ${prefix}Max[p * HEADS_PER_KV + h];
      if (partTop > LOWEST) {
        let weight = exp(partTop - top);
        total += weight * ${prefix}Sum[p * HEADS_PER_KV + h];
        sum += weight * ${prefix}Accumulator[(p * HEADS_PER_KV + h) * VECTORS + ${vector}];
      }
    }
    let result = select(vec4<f32>(0.0), sum / total, total > 0.0);
    let head = kvHead * HEADS_PER_KV + h;
    var base = head * HEAD_SIZE + 4u * ${vector};
    if (params.splitCount == 1u) {
      attentionOutput[base] = result.x; attentionOutput[base + 1u] = result.y;
      attentionOutput[base + 2u] = result.z; attentionOutput[base + 3u] = result.w;
    } else {
      let outputRow = (split * params.queryCount) * HEADS + head;
      base = outputRow * HEAD_SIZE + 4u * ${vector};
      splitOutput[base] = result.x; splitOutput[base + 1u] = result.y;
      splitOutput[base + 2u] = result.z; splitOutput[base + 3u] = result.w;
      if (${vector} == 0u) { splitLogSumExp[outputRow] = select(LOWEST, top + log(total), total > 0.0); }
    }`;
}

/** What the key-parallel single-query kernel needs beyond the fused kernel's shape and scoring. */
export type KeyParallelShaderOptions = Omit<AttentionShaderOptions, "queryTile" | "keyTile" | "mode">;

/** Slices of a key-parallel workgroup: groups of VECTORS invocations that each fold every SLICES-th key. */
export function keyParallelSlices(headSize: number, workgroupSize: number): number {
  return Math.floor(workgroupSize / (headSize / 4));
}

/** Workgroup memory of the key-parallel kernel in bytes (queries at both levels, one tile of scores, the slices' partial results). */
export function keyParallelWorkgroupBytes(
  options: Pick<
    KeyParallelShaderOptions,
    "headCount" | "kvHeadCount" | "headSize" | "groupSize" | "workgroupSize"
  >,
): number {
  const headsPerKv = options.headCount / options.kvHeadCount;
  const vectors = options.headSize / 4;
  const slices = keyParallelSlices(options.headSize, options.workgroupSize);
  const queryVectors = headsPerKv * vectors * (options.groupSize === 1 ? 1 : 2);
  return (
    16 * queryVectors + 4 * headsPerKv * options.workgroupSize + slices * headsPerKv * (16 * vectors + 8)
  );
}

/**
 * The fused kernel for a call of ONE query (a decode step), parallel over keys instead of queries.
 *
 * The query-tiled kernel above gives each invocation one (query, head) pair, so a decode keeps only
 * heads-per-kv invocations of a workgroup busy (4 of 64 for Llama 3), each walking every key of its
 * split alone through a dot product of HEAD_SIZE and an accumulation of HEAD_SIZE: on a GPU that is a
 * few percent of the memory's bandwidth. Here a workgroup (one kv head, one key split) walks its keys
 * in tiles of WORKGROUP keys:
 * - scores: invocation t scores key tileStart + t for every query head sharing the kv head (reading
 *   the key once as vec4s, and deriving its group-level copy R(-(j - floor(j/G))) R(j) k once), with
 *   the rotated queries staged in workgroup memory;
 * - values: invocations form SLICES groups of VECTORS lanes; lane c of slice s folds value vec4 c of
 *   keys s, s + SLICES, ... into its own online softmax per head, so each value row is read once, by
 *   VECTORS neighbouring invocations (coalesced);
 * - the slices' softmaxes are merged through their log-sum-exp at the end, and the result is written
 *   like the query-tiled kernel's (the output, or a normalised split output plus its log-sum-exp),
 *   so the same key-split plan and merge serve both.
 * Same positions, same level per pair, same float32 softmax as the query-tiled kernel: only the
 * order of the additions differs. Needs HEAD_SIZE % 4 == 0 and VECTORS <= WORKGROUP.
 */
export function keyParallelAttentionShader(options: KeyParallelShaderOptions): string {
  const { headCount, kvHeadCount, headSize, rotaryDimension, layout, groupSize } = options;
  const { workgroupSize, slidingWindow } = options;
  if (headSize % 4 !== 0 || headSize / 4 > workgroupSize) {
    throw new RangeError(
      `the key-parallel kernel needs a head size that is a multiple of 4 and at most 4 x ${workgroupSize}; got ${headSize}`,
    );
  }
  if (rotaryDimension % 4 !== 0) {
    throw new RangeError(
      `the key-parallel kernel needs a rotary dimension that is a multiple of 4 (it reads RoPE rows as vec4s); got ${rotaryDimension}`,
    );
  }
  const headsPerKv = headCount / kvHeadCount;
  const pairs = rotaryDimension / 2;
  const vectors = headSize / 4;
  const slices = keyParallelSlices(headSize, workgroupSize);
  const usesGroupLevel = groupSize !== 1;
  const cached = usesGroupLevel && options.groupKeyRows !== undefined;
  const heads = Array.from({ length: headsPerKv }, (_, h) => h);
  const keepPair = slidingWindow === undefined ? "true" : "distance < SLIDING_WINDOW";
  // Dimension d of the group-level key: the cached key rotated back by R(-back), written out per
  // dimension (pair and partner are constants here, for either layout and any rotary width).
  // `row` is the table row's first vec4: a row of (cos, sin) pairs holds pairs 2n and 2n + 1 in its
  // vec4 n, so a rotation reads ROTARY / 4 vec4s instead of ROTARY floats (the loads, not the
  // arithmetic, were what set the group level's cost).
  const groupKeyComponent = (d: number, source: string, row: string): string => {
    const x = `${source}[${d >> 2}][${d & 3}]`;
    if (d >= rotaryDimension) return x;
    const pair = layout === "interleaved" ? d >> 1 : d % pairs;
    const first = layout === "interleaved" ? d % 2 === 0 : d < pairs;
    const partner = layout === "interleaved" ? (first ? d + 1 : d - 1) : first ? d + pairs : d - pairs;
    const sign = first ? "+" : "-";
    const vector = `ropeVectors[${row} + ${pair >> 1}u]`;
    const cos = `${vector}[${(pair & 1) * 2}]`;
    const sin = `${vector}[${(pair & 1) * 2 + 1}]`;
    return `${x} * ${cos} ${sign} ${source}[${partner >> 2}][${partner & 3}] * ${sin}`;
  };
  // Key `key` of the tile (value row `value`) folded into every head's online softmax; a masked
  // score adds nothing (select, not exp: a head whose maximum is still LOWEST would get e^0).
  const foldValue = (value: string, key: string) =>
    heads
      .map(
        (h) => `        {
          let score = scoreTile[${h}u * KEY_TILE + ${key}];
          let weight = select(0.0, exp(score - runningMax[${h}]), score > LOWEST);
          runningSum[${h}] += weight;
          accumulator[${h}] += weight * ${value};
        }`,
      )
      .join("\n");
  const dots = (queriesName: string, keyName: string, h: number) =>
    unrolled(vectors, (c) => `dot(${queriesName}[${h * vectors + c}u], ${keyName}[${c}])`, " + ");
  const loadKey = (from: string, at: string) =>
    unrolled(vectors, (c) => `        key[${c}] = ${from}[${at} + ${c}u];`);
  const levelDots = heads
    .map(
      (h) =>
        `        score[${h}] = capScore((${unrolled(vectors, (c) => `dot(levelQueries[level + ${h * vectors + c}u], key[${c}])`, " + ")}) * params.scale);`,
    )
    .join("\n");
  const rotateBack = `          let parts = groupKeyBackRotationParts(j);
          let withinGroupAt = parts.y * PAIRS / 2u;
          let groupAt = parts.x * PAIRS / 2u;
          var partlyBack: array<vec4<f32>, VECTORS>;
${unrolled(vectors, (c) => `          partlyBack[${c}] = vec4<f32>(${[0, 1, 2, 3].map((i) => groupKeyComponent(4 * c + i, "key", "withinGroupAt")).join(", ")});`)}
          var groupKey: array<vec4<f32>, VECTORS>;
${unrolled(vectors, (c) => `          groupKey[${c}] = vec4<f32>(${[0, 1, 2, 3].map((i) => groupKeyComponent(4 * c + i, "partlyBack", "groupAt")).join(", ")});`)}`;
  const neighborScores = heads
    .map((h) => `          score[${h}] = capScore((${dots("neighborQueries", "key", h)}) * params.scale);`)
    .join("\n");
  const scoring = !usesGroupLevel
    ? `${loadKey("keys", "base")}
        if (isNeighborPair(distance)) {
${neighborScores}
        }`
    : cached
      ? `        // One row read per pair, from the copy at the pair's level, and one dot product against the
        // queries at that level: branches would run both sides on CPU implementations.
        let neighbor = isNeighborPair(distance);
        let level = select(HEADS_PER_KV * VECTORS, 0u, neighbor);
${loadKey("keys", "select(GROUP_KEYS_AT + base, base, neighbor)")}
${levelDots}`
      : `${loadKey("keys", "base")}
        if (isNeighborPair(distance)) {
${neighborScores}
        } else {
          // R(floor(j/G)) k = R(-(j - floor(j/G))) R(j) k: rotate the one cached copy back, by j mod G
          // and then by (G - 1) floor(j/G) (table rows shared by neighbouring invocations).
${rotateBack}
${heads.map((h) => `          score[${h}] = capScore((${dots("groupQueries", "groupKey", h)}) * params.scale);`).join("\n")}
        }`;
  return /* wgsl */ `
${sharedDeclarations(options)}
const KEY_TILE: u32 = ${workgroupSize}u;
const SLICES: u32 = ${slices}u;

${singleQueryBindings}
${cached ? groupKeysAtWgsl(options, 4) : ""}

var<workgroup> neighborQueries: array<vec4<f32>, ${headsPerKv * vectors}>;
var<workgroup> groupQueries: array<vec4<f32>, ${usesGroupLevel ? headsPerKv * vectors : 1}>;
${
  cached
    ? `// [level (neighbor, group), HEADS_PER_KV, VECTORS]: the two arrays above side by side.
var<workgroup> levelQueries: array<vec4<f32>, ${2 * headsPerKv * vectors}>;`
    : ""
}
// [HEADS_PER_KV, KEY_TILE]: this tile's scaled scores (LOWEST where masked).
var<workgroup> scoreTile: array<f32, ${headsPerKv * workgroupSize}>;
// [SLICES, HEADS_PER_KV] running maxima and sums, [SLICES, HEADS_PER_KV, VECTORS] accumulators.
var<workgroup> sliceMax: array<f32, ${slices * headsPerKv}>;
var<workgroup> sliceSum: array<f32, ${slices * headsPerKv}>;
var<workgroup> sliceAccumulator: array<vec4<f32>, ${slices * headsPerKv * vectors}>;

${singleQueryRotationWgsl(layout)}

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(local_invocation_index) localIndex: u32, @builtin(workgroup_id) workgroupId: vec3<u32>) {
  let kvHead = workgroupId.y;
  let queryIndex = params.queryStart;

  // Every query head of this kv head, rotated to both levels, shared by the whole workgroup.
  for (var e = localIndex; e < HEADS_PER_KV * VECTORS; e += WORKGROUP) {
    let base = (kvHead * HEADS_PER_KV + e / VECTORS) * HEAD_SIZE;
    neighborQueries[e] = rotatedQueryVector(base, e % VECTORS, neighborQueryPosition(queryIndex));
${usesGroupLevel ? "    groupQueries[e] = rotatedQueryVector(base, e % VECTORS, groupQueryPosition(queryIndex));" : ""}
${cached ? "    levelQueries[e] = neighborQueries[e];\n    levelQueries[HEADS_PER_KV * VECTORS + e] = groupQueries[e];" : ""}
  }

${singleQueryKeyRange(slidingWindow)}
  let lane = localIndex % VECTORS;
  let slice = localIndex / VECTORS;
  let folds = slice < SLICES;
  var runningMax: array<f32, HEADS_PER_KV>;
  var runningSum: array<f32, HEADS_PER_KV>;
  var accumulator: array<vec4<f32>, HEADS_PER_KV>;
${unrolled(headsPerKv, (h) => `  runningMax[${h}] = LOWEST; runningSum[${h}] = 0.0; accumulator[${h}] = vec4<f32>(0.0);`)}

  // Uniform per workgroup (keyBegin and keyEnd depend on the workgroup only), so the barriers are too.
  for (var tileStart = keyBegin; tileStart < keyEnd; tileStart += KEY_TILE) {
    workgroupBarrier();
    // Scores: this invocation's key against every query head of the kv head.
    var score: array<f32, HEADS_PER_KV>;
${unrolled(headsPerKv, (h) => `    score[${h}] = LOWEST;`)}
    let j = tileStart + localIndex;
    if (j < keyEnd) {
      let distance = queryIndex - j;
      if (${keepPair}) {
        let base = (j * KV_HEADS + kvHead) * VECTORS;
        var key: array<vec4<f32>, VECTORS>;
${scoring}
      }
    }
${unrolled(headsPerKv, (h) => `    scoreTile[${h}u * KEY_TILE + localIndex] = score[${h}];`)}
    workgroupBarrier();

    // Values: lane c of slice s folds value vec4 c of keys s, s + SLICES, ... of the tile.
    let tileKeys = min(KEY_TILE, keyEnd - tileStart);
    if (folds) {
      var tileMax: array<f32, HEADS_PER_KV>;
${unrolled(headsPerKv, (h) => `      tileMax[${h}] = LOWEST;`)}
      for (var k = slice; k < tileKeys; k += SLICES) {
${unrolled(headsPerKv, (h) => `        tileMax[${h}] = max(tileMax[${h}], scoreTile[${h}u * KEY_TILE + k]);`)}
      }
${unrolled(
  headsPerKv,
  (h) => `      if (tileMax[${h}] > runningMax[${h}]) {
        // Online softmax: rescale what was summed under the old maximum.
        let correction = exp(runningMax[${h}] - tileMax[${h}]);
        runningSum[${h}] *= correction;
        accumulator[${h}] *= correction;
        runningMax[${h}] = tileMax[${h}];
      }`,
)}
      // Four value rows in flight at a time, then the remainder one by one.
      var k = slice;
      for (; k + 3u * SLICES < tileKeys; k += 4u * SLICES) {
${unrolled(4, (u) => `        let value${u} = values[((tileStart + k + ${u}u * SLICES) * KV_HEADS + kvHead) * VECTORS + lane];`)}
${unrolled(4, (u) => foldValue(`value${u}`, `k + ${u}u * SLICES`))}
      }
      for (; k < tileKeys; k += SLICES) {
        let value = values[((tileStart + k) * KV_HEADS + kvHead) * VECTORS + lane];
${foldValue("value", "k")}
      }
    }
  }

  // Merge the slices' softmaxes through their log-sum-exp: O = sum_s e^(m_s - top) a_s / sum_s e^(m_s - top) l_s.
  workgroupBarrier();
  if (folds) {
${unrolled(
  headsPerKv,
  (h) => `    sliceMax[slice * HEADS_PER_KV + ${h}u] = runningMax[${h}];
    sliceSum[slice * HEADS_PER_KV + ${h}u] = runningSum[${h}];
    sliceAccumulator[(slice * HEADS_PER_KV + ${h}u) * VECTORS + lane] = accumulator[${h}];`,
)}
  }
  workgroupBarrier();
  if (slice == 0u) {
    for (var h = 0u; h < HEADS_PER_KV; h++) {
${mergePartialSoftmaxesWgsl("slice", "SLICES", "lane")}
    }
  }
}
`;
}

/** What the subgroup single-query kernel needs beyond the key-parallel kernel's options. */
export interface SubgroupShaderOptions extends KeyParallelShaderOptions {
  /**
   * Invocations that read one key row together (a power of 2 that divides the head's vec4 count
   * and the device's smallest subgroup): lane c holds vec4s c, c + LANES, ... of the row.
   */
  readonly lanes: number;
}

/** Lanes per key row for the subgroup kernel: the largest power of 2 dividing the head's vec4 count, at most `subgroupMinimum`. */
export function subgroupLanes(headSize: number, subgroupMinimum: number): number {
  const vectors = headSize / 4;
  let lanes = 1;
  while (lanes * 2 <= subgroupMinimum && vectors % (lanes * 2) === 0) lanes *= 2;
  return lanes;
}

/** Workgroup memory of the subgroup kernel in bytes (the row groups' partial softmaxes). */
export function subgroupWorkgroupBytes(
  options: Pick<SubgroupShaderOptions, "headCount" | "kvHeadCount" | "headSize" | "workgroupSize" | "lanes">,
): number {
  const headsPerKv = options.headCount / options.kvHeadCount;
  const rowGroups = options.workgroupSize / options.lanes;
  return 4 + rowGroups * headsPerKv * (8 + 16 * (options.headSize / 4));
}

/**
 * Why the subgroup kernel cannot run a shape (undefined when it can): it reads key and value rows
 * as vec4s spread over lanes, and rotates a group-level key from the vec4 it holds and its
 * partner's, so a half-split layout needs its rotary half to be whole vec4s.
 */
export function subgroupKernelRefusal(
  headSize: number,
  rotaryDimension: number,
  layout: RopeLayout,
): string | undefined {
  if (headSize % 4 !== 0) return `needs a head size that is a multiple of 4; got ${headSize}`;
  if (rotaryDimension % 4 !== 0)
    return `needs a rotary dimension that is a multiple of 4 (it reads RoPE rows as vec4s); got ${rotaryDimension}`;
  if (layout !== "interleaved" && rotaryDimension % 8 !== 0)
    return `needs a rotary dimension that is a multiple of 8 with the ${layout} layout (each half of the rotary dimensions whole vec4s); got ${rotaryDimension}`;
  return undefined;
}

/**
 * The fused kernel for a call of ONE query, on subgroups: LANES invocations read each key row and
 * its value row together, as vec4s (coalesced: neighbouring lanes, neighbouring addresses), and a
 * workgroup's ROW_GROUPS groups of LANES lanes walk the split's keys interleaved (group r takes keys
 * r, r + ROW_GROUPS, ...).
 * - scores: each lane dots its vec4s of the key (its group-level copy R(-(j - floor(j/G))) R(j) k
 *   derived from the vec4s it holds and their rotation partners, in the key-parallel kernel's two
 *   steps) with its vec4s of every query head of the kv head, and subgroupShuffleXor sums the
 *   LANES partial dots (a row group is LANES aligned lanes of one subgroup);
 * - each lane folds its vec4s of the value row into every head's online softmax at once: no score
 *   tile, no workgroup barrier per tile, nothing per key in workgroup memory;
 * - the row groups' softmaxes are merged through their log-sum-exp at the end, written like the
 *   other kernels' (the output, or a split output plus its log-sum-exp), so the same key-split plan
 *   and merge serve all three.
 * The key-parallel kernel instead gives each invocation a whole key row (uncoalesced reads, and a
 * row of HEAD_SIZE floats in registers, twice more for the group level). Same positions, same level
 * per pair, same float32 softmax: only the order of the additions differs.
 * Row groups are numbered through a workgroup atomic, one number per subgroup, so nothing assumes
 * how the driver lays subgroups over the workgroup; every subgroup must be full (the workgroup is a
 * multiple of the largest subgroup size), and LANES divides the smallest.
 */
export function subgroupAttentionShader(options: SubgroupShaderOptions): string {
  const { headCount, kvHeadCount, headSize, rotaryDimension, layout, groupSize } = options;
  const { workgroupSize, slidingWindow, lanes } = options;
  const refusal = subgroupKernelRefusal(headSize, rotaryDimension, layout);
  if (refusal !== undefined) throw new RangeError(`the subgroup kernel ${refusal}`);
  const vectors = headSize / 4;
  if (!(lanes >= 1 && (lanes & (lanes - 1)) === 0 && vectors % lanes === 0 && workgroupSize % lanes === 0)) {
    throw new RangeError(
      `the subgroup kernel needs lanes a power of 2 dividing the head's ${vectors} vec4s and the workgroup (${workgroupSize}); got ${lanes}`,
    );
  }
  const headsPerKv = headCount / kvHeadCount;
  const slots = vectors / lanes;
  const rowGroups = workgroupSize / lanes;
  const usesGroupLevel = groupSize !== 1;
  const cached = usesGroupLevel && options.groupKeyRows !== undefined;
  const heads = Array.from({ length: headsPerKv }, (_, h) => h);
  const chunks = Math.ceil(headsPerKv / 4);
  const keepPair = slidingWindow === undefined ? "true" : "distance < SLIDING_WINDOW";
  const everySlot = (line: (h: number, s: number) => string) =>
    heads.flatMap((h) => Array.from({ length: slots }, (_, s) => line(h, s))).join("\n");
  const dot = (queriesName: string, keyName: string, h: number) =>
    unrolled(slots, (s) => `dot(${queriesName}[${h * slots + s}u], ${keyName}[${s}u])`, " + ");
  // One slot of the group-level key: the cached vec4 rotated back by the within-group part and
  // then by the group part. Half-split: the vec4 and its partner (the other half's vec4 holding
  // the rotation partners of its four values) are rotated together, x' = x cos + y sin and
  // y' = y cos - x sin per pair (first half x, second half y). Interleaved: the pairs are inside
  // the vec4. Values past the rotary dimensions pass through.
  const rotateSlot = (s: number) =>
    layout === "interleaved"
      ? `        {
          let v = lane + ${s}u * LANES;
          var rotated = key[${s}u];
          if (v < ROTARY / 4u) {
            let within = ropeVectors[withinGroupAt + v];
            rotated = rotated * within.xxzz + SIGNS * rotated.yxwz * within.yyww;
            let group = ropeVectors[groupAt + v];
            rotated = rotated * group.xxzz + SIGNS * rotated.yxwz * group.yyww;
          }
          groupKey[${s}u] = rotated;
        }`
      : `        {
          let v = lane + ${s}u * LANES;
          var rotated = key[${s}u];
          if (v < ROTARY / 4u) {
            let first = v < HALF_VECTORS;
            let sign = select(-1.0, 1.0, first);
            let partnerVector = select(v - HALF_VECTORS, v + HALF_VECTORS, first);
            var partner = keys[base + partnerVector];
            let pair = 2u * (v % HALF_VECTORS);
            let withinA = ropeVectors[withinGroupAt + pair];
            let withinB = ropeVectors[withinGroupAt + pair + 1u];
            let withinCos = vec4<f32>(withinA.x, withinA.z, withinB.x, withinB.z);
            let withinSin = vec4<f32>(withinA.y, withinA.w, withinB.y, withinB.w);
            let ownBack = rotated * withinCos + sign * partner * withinSin;
            partner = partner * withinCos - sign * rotated * withinSin;
            let groupA = ropeVectors[groupAt + pair];
            let groupB = ropeVectors[groupAt + pair + 1u];
            let groupCos = vec4<f32>(groupA.x, groupA.z, groupB.x, groupB.z);
            let groupSin = vec4<f32>(groupA.y, groupA.w, groupB.y, groupB.w);
            rotated = ownBack * groupCos + sign * partner * groupSin;
          }
          groupKey[${s}u] = rotated;
        }`;
  // The LANES partial dots of each head summed across the row group, four heads per shuffle.
  const packed = (k: number) =>
    `vec4<f32>(${[0, 1, 2, 3].map((i) => (4 * k + i < headsPerKv ? `partial[${4 * k + i}]` : "0.0")).join(", ")})`;
  const shuffleOffsets: number[] = [];
  for (let offset = lanes / 2; offset >= 1; offset /= 2) shuffleOffsets.push(offset);
  const reduce = unrolled(
    chunks,
    (k) => `    var sums${k} = ${packed(k)};
${shuffleOffsets.map((offset) => `    sums${k} += subgroupShuffleXor(sums${k}, ${offset}u);`).join("\n")}`,
  );
  const sumOf = (h: number) => `sums${h >> 2}[${h & 3}]`;
  return /* wgsl */ `enable subgroups;
${sharedDeclarations(options)}
const LANES: u32 = ${lanes}u;
const SLOTS: u32 = ${slots}u;
const ROW_GROUPS: u32 = ${rowGroups}u;
const HALF_VECTORS: u32 = ${layout === "interleaved" ? 0 : rotaryDimension / 8}u;
const SIGNS = vec4<f32>(1.0, -1.0, 1.0, -1.0);

${singleQueryBindings}
${cached ? groupKeysAtWgsl(options, 4) : ""}

var<workgroup> subgroupsNumbered: atomic<u32>;
// [ROW_GROUPS, HEADS_PER_KV] running maxima and sums, [ROW_GROUPS, HEADS_PER_KV, VECTORS] accumulators.
var<workgroup> rowGroupMax: array<f32, ${rowGroups * headsPerKv}>;
var<workgroup> rowGroupSum: array<f32, ${rowGroups * headsPerKv}>;
var<workgroup> rowGroupAccumulator: array<vec4<f32>, ${rowGroups * headsPerKv * vectors}>;

${singleQueryRotationWgsl(layout)}

@compute @workgroup_size(${workgroupSize})
fn main(
  @builtin(local_invocation_index) localIndex: u32,
  @builtin(workgroup_id) workgroupId: vec3<u32>,
  @builtin(subgroup_invocation_id) subgroupLane: u32,
  @builtin(subgroup_size) subgroupSize: u32,
) {
  let kvHead = workgroupId.y;
  let queryIndex = params.queryStart;
  // One number per subgroup (taken by its first active lane), then LANES-lane row groups inside it.
  var numbered = 0u;
  if (subgroupElect()) { numbered = atomicAdd(&subgroupsNumbered, 1u); }
  let subgroupNumber = subgroupBroadcastFirst(numbered);
  let lane = subgroupLane % LANES;
  let rowGroup = subgroupNumber * (subgroupSize / LANES) + subgroupLane / LANES;

  // This lane's vec4s (lane, lane + LANES, ...) of every query head of the kv head, at both levels.
  var neighborQuery: array<vec4<f32>, ${headsPerKv * slots}>;
${everySlot((h, s) => `  neighborQuery[${h * slots + s}u] = rotatedQueryVector((kvHead * HEADS_PER_KV + ${h}u) * HEAD_SIZE, lane + ${s}u * LANES, neighborQueryPosition(queryIndex));`)}
${
  usesGroupLevel
    ? `  var groupQuery: array<vec4<f32>, ${headsPerKv * slots}>;
${everySlot((h, s) => `  groupQuery[${h * slots + s}u] = rotatedQueryVector((kvHead * HEADS_PER_KV + ${h}u) * HEAD_SIZE, lane + ${s}u * LANES, groupQueryPosition(queryIndex));`)}`
    : ""
}

${singleQueryKeyRange(slidingWindow)}
  var runningMax: array<f32, HEADS_PER_KV>;
  var runningSum: array<f32, HEADS_PER_KV>;
  var accumulator: array<vec4<f32>, ${headsPerKv * slots}>;
${unrolled(headsPerKv, (h) => `  runningMax[${h}] = LOWEST; runningSum[${h}] = 0.0;`)}
${everySlot((h, s) => `  accumulator[${h * slots + s}u] = vec4<f32>(0.0);`)}

  // Every lane of the workgroup runs the same number of steps (a key past the split is read
  // clamped and folded with weight 0), so the shuffles run in uniform control flow.
  let steps = select(0u, (keyEnd - keyBegin + ROW_GROUPS - 1u) / ROW_GROUPS, keyEnd > keyBegin);
  for (var step = 0u; step < steps; step++) {
    let j = keyBegin + step * ROW_GROUPS + rowGroup;
    let row = min(j, keyEnd - 1u);
    let distance = queryIndex - row;
    let kept = j < keyEnd && ${keepPair};
    let base = (row * KV_HEADS + kvHead) * VECTORS;
    var key: array<vec4<f32>, SLOTS>;
    var value: array<vec4<f32>, SLOTS>;
${cached ? "    // With cached group keys, the copy at the pair's level: one row read per pair either way.\n    let keyBase = select(GROUP_KEYS_AT + base, base, isNeighborPair(distance));\n" : ""}${unrolled(slots, (s) => `    key[${s}u] = keys[${cached ? "keyBase" : "base"} + lane + ${s}u * LANES];\n    value[${s}u] = values[base + lane + ${s}u * LANES];`)}
    var partial: array<f32, HEADS_PER_KV>;
    if (isNeighborPair(distance)) {
${heads.map((h) => `      partial[${h}] = ${dot("neighborQuery", "key", h)};`).join("\n")}
    }${
      cached
        ? ` else {
${heads.map((h) => `      partial[${h}] = ${dot("groupQuery", "key", h)};`).join("\n")}
    }`
        : usesGroupLevel
          ? ` else {
      // R(floor(j/G)) k = R(-(j - floor(j/G))) R(j) k, by j mod G and then by (G - 1) floor(j/G).
      let parts = groupKeyBackRotationParts(row);
      let withinGroupAt = parts.y * PAIRS / 2u;
      let groupAt = parts.x * PAIRS / 2u;
      var groupKey: array<vec4<f32>, SLOTS>;
${unrolled(slots, rotateSlot)}
${heads.map((h) => `      partial[${h}] = ${dot("groupQuery", "groupKey", h)};`).join("\n")}
    }`
          : ""
    }
${reduce}
${heads
  .map(
    (h) => `    {
      let score = capScore(${sumOf(h)} * params.scale);
      if (kept) {
        // Online softmax, one key at a time: rescale what was summed under the old maximum.
        let top = max(runningMax[${h}], score);
        let correction = exp(runningMax[${h}] - top);
        let weight = exp(score - top);
        runningSum[${h}] = runningSum[${h}] * correction + weight;
${unrolled(slots, (s) => `        accumulator[${h * slots + s}u] = accumulator[${h * slots + s}u] * correction + weight * value[${s}u];`)}
        runningMax[${h}] = top;
      }
    }`,
  )
  .join("\n")}
  }

  // Merge the row groups' softmaxes through their log-sum-exp: O = sum_r e^(m_r - top) a_r / sum_r e^(m_r - top) l_r.
  if (rowGroup < ROW_GROUPS) {
${unrolled(
  headsPerKv,
  (h) => `    if (lane == 0u) {
      rowGroupMax[rowGroup * HEADS_PER_KV + ${h}u] = runningMax[${h}];
      rowGroupSum[rowGroup * HEADS_PER_KV + ${h}u] = runningSum[${h}];
    }`,
)}
${everySlot((h, s) => `    rowGroupAccumulator[(rowGroup * HEADS_PER_KV + ${h}u) * VECTORS + lane + ${s}u * LANES] = accumulator[${h * slots + s}u];`)}
  }
  workgroupBarrier();
  for (var e = localIndex; e < HEADS_PER_KV * VECTORS; e += WORKGROUP) {
    let h = e / VECTORS;
    let c = e % VECTORS;
${mergePartialSoftmaxesWgsl("rowGroup", "ROW_GROUPS", "c")}
  }
}
`;
}
