/**
 * The Self-Extend position map: which relative position the pair (query i, key j) is given.
 *
 *     r(i, j) = i - j                                      if i - j < W   (neighbor level, exact)
 *     r(i, j) = floor(i/G) - floor(j/G) + W - floor(W/G)   otherwise      (group level)
 *
 * Two-level form used by RoPE implementations: at the neighbor level the query sits at i and the
 * key at j; at the group level the query sits at floor(i/G) + W - W/G and the key at floor(j/G).
 * Both forms give the same r(i, j) because RoPE only sees the difference.
 *
 * Everything here assumes a configuration that passed `validateSelfExtendConfig` (integers,
 * G >= 1, W >= 1, W % G == 0); the vectorised functions validate it themselves.
 */
import { type SelfExtendConfig, validateSelfExtendConfig } from "./config.js";
import { ContextLengthError, SelfExtendConfigError } from "./errors.js";

/** Value used for keys after the query (masked by causal attention) in maps and golden files. */
export const maskedPosition = -1;

/** Neighbor iff 0 <= i - j < W; the test is strict, as in every official code path. */
export function isNeighbor(queryIndex: number, keyIndex: number, config: SelfExtendConfig): boolean {
  const distance = queryIndex - keyIndex;
  return distance >= 0 && distance < config.neighborWindow;
}

/** Position of query i at the neighbor level: i itself. */
export function neighborQueryPosition(queryIndex: number): number {
  return queryIndex;
}

/** Position of key j at the neighbor level: j itself. */
export function neighborKeyPosition(keyIndex: number): number {
  return keyIndex;
}

/** Position of query i at the group level: floor(i/G) + W - W/G. */
export function groupQueryPosition(queryIndex: number, config: SelfExtendConfig): number {
  const { groupSize, neighborWindow } = config;
  return Math.floor(queryIndex / groupSize) + neighborWindow - Math.floor(neighborWindow / groupSize);
}

/** Position of key j at the group level: floor(j/G). It depends on the key only. */
export function groupKeyPosition(keyIndex: number, config: SelfExtendConfig): number {
  return Math.floor(keyIndex / config.groupSize);
}

/**
 * Relative position r(i, j) for a query i and a key j <= i.
 * Throws for j > i: such a pair is masked and has no position.
 */
export function relativePosition(queryIndex: number, keyIndex: number, config: SelfExtendConfig): number {
  if (keyIndex > queryIndex || keyIndex < 0) {
    throw new RangeError(
      `relativePosition needs 0 <= keyIndex <= queryIndex; got queryIndex = ${queryIndex}, keyIndex = ${keyIndex}`,
    );
  }
  if (queryIndex - keyIndex < config.neighborWindow) return queryIndex - keyIndex;
  return groupQueryPosition(queryIndex, config) - groupKeyPosition(keyIndex, config);
}

/** Which block of the full map to compute: queries `queryStart .. queryStart + queryCount - 1`
 * against keys `0 .. keyCount - 1`. */
export interface PositionMapBlock {
  readonly queryStart: number;
  readonly queryCount: number;
  readonly keyCount: number;
}

/** The longest Int32Array every JavaScript engine we run on can allocate (2^31 - 1 elements). */
const largestMapEntries = 2 ** 31 - 1;

/**
 * The relative positions of a block of queries against keys, row-major
 * (`map[q * keyCount + j]` for query `queryStart + q`), with {@link maskedPosition} (-1) where the
 * key comes after the query.
 */
export function relativePositionBlock(config: SelfExtendConfig, block: PositionMapBlock): Int32Array {
  const { groupSize, neighborWindow } = validateSelfExtendConfig(config);
  const { queryStart, queryCount, keyCount } = block;
  for (const [field, value] of Object.entries({ queryStart, queryCount, keyCount })) {
    if (!Number.isInteger(value) || value < 0) {
      throw new SelfExtendConfigError(field, value, "must be a non-negative integer");
    }
  }
  if (queryCount * keyCount > largestMapEntries) {
    throw new SelfExtendConfigError(
      "queryCount x keyCount",
      queryCount * keyCount,
      `a position map holds at most ${largestMapEntries} entries; compute it in blocks of fewer queries`,
    );
  }
  const map = new Int32Array(queryCount * keyCount);
  const groupOffset = neighborWindow - Math.floor(neighborWindow / groupSize);
  for (let q = 0; q < queryCount; q++) {
    const queryIndex = queryStart + q;
    const groupQuery = Math.floor(queryIndex / groupSize) + groupOffset;
    const row = q * keyCount;
    for (let keyIndex = 0; keyIndex < keyCount; keyIndex++) {
      const distance = queryIndex - keyIndex;
      map[row + keyIndex] =
        distance < 0
          ? maskedPosition
          : distance < neighborWindow
            ? distance
            : groupQuery - Math.floor(keyIndex / groupSize);
    }
  }
  return map;
}

/** The full N x N map (query rows, key columns), -1 above the diagonal. */
export function relativePositionMap(config: SelfExtendConfig, length: number): Int32Array {
  return relativePositionBlock(config, { queryStart: 0, queryCount: length, keyCount: length });
}

/**
 * Largest relative position any pair reaches in a sequence of N tokens:
 * N - 1 when N <= W, otherwise floor((N-1)/G) + W - W/G (the pair (N-1, 0)).
 */
export function largestRelativePosition(length: number, config: SelfExtendConfig): number {
  const { groupSize, neighborWindow } = validateSelfExtendConfig(config);
  if (!Number.isInteger(length) || length < 1) {
    throw new SelfExtendConfigError("length", length, "must be an integer >= 1");
  }
  if (length <= neighborWindow) return length - 1;
  return Math.floor((length - 1) / groupSize) + neighborWindow - Math.floor(neighborWindow / groupSize);
}

/**
 * Largest N a model trained on L positions can take without seeing an untrained relative
 * position: (L - W) * G + W. When W > L the neighbor window itself already exceeds the trained
 * range, so only L tokens are safe.
 */
export function largestUsableContext(trainedContext: number, config: SelfExtendConfig): number {
  const { groupSize, neighborWindow } = validateSelfExtendConfig(config);
  if (!Number.isInteger(trainedContext) || trainedContext < 1) {
    throw new SelfExtendConfigError("trainedContext", trainedContext, "must be an integer >= 1");
  }
  if (neighborWindow >= trainedContext) return trainedContext;
  return (trainedContext - neighborWindow) * groupSize + neighborWindow;
}

/** Throws {@link ContextLengthError} when `length` tokens exceed (L - W) * G + W. */
export function assertWithinUsableContext(
  length: number,
  trainedContext: number,
  config: SelfExtendConfig,
): void {
  const limit = largestUsableContext(trainedContext, config);
  if (length > limit) {
    const { groupSize: G, neighborWindow: W } = config;
    throw new ContextLengthError(
      length,
      limit,
      `with trained context L = ${trainedContext}, G = ${G}, W = ${W} the largest usable context is ` +
        (W >= trainedContext ? `L = ${limit} (W >= L)` : `(L - W) * G + W = ${limit}`) +
        "; use a larger groupSize or a smaller neighborWindow",
    );
  }
}
