/**
 * Rotary position embedding (RoPE) math shared by every adapter.
 *
 * Two layouts pair the dimensions of a head differently:
 * - `interleaved`: pairs (2k, 2k+1). llama.cpp's "normal" RoPE and llama2.c (`llama`, `mistral`).
 * - `half-split`: pairs (k, k + R/2). GPT-NeoX and Hugging Face's `rotate_half` (`qwen2`, ...).
 *
 * Pair k rotates by angle `position / scale * base^(-2k / R)`, where R is the rotary dimension
 * (R <= head size; dimensions past R are left unrotated: partial rotary) and `scale` is linear
 * position scaling (1 = none; llama.cpp's freq_scale is 1 / scale).
 * Llama 3.1+ files add per-pair frequency factors f_k (GGUF `rope_freqs.weight`, llama.cpp's
 * freq_factors): pair k then rotates by `position / scale * base^(-2k / R) / f_k`. A factor belongs to
 * the dimension, not to the position, so Self-Extend's neighbour and grouped positions both use it.
 * Angles are computed in float64 so the tables are the most accurate value each runtime can round.
 */
import { SelfExtendConfigError } from "./errors.js";

export type RopeLayout = "interleaved" | "half-split";

export const ropeLayouts: readonly RopeLayout[] = ["interleaved", "half-split"];

export interface RopeOptions {
  readonly layout: RopeLayout;
  /** Values per attention head. */
  readonly headSize: number;
  /** How many of them rotate (even, <= headSize). Defaults to headSize. */
  readonly rotaryDimension?: number;
  /** theta base, 10000 for Llama 2, 1e6 for Qwen2 and many newer models. */
  readonly base?: number;
  /** Linear position scaling: positions are divided by this factor. Defaults to 1. */
  readonly linearScalingFactor?: number;
  /** One divisor per rotary pair (R/2 values, each finite and > 0): GGUF `rope_freqs.weight`. */
  readonly frequencyFactors?: ArrayLike<number>;
}

/** RoPE options with every default filled in and checked. */
export interface ResolvedRopeOptions {
  readonly layout: RopeLayout;
  readonly headSize: number;
  readonly rotaryDimension: number;
  readonly base: number;
  readonly linearScalingFactor: number;
  /** Absent when every factor is 1. */
  readonly frequencyFactors?: readonly number[];
}

export function resolveRopeOptions(options: RopeOptions): ResolvedRopeOptions {
  const { layout, headSize } = options;
  const rotaryDimension = options.rotaryDimension ?? headSize;
  const base = options.base ?? 10000;
  const linearScalingFactor = options.linearScalingFactor ?? 1;
  if (!ropeLayouts.includes(layout)) {
    throw new SelfExtendConfigError("layout", layout, `must be one of ${ropeLayouts.join(", ")}`);
  }
  if (!Number.isInteger(headSize) || headSize < 2) {
    throw new SelfExtendConfigError("headSize", headSize, "must be an integer >= 2");
  }
  if (!Number.isInteger(rotaryDimension) || rotaryDimension < 2 || rotaryDimension % 2 !== 0) {
    throw new SelfExtendConfigError("rotaryDimension", rotaryDimension, "must be an even integer >= 2");
  }
  if (rotaryDimension > headSize) {
    throw new SelfExtendConfigError("rotaryDimension", rotaryDimension, `must be <= headSize (${headSize})`);
  }
  if (!(base > 1) || !Number.isFinite(base)) {
    throw new SelfExtendConfigError("base", base, "must be a finite number > 1");
  }
  if (!(linearScalingFactor > 0) || !Number.isFinite(linearScalingFactor)) {
    throw new SelfExtendConfigError(
      "linearScalingFactor",
      linearScalingFactor,
      "must be a finite number > 0",
    );
  }
  const resolved = { layout, headSize, rotaryDimension, base, linearScalingFactor };
  if (options.frequencyFactors === undefined) return resolved;
  const frequencyFactors = Array.from(options.frequencyFactors, Number);
  if (frequencyFactors.length !== rotaryDimension / 2) {
    throw new SelfExtendConfigError(
      "frequencyFactors.length",
      frequencyFactors.length,
      `must be rotaryDimension / 2 = ${rotaryDimension / 2}, one factor per rotary pair`,
    );
  }
  const invalid = frequencyFactors.findIndex((factor) => !(factor > 0) || !Number.isFinite(factor));
  if (invalid >= 0) {
    throw new SelfExtendConfigError(
      `frequencyFactors[${invalid}]`,
      frequencyFactors[invalid],
      "must be a finite number > 0",
    );
  }
  return frequencyFactors.every((factor) => factor === 1) ? resolved : { ...resolved, frequencyFactors };
}

