/**
 * Deterministic inputs for the attention kernel and the float64 output they must give, shared by
 * the Node kernel tests, the browser page (this folder is what the test server serves) and the
 * scripts (benchmark, real-GPU check), so that all of them check the same thing the same way.
 */
import {
  type AttentionShape,
  applyRope,
  createRopeTable,
  type RopeLayout,
  type RopeOptions,
  type RopeTable,
  referenceAttention,
  type SelfExtendConfig,
} from "@self-extend/core";
import { createStorageBuffer, readFloat32, uploadFloat32 } from "../../src/gpu-buffers.js";
import { type AttentionBuffers, largestRotatedPosition } from "../../src/self-extend-attention-kernel.js";

/** Values in [-1, 1) from a linear congruential generator: the same on every machine. */
export function randomValues(length: number, seed: number): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state / 2 ** 32) * 2 - 1;
  });
}

/** A KV cache's keys: key j rotated at its own position j, as a forward pass writes them. */
export function rotateKeysAtTheirPositions(
  keys: ArrayLike<number>,
  keyCount: number,
  shape: Pick<AttentionShape, "kvHeadCount" | "headSize">,
  table: RopeTable,
): Float64Array {
  const cached = Float64Array.from(keys);
  for (let j = 0; j < keyCount; j++) {
    for (let head = 0; head < shape.kvHeadCount; head++) {
      applyRope(cached, (j * shape.kvHeadCount + head) * shape.headSize, j, table);
    }
  }
  return cached;
}

/**
 * The second copy of the keys a kernel with `cachedGroupKeys` reads: key j rotated at its group
 * position floor(j/G), the spec's group-level key, rotated here from the raw key by core's RoPE.
 */
export function rotateKeysAtGroupPositions(
  keys: ArrayLike<number>,
  keyCount: number,
  shape: Pick<AttentionShape, "kvHeadCount" | "headSize">,
  table: RopeTable,
  groupSize: number,
): Float64Array {
  const rotated = Float64Array.from(keys);
  for (let j = 0; j < keyCount; j++) {
    for (let head = 0; head < shape.kvHeadCount; head++) {
      applyRope(rotated, (j * shape.kvHeadCount + head) * shape.headSize, Math.floor(j / groupSize), table);
    }
  }
  return rotated;
}

export interface AttentionInputs {
  readonly shape: AttentionShape;
  readonly config: SelfExtendConfig;
  readonly ropeOptions: RopeOptions;
  readonly table: RopeTable;
  readonly queryCount: number;
  readonly keyCount: number;
  /** [queryCount, headCount, headSize], not rotated (the kernel rotates queries itself). */
  readonly queries: Float32Array;
  /** [keyCount, kvHeadCount, headSize], not rotated: what referenceAttention takes. */
  readonly keys: Float32Array;
  /** The same keys rotated at their positions: what the kernel reads. */
  readonly cachedKeys: Float64Array;
  readonly values: Float32Array;
}

/** Queries, keys and values from seeds seed + 1, + 2 and + 3; a RoPE table covering every position used. */
export function attentionInputs(options: {
  readonly shape: AttentionShape;
  readonly config: SelfExtendConfig;
  readonly layout: RopeLayout;
  readonly rotaryDimension?: number;
  readonly keyCount: number;
  readonly queryCount: number;
  readonly seed?: number;
}): AttentionInputs {
  const { shape, config, layout, keyCount, queryCount } = options;
  const seed = options.seed ?? 0;
  const ropeOptions: RopeOptions = {
    layout,
    headSize: shape.headSize,
    rotaryDimension: options.rotaryDimension ?? shape.headSize,
    base: 10000,
  };
  const table = createRopeTable(ropeOptions, largestRotatedPosition(keyCount, config) + 1);
  const keys = randomValues(keyCount * shape.kvHeadCount * shape.headSize, seed + 2);
  return {
    shape,
    config,
    ropeOptions,
    table,
    queryCount,
    keyCount,
    queries: randomValues(queryCount * shape.headCount * shape.headSize, seed + 1),
    keys,
    cachedKeys: rotateKeysAtTheirPositions(keys, keyCount, shape, table),
    values: randomValues(keyCount * shape.kvHeadCount * shape.headSize, seed + 3),
  };
}

/** core's float64 reference attention of the inputs' last queryCount queries. */
export function expectedAttention(
  inputs: AttentionInputs,
  scoring: { readonly scale?: number; readonly logitSoftCap?: number; readonly slidingWindow?: number } = {},
): Float64Array {
  const { shape, config, table, queries, keys, values, queryCount, keyCount } = inputs;
  return referenceAttention({
    shape,
    config,
    rope: table,
    queries,
    keys,
    values,
    queryCount,
    keyCount,
    ...scoring,
  });
}

/** The inputs on the device, with a fresh output buffer. */
/**
 * The inputs on the device. With `groupKeys`, the keys buffer is what a kernel with
 * `cachedGroupKeys` (and contextSize = keyCount) reads: the keys at j, then the keys at floor(j/G).
 */
export function uploadAttentionInputs(
  device: GPUDevice,
  inputs: AttentionInputs,
  options: { readonly groupKeys?: boolean } = {},
): AttentionBuffers {
  const { shape, queries, keys, cachedKeys, values, queryCount, keyCount, table, config } = inputs;
  const groupKeys =
    options.groupKeys === true
      ? rotateKeysAtGroupPositions(keys, keyCount, shape, table, config.groupSize)
      : new Float64Array(0);
  const bothCopies = new Float64Array(cachedKeys.length + groupKeys.length);
  bothCopies.set(cachedKeys);
  bothCopies.set(groupKeys, cachedKeys.length);
  return {
    queries: uploadFloat32(device, queries),
    keys: uploadFloat32(device, bothCopies),
    values: uploadFloat32(device, values),
    output: createStorageBuffer(device, queryCount * shape.headCount * shape.headSize * 4),
  };
}

/** Largest |a - b| over two equally long arrays; a NaN anywhere counts as infinitely far. */
export function largestDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`comparing ${a.length} values with ${b.length}`);
  let largest = 0;
  for (let index = 0; index < a.length; index++) {
    const difference = Math.abs(a[index] - b[index]);
    largest = Number.isNaN(difference) ? Number.POSITIVE_INFINITY : Math.max(largest, difference);
  }
  return largest;
}

/** Largest |output - expected| after the device has finished. */
export async function largestOutputDifference(
  device: GPUDevice,
  output: GPUBuffer,
  expected: Float64Array,
): Promise<number> {
  return largestDifference(await readFloat32(device, output, expected.length * 4), expected);
}
