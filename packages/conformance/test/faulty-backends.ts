/**
 * Deliberately wrong backends, each with one mistake adapters are known to make. The suite must
 * fail every one of them, at the tier that catches that mistake.
 */
import {
  relativePositionMap,
  type SelfExtendBackendV1,
  type SelfExtendConfig,
  validateSelfExtendConfig,
} from "@self-extend/core";
import { type LlamaWeights, loadLlamaWeights } from "@self-extend/models/node";
import { createReferenceBackend, createReferenceModel } from "@self-extend/reference";

function referenceOnTransformedWeights(
  name: string,
  transform: (weights: LlamaWeights) => LlamaWeights,
): SelfExtendBackendV1 {
  const reference = createReferenceBackend();
  return {
    ...reference,
    name,
    loadModel: async ({ path }) => createReferenceModel(transform(loadLlamaWeights(path))),
  };
}

/** Rotates with the other RoPE layout (half-split where the model wants interleaved, and back). */
export function wrongRopeLayoutBackend(): SelfExtendBackendV1 {
  return referenceOnTransformedWeights("wrong-rope-layout", (weights) => ({
    ...weights,
    description: {
      ...weights.description,
      ropeLayout: weights.description.ropeLayout === "interleaved" ? "half-split" : "interleaved",
    },
  }));
}

/**
 * Query head h reads kv head h mod K instead of floor(h / (H/K)). Computed exactly by running the
 * correct code on a model whose query heads are moved to the slot the bug sends them to.
 */
export function missingGroupedQueryMappingBackend(): SelfExtendBackendV1 {
  return referenceOnTransformedWeights("missing-gqa-mapping", (weights) => {
    const { headCount, kvHeadCount, headSize, embeddingSize } = weights.description;
    const perKv = headCount / kvHeadCount;
    const slotOf = (head: number) => (head % kvHeadCount) * perKv + Math.floor(head / kvHeadCount);
    const moveRows = (matrix: Float32Array, width: number) => {
      const moved = new Float32Array(matrix.length);
      for (let head = 0; head < headCount; head++) {
        moved.set(
          matrix.subarray(head * headSize * width, (head + 1) * headSize * width),
          slotOf(head) * headSize * width,
        );
      }
      return moved;
    };
    const moveColumns = (matrix: Float32Array) => {
      const moved = new Float32Array(matrix.length);
      const columns = headCount * headSize;
      for (let row = 0; row < embeddingSize; row++) {
        for (let head = 0; head < headCount; head++) {
          for (let d = 0; d < headSize; d++) {
            moved[row * columns + slotOf(head) * headSize + d] = matrix[row * columns + head * headSize + d];
          }
        }
      }
      return moved;
    };
    return {
      ...weights,
      layers: weights.layers.map((layer) => ({
        ...layer,
        query: moveRows(layer.query, embeddingSize),
        ...(layer.queryBias ? { queryBias: moveRows(layer.queryBias, 1) } : {}),
        output: moveColumns(layer.output),
      })),
    };
  });
}

/** A backend whose positions come from a buggy map; it reports them through relativePositions. */
function positionBugBackend(
  name: string,
  relative: (i: number, j: number, config: SelfExtendConfig) => number,
) {
  const reference = createReferenceBackend();
  return {
    ...reference,
    name,
    relativePositions(config: SelfExtendConfig, length: number): Int32Array {
      validateSelfExtendConfig(config);
      const map = relativePositionMap(config, length);
      for (let i = 0; i < length; i++)
        for (let j = 0; j <= i; j++) map[i * length + j] = relative(i, j, config);
      return map;
    },
  } satisfies SelfExtendBackendV1;
}

/**
 * A window one too small (i - j < W - 1). The other off-by-one, `<=` for `<`, cannot be seen:
 * at i - j = W the group level gives exactly W as well (W % G == 0), which core's tests check.
 */
export function offByOneWindowBackend() {
  return positionBugBackend("off-by-one-window", (i, j, { groupSize: g, neighborWindow: w }) =>
    i - j < w - 1 ? i - j : Math.floor(i / g) - Math.floor(j / g) + w - Math.floor(w / g),
  );
}

/** Divides with `/` instead of floor for the group positions (rounded, as a position table would be). */
export function floatDivisionBackend() {
  return positionBugBackend("float-division", (i, j, { groupSize: g, neighborWindow: w }) =>
    i - j < w ? i - j : Math.round(i / g - j / g + w - w / g),
  );
}

/**
 * An adapter-style position scheduler on a KV cache where every key has one position (as
 * llama.cpp's): keys that leave the window stay at their group position, the W most recent keys
 * form a neighbor block just below the query, and before each query past W the block moves so the
 * query fits at largest position + 1. The mistake: the move is computed for the previous query
 * (`i - 1` for `i`), so the block lags one token behind at every group boundary. The map it reports
 * is read from the simulated cells after each query, as a real adapter reads its cache.
 */
export function laggingNeighborShiftBackend() {
  const reference = createReferenceBackend();
  return {
    ...reference,
    name: "lagging-neighbor-shift",
    relativePositions(config: SelfExtendConfig, length: number): Int32Array {
      const { groupSize: g, neighborWindow: w } = validateSelfExtendConfig(config);
      const cells: number[] = [];
      const map = new Int32Array(length * length).fill(-1);
      const shiftBefore = (index: number) =>
        g === 1 || index <= w ? 0 : Math.floor(index / g) - Math.floor((index - 1) / g) - 1;
      for (let i = 0; i < length; i++) {
        const delta = shiftBefore(i - 1);
        // The neighbor block: the W most recent cached keys.
        for (let j = Math.max(0, cells.length - w); j < cells.length; j++) cells[j] += delta;
        cells.push(cells.length === 0 ? 0 : Math.max(...cells) + 1);
        for (let j = 0; j <= i; j++) map[i * length + j] = cells[i] - cells[j];
      }
      return map;
    },
  } satisfies SelfExtendBackendV1;
}