/** Angle per position of each rotary pair: base^(-2k / R) / scale / f_k, k = 0 .. R/2 - 1. */
export function ropeFrequencies(options: RopeOptions): Float64Array {
  const { rotaryDimension, base, linearScalingFactor, frequencyFactors } = resolveRopeOptions(options);
  const frequencies = new Float64Array(rotaryDimension / 2);
  for (let pair = 0; pair < frequencies.length; pair++) {
    const factor = frequencyFactors?.[pair] ?? 1;
    frequencies[pair] = base ** ((-2 * pair) / rotaryDimension) / linearScalingFactor / factor;
  }
  return frequencies;
}

/** Indices of the two values that pair k rotates together inside one head. */
export function ropePairIndices(layout: RopeLayout, pair: number, rotaryDimension: number): [number, number] {
  return layout === "interleaved" ? [2 * pair, 2 * pair + 1] : [pair, pair + rotaryDimension / 2];
}

/**
 * Precomputed cos/sin for positions 0 .. positionCount - 1: `cos[p * R/2 + k]`.
 * Adapters upload these tables instead of recomputing angles.
 */
export interface RopeTable {
  readonly options: ResolvedRopeOptions;
  readonly positionCount: number;
  readonly cos: Float64Array;
  readonly sin: Float64Array;
}

export function createRopeTable(options: RopeOptions, positionCount: number): RopeTable {
  const resolved = resolveRopeOptions(options);
  if (!Number.isInteger(positionCount) || positionCount < 1) {
    throw new SelfExtendConfigError("positionCount", positionCount, "must be an integer >= 1");
  }
  const frequencies = ropeFrequencies(resolved);
  const pairs = frequencies.length;
  const cos = new Float64Array(positionCount * pairs);
  const sin = new Float64Array(positionCount * pairs);
  for (let position = 0; position < positionCount; position++) {
    for (let pair = 0; pair < pairs; pair++) {
      const angle = position * frequencies[pair];
      cos[position * pairs + pair] = Math.cos(angle);
      sin[position * pairs + pair] = Math.sin(angle);
    }
  }
  return { options: resolved, positionCount, cos, sin };
}

type NumericArray = Float32Array | Float64Array;

/**
 * Rotates one head vector (`headSize` values at `offset`) in place to `position`.
 * Positions past the table are computed directly, so a table is an optimisation, never a limit.
 */
export function applyRope(
  vector: NumericArray,
  offset: number,
  position: number,
  table: RopeTable,
  frequencies?: Float64Array,
): void {
  const { layout, rotaryDimension } = table.options;
  const pairs = rotaryDimension / 2;
  const inTable = position < table.positionCount && position >= 0 && Number.isInteger(position);
  const freqs = inTable ? undefined : (frequencies ?? ropeFrequencies(table.options));
  for (let pair = 0; pair < pairs; pair++) {
    let cos: number;
    let sin: number;
    if (freqs === undefined) {
      cos = table.cos[position * pairs + pair];
      sin = table.sin[position * pairs + pair];
    } else {
      const angle = position * freqs[pair];
      cos = Math.cos(angle);
      sin = Math.sin(angle);
    }
    const first = offset + (layout === "interleaved" ? 2 * pair : pair);
    const second = offset + (layout === "interleaved" ? 2 * pair + 1 : pair + pairs);
    const x = vector[first];
    const y = vector[second];
    vector[first] = x * cos - y * sin;
    vector[second] = x * sin + y * cos;
  }
}

/** Rotates `count` consecutive head vectors of `headSize` values starting at `offset`. */
export function applyRopeToHeads(
  vector: NumericArray,
  offset: number,
  count: number,
  position: number,
  table: RopeTable,
): void {
  const { headSize } = table.options;
  for (let head = 0; head < count; head++) applyRope(vector, offset + head * headSize, position, table);
}
