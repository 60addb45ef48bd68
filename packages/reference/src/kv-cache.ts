/**
 * The reference KV cache: per layer, every key rotated to BOTH Self-Extend levels (its neighbor
 * position j and its group position floor(j/G)) plus the un-rotated values, in float64.
 *
 * Both rotations depend on the key alone, so each key is rotated once when it is appended and never
 * again; decoding token i costs one new pair of rotations, not i. Rows live in flat arrays
 * [token, kvHeadCount * headSize] that grow by doubling up to the session's context size, so a
 * session opened with a large context size costs memory only for the tokens it really holds.
 */
import type { TwoLevelRotation } from "@self-extend/core";

export interface LayerCache {
  /** Keys at their neighbor position j, then at their group position floor(j/G). */
  readonly keys: TwoLevelRotation;
  /** Un-rotated values. */
  readonly values: Float64Array;
}

const initialCapacity = 256;

export class KeyValueCache {
  private layerCaches: LayerCache[];
  private capacity: number;

  constructor(
    readonly layerCount: number,
    /** kvHeadCount * headSize: the values one token stores per layer and per kind. */
    readonly rowWidth: number,
    /** The most tokens it will ever hold. */
    readonly largestCapacity: number,
  ) {
    this.capacity = Math.min(initialCapacity, largestCapacity);
    this.layerCaches = this.allocate(this.capacity);
  }

  private allocate(capacity: number): LayerCache[] {
    return Array.from({ length: this.layerCount }, () => ({
      keys: {
        neighbor: new Float64Array(capacity * this.rowWidth),
        group: new Float64Array(capacity * this.rowWidth),
      },
      values: new Float64Array(capacity * this.rowWidth),
    }));
  }

  /** Makes room for `tokenCount` tokens, keeping the rows already stored. */
  reserve(tokenCount: number): void {
    if (tokenCount <= this.capacity) return;
    if (tokenCount > this.largestCapacity) {
      throw new RangeError(
        `the KV cache holds at most ${this.largestCapacity} tokens; ${tokenCount} were asked for`,
      );
    }
    let capacity = this.capacity;
    while (capacity < tokenCount) capacity *= 2;
    capacity = Math.min(capacity, this.largestCapacity);
    const grown = this.allocate(capacity);
    for (let layer = 0; layer < this.layerCount; layer++) {
      grown[layer].keys.neighbor.set(this.layerCaches[layer].keys.neighbor);
      grown[layer].keys.group.set(this.layerCaches[layer].keys.group);
      grown[layer].values.set(this.layerCaches[layer].values);
    }
    this.layerCaches = grown;
    this.capacity = capacity;
  }

  /** Bytes allocated now: float64 keys at both levels and values, for every layer. */
  get byteLength(): number {
    return this.layerCount * 3 * this.capacity * this.rowWidth * Float64Array.BYTES_PER_ELEMENT;
  }

  layer(index: number): LayerCache {
    return this.layerCaches[index];
  }

  /** Stores rows for tokens firstToken .. firstToken + count - 1 of one layer (room must be reserved). */
  write(
    layer: number,
    firstToken: number,
    keys: TwoLevelRotation,
    values: Float64Array,
    count: number,
  ): void {
    const cache = this.layerCaches[layer];
    const start = firstToken * this.rowWidth;
    const length = count * this.rowWidth;
    cache.keys.neighbor.set(keys.neighbor.subarray(0, length), start);
    cache.keys.group.set(keys.group.subarray(0, length), start);
    cache.values.set(values.subarray(0, length), start);
  }
}
