/**
 * The fused single-pass Self-Extend attention kernel, usable on its own.
 *
 * Inputs (float32 storage buffers, row-major):
 * - queries [queryCount, headCount, headSize], NOT rotated: the kernel rotates each query to both
 *   levels itself (i and floor(i/G) + W - W/G);
 * - keys [capacity, kvHeadCount, headSize], key j rotated at its own position j (an ordinary RoPE KV
 *   cache); the group-level key is derived from this one copy inside the kernel, or, with
 *   `cachedGroupKeys`, read from a second copy that follows it in the same buffer, [capacity,
 *   kvHeadCount, headSize] with key j rotated at its group position floor(j/G) (capacity is the
 *   kernel's contextSize);
 * - values [capacity, kvHeadCount, headSize].
 * Output: [queryCount, headCount, headSize]. Query q is token queryStart + q and sees keys 0..its index.
 */
import {
  type AttentionShape,
  groupQueryPosition,
  type RopeLayout,
  type SelfExtendConfig,
  SelfExtendConfigError,
  validateAttentionShape,
  validateSelfExtendConfig,
} from "@self-extend/core";
import { type KernelLimits, type WebGpuContext, WebGpuDeviceError } from "./device.js";
import {
  BindGroupCache,
  createStorageBuffer,
  submitComputePass,
  uniformUsage,
  withErrorScopes,
} from "./gpu-buffers.js";
import { createGpuRopeTable, type GpuRopeTable } from "./rope-table.js";
import {
  type AttentionKernelMode,
  keyParallelAttentionShader,
  keyParallelWorkgroupBytes,
  mergeKeySplitsShader,
  mergeLogSumExpShader,
  selfExtendAttentionShader,
  subgroupAttentionShader,
  subgroupKernelRefusal,
  subgroupLanes,
  subgroupWorkgroupBytes,
} from "./self-extend-attention.wgsl.js";

export type { AttentionKernelMode } from "./self-extend-attention.wgsl.js";

export interface AttentionTiles {
  /** Invocations per workgroup. */
  readonly workgroupSize: number;
  /** Queries per workgroup (each with headCount / kvHeadCount invocations). */
  readonly queryTile: number;
  /** Keys staged in workgroup memory per step. */
  readonly keyTile: number;
}

export interface SelfExtendAttentionKernelOptions {
  readonly shape: AttentionShape;
  readonly config: SelfExtendConfig;
  readonly rope: {
    readonly layout: RopeLayout;
    readonly rotaryDimension?: number;
    readonly base?: number;
    readonly linearScalingFactor?: number;
    /** Per-pair frequency divisors (Llama 3 `rope_freqs`). */
    readonly frequencyFactors?: ArrayLike<number>;
  };
  /** Largest number of keys a call will see; sizes the RoPE table. */
  readonly contextSize: number;
  /** Score scale; 1/sqrt(headSize) by default. */
  readonly scale?: number;
  /** Scaled scores become cap * tanh(score / cap) before the softmax (Gemma 2); none by default. */
  readonly logitSoftCap?: number;
  /**
   * Query i sees only keys j with i - j < slidingWindow (Gemma 2's local layers). Plain attention
   * (groupSize 1) only: a local layer keeps every key at its exact position.
   */
  readonly slidingWindow?: number;
  /** Overrides of the tile sizes chosen from the device limits (tests use small tiles). */
  readonly tiles?: Partial<AttentionTiles>;
  /** A RoPE table already on the GPU covering the positions needed (shared with a forward pass). */
  readonly ropeTable?: GpuRopeTable;
  /** `fused` (default); the others exist for the two-pass benchmark baseline. */
  readonly mode?: AttentionKernelMode;
  /**
   * Workgroups a call should keep busy (fused mode): when query tiles x kv heads fall short, the
   * keys are split into ranges merged afterwards (flash-decoding). Default
   * {@link defaultTargetWorkgroups}: 512 on GPUs, 1 (never split) on CPU implementations, where
   * more workgroups only add overhead. 1 disables splitting.
   */
  readonly targetWorkgroups?: number;
  /**
   * How a call of one query (a decode step) runs in `fused` mode:
   * - "subgroup" (default where the device granted the `subgroups` feature and the shape allows it:
   *   a head size that is a multiple of 4, a rotary dimension that is a multiple of 4, of 8 with the
   *   half-split layout): lanes of a subgroup read each key and value row together as vec4s and sum
   *   their partial scores with subgroup shuffles;
   * - "key-parallel" (default otherwise, where the head size is a multiple of 4 and a workgroup's
   *   memory holds the queries and the slices' partial results): each invocation scores a whole key;
   * - "query-tiled", the kernel every other call uses, whose invocations share out the queries and so
   *   leave most of a workgroup idle for one query.
   * Same results up to float32 rounding. Asking for one that cannot run is refused with the reason.
   */
  readonly singleQueryKernel?: SingleQueryKernel;
  /**
   * Read group-level keys from a second copy of the keys instead of rotating each one back from its
   * copy at j on every call: `keys` then holds 2 x contextSize rows, rows [0, contextSize) key j
   * rotated at j and rows [contextSize, 2 contextSize) key j rotated at its group position floor(j/G)
   * (written once, when the key is appended). The KV cache grows by half; each group-level key then
   * costs one row read, as a neighbor key does, instead of a row read, two RoPE table rows and the
   * arithmetic, which is what separates Self-Extend from plain attention where compute rather than
   * memory is short (CPU implementations). Fused mode only; with G = 1 (no group level) the second
   * copy is neither needed nor read. Default false.
   */
  readonly cachedGroupKeys?: boolean;
}

/** See {@link SelfExtendAttentionKernelOptions.singleQueryKernel}. */
export type SingleQueryKernel = "subgroup" | "key-parallel" | "query-tiled";

const singleQueryKernels: readonly SingleQueryKernel[] = ["subgroup", "key-parallel", "query-tiled"];

/** A split never covers fewer key tiles than this: below it the merge costs more than it saves. */
export const minimumTilesPerSplit = 4;

/** Whether the adapter is a CPU implementation (Mesa llvmpipe/lavapipe, SwiftShader). */
export function isCpuAdapter(context: Pick<WebGpuContext, "adapterDescription">): boolean {
  return /llvmpipe|lavapipe|swiftshader|\bcpu\b/i.test(context.adapterDescription);
}

/** 512 workgroups on a GPU (a few per multiprocessor on large ones); 1 on CPU implementations. */
export function defaultTargetWorkgroups(context: Pick<WebGpuContext, "adapterDescription">): number {
  return isCpuAdapter(context) ? 1 : 512;
}

/** How one call's keys are split (see {@link SelfExtendAttentionKernelOptions.targetWorkgroups}). */
export interface KeySplitPlan {
  readonly splitCount: number;
  /** A multiple of the key tile. */
  readonly keysPerSplit: number;
}

export interface AttentionCall {
  readonly queryStart: number;
  readonly queryCount: number;
  readonly keyCount: number;
}

export interface AttentionBuffers {
  readonly queries: GPUBuffer;
  readonly keys: GPUBuffer;
  readonly values: GPUBuffer;
  readonly output: GPUBuffer;
  /** Required by the `neighbor-only` and `group-only` modes: [queryCount, headCount]. */
  readonly logSumExp?: GPUBuffer;
}

/** The kernel's uniform: queryStart, queryCount, keyCount, scale, keysPerSplit, splitCount (+ padding). */
const callParameterBytes = 32;

function floorPowerOfTwo(value: number): number {
  return 2 ** Math.floor(Math.log2(value));
}

/**
 * Picks tile sizes from the device limits: 64 invocations when allowed (enough to stage a tile
 * quickly, small enough for CPU implementations' SIMD widths), and as many keys per tile as three
 * tile arrays (keys, group-level keys, values) fit in workgroup memory, at most 32.
 */
export function chooseAttentionTiles(
  limits: KernelLimits,
  shape: AttentionShape,
  plain: boolean,
  overrides: Partial<AttentionTiles> = {},
): AttentionTiles {
  const headsPerKv = shape.headCount / shape.kvHeadCount;
  const largestWorkgroup = Math.min(
    limits.maxComputeInvocationsPerWorkgroup,
    limits.maxComputeWorkgroupSizeX,
  );
  if (headsPerKv > largestWorkgroup) {
    throw new WebGpuDeviceError(
      `grouped-query attention with ${headsPerKv} query heads per kv head needs that many invocations per workgroup; the device allows ${largestWorkgroup}`,
    );
  }
  const workgroupSize = overrides.workgroupSize ?? Math.max(headsPerKv, Math.min(64, largestWorkgroup));
  const queryTile = overrides.queryTile ?? Math.max(1, Math.floor(workgroupSize / headsPerKv));
  if (queryTile * headsPerKv > workgroupSize || workgroupSize > largestWorkgroup) {
    throw new SelfExtendConfigError(
      "tiles",
      { workgroupSize, queryTile },
      `do not fit ${headsPerKv} heads per kv head within ${largestWorkgroup} invocations`,
    );
  }
  const bytesPerKey = shape.headSize * 4 * (plain ? 2 : 3);
  const fitting = Math.floor(limits.maxComputeWorkgroupStorageSize / bytesPerKey);
  if (fitting < 1) {
    throw new WebGpuDeviceError(
      `head size ${shape.headSize} needs ${bytesPerKey} bytes of workgroup memory per key; the device has ${limits.maxComputeWorkgroupStorageSize}`,
    );
  }
  const keyTile = overrides.keyTile ?? Math.min(32, floorPowerOfTwo(fitting));
  if (keyTile * bytesPerKey > limits.maxComputeWorkgroupStorageSize) {
    throw new SelfExtendConfigError(
      "tiles.keyTile",
      keyTile,
      `needs more than ${limits.maxComputeWorkgroupStorageSize} bytes of workgroup memory`,
    );
  }
  return { workgroupSize, queryTile, keyTile };
}

/**
 * Workgroup sizes the key-parallel and subgroup kernels try on a GPU, largest first. CPU
 * implementations get 64: larger workgroups buy them nothing and took llvmpipe twice as long to
 * compile.
 */
const singleQueryWorkgroupSizes = [256, 128, 64];

/** The kernel a call of one query runs on, where it is not the query-tiled one. */
interface SingleQueryChoice {
  readonly kind: "key-parallel" | "subgroup";
  readonly workgroupSize: number;
  /** Subgroup kernel: invocations per key row. */
  readonly lanes?: number;
}

/**
 * The single-query kernel for fused kernels (see
 * {@link SelfExtendAttentionKernelOptions.singleQueryKernel}): the subgroup kernel where the device
 * granted `subgroups` and the shape suits it, else the key-parallel kernel where the shape suits it,
 * else the query-tiled kernel (undefined). Workgroups: the largest of 256, 128, 64 invocations the
 * device allows and whose workgroup memory holds the kernel (64 on CPU implementations; the
 * `tiles.workgroupSize` override where given). Asking for a kernel that cannot run is refused with
 * the reason.
 */
function chooseSingleQueryKernel(
  context: Pick<WebGpuContext, "limits" | "adapterDescription" | "subgroupSizes">,
  shape: AttentionShape,
  rotaryDimension: number,
  layout: RopeLayout,
  groupSize: number,
  mode: AttentionKernelMode,
  options: SelfExtendAttentionKernelOptions,
): SingleQueryChoice | undefined {
  const requested = options.singleQueryKernel;
  if (requested !== undefined && !singleQueryKernels.includes(requested)) {
    throw new SelfExtendConfigError(
      "singleQueryKernel",
      requested,
      `must be one of ${singleQueryKernels.map((kernel) => `"${kernel}"`).join(", ")}`,
    );
  }
  if (requested === "query-tiled" || (requested === undefined && mode !== "fused")) return undefined;
  const { limits } = context;
  const largest = Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX);
  const candidates =
    options.tiles?.workgroupSize !== undefined
      ? [options.tiles.workgroupSize]
      : isCpuAdapter(context)
        ? [64]
        : singleQueryWorkgroupSizes;
  const sizes = candidates.filter((size) => size <= largest);
  const smallest = sizes.at(-1) ?? largest;

  if (requested === "subgroup" || requested === undefined) {
    const subgroups = context.subgroupSizes;
    const lanes = subgroups === undefined ? 1 : subgroupLanes(shape.headSize, subgroups.minimum);
    // Every subgroup must be full: the workgroup is a multiple of the largest subgroup size.
    const whole = sizes.filter((size) => subgroups !== undefined && size % subgroups.maximum === 0);
    const bytes = (size: number) => subgroupWorkgroupBytes({ ...shape, workgroupSize: size, lanes });
    const workgroupSize = whole.find((size) => bytes(size) <= limits.maxComputeWorkgroupStorageSize);
    const reason =
      mode !== "fused"
        ? `runs in fused mode only (mode is ${mode})`
        : subgroups === undefined
          ? `needs the subgroups feature, which this device (${context.adapterDescription}) was not granted`
          : (subgroupKernelRefusal(shape.headSize, rotaryDimension, layout) ??
            (whole.length === 0
              ? `needs a workgroup that is a multiple of the largest subgroup (${subgroups.maximum}); got ${sizes.join(", ")}`
              : workgroupSize === undefined
                ? `needs ${bytes(whole.at(-1) as number)} bytes of workgroup memory for this shape; the device has ${limits.maxComputeWorkgroupStorageSize}`
                : undefined));
    if (reason === undefined) return { kind: "subgroup", workgroupSize: workgroupSize as number, lanes };
    if (requested === "subgroup") throw new SelfExtendConfigError("singleQueryKernel", requested, reason);
  }

  const bytes = (size: number) => keyParallelWorkgroupBytes({ ...shape, groupSize, workgroupSize: size });
  const reason =
    mode !== "fused"
      ? `runs in fused mode only (mode is ${mode})`
      : shape.headSize % 4 !== 0 || shape.headSize / 4 > smallest
        ? `needs a head size that is a multiple of 4 and at most 4 x ${smallest} invocations; got ${shape.headSize}`
        : rotaryDimension % 4 !== 0
          ? `needs a rotary dimension that is a multiple of 4 (it reads RoPE rows as vec4s); got ${rotaryDimension}`
          : sizes.some((size) => bytes(size) <= limits.maxComputeWorkgroupStorageSize)
            ? undefined
            : `needs ${bytes(smallest)} bytes of workgroup memory for this shape; the device has ${limits.maxComputeWorkgroupStorageSize}`;
  if (reason === undefined) {
    const workgroupSize = sizes.find(
      (size) => bytes(size) <= limits.maxComputeWorkgroupStorageSize,
    ) as number;
    return { kind: "key-parallel", workgroupSize };
  }
  if (requested === "key-parallel") throw new SelfExtendConfigError("singleQueryKernel", requested, reason);
  return undefined;
}

/** Largest position a session of `contextSize` tokens rotates anything to. */
export function largestRotatedPosition(contextSize: number, config: SelfExtendConfig): number {
  return Math.max(contextSize - 1, groupQueryPosition(contextSize - 1, config));
}

/** The fused kernel's key-split merge: its pipeline and the partial results it reads. */
interface KeySplitMerge {
  readonly pipeline: GPUComputePipeline;
  readonly workgroupSize: number;
  /** [splitCount, queryCount, headCount, headSize] */
  readonly output: GPUBuffer;
  /** [splitCount, queryCount, headCount] */
  readonly logSumExp: GPUBuffer;
}

export class SelfExtendAttentionKernel {
  readonly tiles: AttentionTiles;
  readonly mode: AttentionKernelMode;
  readonly ropeTable: GpuRopeTable;
  /** See {@link SelfExtendAttentionKernelOptions.targetWorkgroups}. */
  readonly targetWorkgroups: number;
  /**
   * Whether calls read group-level keys from the second copy in `keys` (cachedGroupKeys asked for,
   * and G > 1), so `keys` must hold 2 x contextSize rows.
   */
  readonly readsCachedGroupKeys: boolean;
  private readonly ownsRopeTable: boolean;
  private readonly bindGroups: BindGroupCache;

  /** What a call of one query runs on (see {@link SelfExtendAttentionKernelOptions.singleQueryKernel}). */
  get singleQueryKernel(): SingleQueryKernel {
    return this.singleQuery?.kind ?? "query-tiled";
  }

  /** The subgroup or key-parallel kernel's invocations per workgroup (undefined when calls of one query run query-tiled). */
  get singleQueryWorkgroupSize(): number | undefined {
    return this.singleQuery?.workgroupSize;
  }

  /** The key-parallel kernel's invocations per workgroup (undefined unless calls of one query run on it). */
  get keyParallelWorkgroupSize(): number | undefined {
    return this.singleQuery?.kind === "key-parallel" ? this.singleQuery.workgroupSize : undefined;
  }

  /** The subgroup kernel's invocations per key row (undefined unless calls of one query run on it). */
  get subgroupLanes(): number | undefined {
    return this.singleQuery?.lanes;
  }

  private constructor(
    private readonly context: WebGpuContext,
    readonly options: SelfExtendAttentionKernelOptions,
    tiles: AttentionTiles,
    private readonly pipeline: GPUComputePipeline,
    ropeTable: GpuRopeTable,
    ownsRopeTable: boolean,
    private readonly scale: number,
    targetWorkgroups: number,
    private readonly merge: KeySplitMerge | undefined,
    /** The subgroup or key-parallel kernel; absent when one query runs query-tiled. */
    private readonly singleQuery: (SingleQueryChoice & { readonly pipeline: GPUComputePipeline }) | undefined,
  ) {
    this.bindGroups = new BindGroupCache(context.device);
    this.tiles = tiles;
    this.mode = options.mode ?? "fused";
    this.ropeTable = ropeTable;
    this.ownsRopeTable = ownsRopeTable;
    this.targetWorkgroups = targetWorkgroups;
    this.readsCachedGroupKeys = options.cachedGroupKeys === true && options.config.groupSize !== 1;
  }

  static async create(
    context: WebGpuContext,
    options: SelfExtendAttentionKernelOptions,
  ): Promise<SelfExtendAttentionKernel> {
    const shape = validateAttentionShape(options.shape);
    const config = validateSelfExtendConfig(options.config);
    const rotaryDimension = options.rope.rotaryDimension ?? shape.headSize;
    const plain = config.groupSize === 1;
    const { logitSoftCap, slidingWindow } = options;
    if (logitSoftCap !== undefined && !(Number.isFinite(logitSoftCap) && logitSoftCap > 0)) {
      throw new SelfExtendConfigError("logitSoftCap", logitSoftCap, "must be a positive finite number");
    }
    if (slidingWindow !== undefined) {
      if (!(Number.isInteger(slidingWindow) && slidingWindow > 0)) {
        throw new SelfExtendConfigError("slidingWindow", slidingWindow, "must be a positive integer");
      }
      if (!plain) {
        throw new SelfExtendConfigError(
          "slidingWindow",
          slidingWindow,
          `needs groupSize 1 (a sliding-window layer keeps exact positions); got groupSize ${config.groupSize}`,
        );
      }
    }
    const tiles = chooseAttentionTiles(context.limits, shape, plain, options.tiles);
    const mode = options.mode ?? "fused";
    const { cachedGroupKeys } = options;
    if (cachedGroupKeys !== undefined && typeof cachedGroupKeys !== "boolean") {
      throw new SelfExtendConfigError("cachedGroupKeys", cachedGroupKeys, "must be true or false");
    }
    if (cachedGroupKeys === true && mode !== "fused") {
      throw new SelfExtendConfigError(
        "cachedGroupKeys",
        cachedGroupKeys,
        `needs the fused mode; got ${mode}`,
      );
    }
    const groupKeyRows = cachedGroupKeys === true && !plain ? { capacity: options.contextSize } : undefined;
    const singleQueryChoice = chooseSingleQueryKernel(
      context,
      shape,
      rotaryDimension,
      options.rope.layout,
      config.groupSize,
      mode,
      options,
    );
    const { device } = context;
    const positions = largestRotatedPosition(options.contextSize, config) + 1;
    const ropeTable =
      options.ropeTable ??
      createGpuRopeTable(
        device,
        {
          layout: options.rope.layout,
          headSize: shape.headSize,
          rotaryDimension,
          base: options.rope.base,
          linearScalingFactor: options.rope.linearScalingFactor,
          frequencyFactors: options.rope.frequencyFactors,
        },
        positions,
      );
    if (ropeTable.table.positionCount < positions) {
      throw new SelfExtendConfigError(
        "ropeTable",
        ropeTable.table.positionCount,
        `must cover ${positions} positions`,
      );
    }
    const code = selfExtendAttentionShader({
      ...shape,
      rotaryDimension,
      layout: options.rope.layout,
      groupSize: config.groupSize,
      neighborWindow: config.neighborWindow,
      ...tiles,
      mode,
      logitSoftCap,
      slidingWindow,
      groupKeyRows,
    });
    const pipeline = await withErrorScopes(device, "compiling the Self-Extend attention kernel", () =>
      device.createComputePipeline({
        layout: "auto",
        compute: {
          module: device.createShaderModule({ code, label: "self-extend attention" }),
          entryPoint: "main",
        },
        label: `self-extend attention (${mode})`,
      }),
    );
    let targetWorkgroups =
      mode === "fused" ? (options.targetWorkgroups ?? defaultTargetWorkgroups(context)) : 1;
    if (!Number.isInteger(targetWorkgroups) || targetWorkgroups < 1) {
      throw new SelfExtendConfigError("targetWorkgroups", targetWorkgroups, "must be a positive integer");
    }
    // The partial outputs must fit one storage binding: ask for fewer workgroups until they do.
    const partialBytes = (target: number) =>
      target * tiles.queryTile * (shape.headCount / shape.kvHeadCount) * shape.headSize * 4;
    const largestBinding = Math.min(context.limits.maxStorageBufferBindingSize, context.limits.maxBufferSize);
    while (targetWorkgroups > 1 && partialBytes(targetWorkgroups) > largestBinding) {
      targetWorkgroups = Math.floor(targetWorkgroups / 2);
    }
    let merge: KeySplitMerge | undefined;
    if (mode === "fused") {
      // Splits are planned so that splits x query tiles x kv heads <= targetWorkgroups, which bounds
      // the partial rows: splits x queryCount x headCount <= targetWorkgroups x queryTile x (heads per kv).
      const rows = targetWorkgroups * tiles.queryTile * (shape.headCount / shape.kvHeadCount);
      const workgroupSize = Math.min(64, context.limits.maxComputeInvocationsPerWorkgroup);
      merge = {
        workgroupSize,
        pipeline: await withErrorScopes(device, "compiling the key-split merge", () =>
          device.createComputePipeline({
            layout: "auto",
            compute: {
              module: device.createShaderModule({
                code: mergeKeySplitsShader(shape.headCount, shape.headSize, workgroupSize),
                label: "self-extend attention key-split merge",
              }),
              entryPoint: "main",
            },
            label: "self-extend attention key-split merge",
          }),
        ),
        output: createStorageBuffer(device, rows * shape.headSize * 4),
        logSumExp: createStorageBuffer(device, rows * 4),
      };
    }
    let singleQuery: (SingleQueryChoice & { readonly pipeline: GPUComputePipeline }) | undefined;
    if (singleQueryChoice !== undefined) {
      const shaderOptions = {
        ...shape,
        rotaryDimension,
        layout: options.rope.layout,
        groupSize: config.groupSize,
        neighborWindow: config.neighborWindow,
        workgroupSize: singleQueryChoice.workgroupSize,
        logitSoftCap,
        slidingWindow,
        groupKeyRows,
      };
      const code =
        singleQueryChoice.kind === "subgroup"
          ? subgroupAttentionShader({ ...shaderOptions, lanes: singleQueryChoice.lanes as number })
          : keyParallelAttentionShader(shaderOptions);
      const pipeline = await withErrorScopes(
        device,
        `compiling the ${singleQueryChoice.kind} Self-Extend attention kernel`,
        () =>
          device.createComputePipeline({
            layout: "auto",
            compute: {
              module: device.createShaderModule({ code, label: "self-extend attention, one query" }),
              entryPoint: "main",
            },
            label: `self-extend attention (fused, ${singleQueryChoice.kind})`,
          }),
      );
      singleQuery = { ...singleQueryChoice, pipeline };
    }
    return new SelfExtendAttentionKernel(
      context,
      options,
      tiles,
      pipeline,
      ropeTable,
      options.ropeTable === undefined,
      options.scale ?? 1 / Math.sqrt(shape.headSize),
      targetWorkgroups,
      merge,
      singleQuery,
    );
  }

  /** How a call's keys are split across workgroups (one split unless the call under-fills the device). */
  planKeySplits(call: AttentionCall): KeySplitPlan {
    const { keyTile, queryTile } = this.tiles;
    const keyTiles = Math.max(1, Math.ceil(call.keyCount / keyTile));
    const workgroups = Math.ceil(call.queryCount / queryTile) * this.options.shape.kvHeadCount;
    // The merge runs one invocation per output value in a one-dimensional grid.
    const { headCount, headSize } = this.options.shape;
    const mergeWorkgroups = Math.ceil(
      (call.queryCount * headCount * headSize) / (this.merge?.workgroupSize ?? 1),
    );
    if (this.merge === undefined || mergeWorkgroups > this.context.limits.maxComputeWorkgroupsPerDimension) {
      return { splitCount: 1, keysPerSplit: keyTiles * keyTile };
    }
    const wanted = Math.min(
      Math.floor(this.targetWorkgroups / workgroups),
      Math.floor(keyTiles / minimumTilesPerSplit),
      this.context.limits.maxComputeWorkgroupsPerDimension,
    );
    const tilesPerSplit = Math.ceil(keyTiles / Math.max(1, wanted));
    return { splitCount: Math.ceil(keyTiles / tilesPerSplit), keysPerSplit: tilesPerSplit * keyTile };
  }

  /** A uniform buffer for one call; a forward pass reuses it for every layer of a block. */
  createCallParameters(call: AttentionCall): GPUBuffer {
    const buffer = this.context.device.createBuffer({
      size: callParameterBytes,
      usage: uniformUsage,
      label: "attention call",
    });
    try {
      this.writeCallParameters(buffer, call);
    } catch (error) {
      buffer.destroy();
      throw error;
    }
    return buffer;
  }

  /**
   * Checks a call and writes its parameters into `buffer` (one of {@link createCallParameters}'s, or
   * any 32-byte uniform buffer the caller keeps), through the queue: work submitted after this
   * sees them.
   */
  writeCallParameters(buffer: GPUBuffer, call: AttentionCall): void {
    const { queryStart, queryCount, keyCount } = call;
    if (!(queryCount >= 1) || queryStart + queryCount > keyCount || queryStart < 0) {
      throw new RangeError(
        `attention call needs 1 <= queryCount and queryStart + queryCount <= keyCount; got ${JSON.stringify(call)}`,
      );
    }
    if (keyCount > this.options.contextSize) {
      throw new RangeError(
        `keyCount ${keyCount} exceeds the kernel's contextSize ${this.options.contextSize}`,
      );
    }
    const workgroups = Math.ceil(queryCount / this.tiles.queryTile);
    if (workgroups > this.context.limits.maxComputeWorkgroupsPerDimension) {
      throw new RangeError(
        `${queryCount} queries need ${workgroups} workgroups; the device allows ${this.context.limits.maxComputeWorkgroupsPerDimension} per dimension: evaluate in smaller blocks`,
      );
    }
    const iterations = this.estimatedLoopIterations(keyCount);
    if (iterations > this.context.loopIterationLimit) {
      throw new WebGpuDeviceError(
        `${keyCount} keys need about ${iterations} loop iterations per shader invocation; this driver (${this.context.adapterDescription}) stops invocations after ${this.context.loopIterationLimit}, which would give wrong results silently. Use a Vulkan or hardware adapter for contexts this long.`,
      );
    }
    const { splitCount, keysPerSplit } = this.planKeySplits(call);
    const words = new ArrayBuffer(callParameterBytes);
    new Uint32Array(words, 0, 3).set([queryStart, queryCount, keyCount]);
    new Float32Array(words, 12, 1)[0] = this.scale;
    new Uint32Array(words, 16, 2).set([keysPerSplit, splitCount]);
    this.context.device.queue.writeBuffer(buffer, 0, words);
  }

  /** Loop iterations of one invocation over `keyCount` keys: per tile, the staging loop, then a score and an accumulation loop over its keys. */
  estimatedLoopIterations(keyCount: number): number {
    const { keyTile, workgroupSize } = this.tiles;
    const vectors = Math.ceil(this.options.shape.headSize / 4);
    const tiles = Math.ceil(keyCount / keyTile);
    // Plus the two query-rotation loops of 4 * vectors iterations each.
    return tiles * (1 + Math.ceil((keyTile * vectors) / workgroupSize)) + 2 * keyCount + 8 * vectors;
  }

  /** Records the kernel into an open compute pass. */
  encode(
    pass: GPUComputePassEncoder,
    buffers: AttentionBuffers,
    call: AttentionCall,
    parameters?: GPUBuffer,
  ): void {
    const uniform = parameters ?? this.createCallParameters(call);
    const bound = [
      uniform,
      buffers.queries,
      buffers.keys,
      buffers.values,
      this.ropeTable.buffer,
      buffers.output,
    ];
    if (this.mode !== "fused") {
      if (!buffers.logSumExp) throw new RangeError(`mode ${this.mode} needs a logSumExp buffer`);
      bound.push(buffers.logSumExp);
    } else {
      const merge = this.merge as KeySplitMerge;
      bound.push(merge.output, merge.logSumExp);
    }
    const keyBytes =
      this.options.contextSize * this.options.shape.kvHeadCount * this.options.shape.headSize * 4;
    if (this.readsCachedGroupKeys && buffers.keys.size < 2 * keyBytes) {
      throw new RangeError(
        `a kernel with cachedGroupKeys needs keys of 2 x contextSize rows (${2 * keyBytes} bytes: each key at j, then at floor(j/G)); got ${buffers.keys.size} bytes`,
      );
    }
    // One query: the subgroup or key-parallel kernel where there is one (same bindings, same outputs).
    const pipeline =
      call.queryCount === 1 && this.singleQuery !== undefined ? this.singleQuery.pipeline : this.pipeline;
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, this.bindGroups.get(pipeline, bound));
    const { splitCount } = this.planKeySplits(call);
    pass.dispatchWorkgroups(
      Math.ceil(call.queryCount / this.tiles.queryTile),
      this.options.shape.kvHeadCount,
      splitCount,
    );
    if (splitCount > 1 && this.merge !== undefined) {
      // Each dispatch of a compute pass sees the writes of the previous ones.
      const merge = this.merge;
      pass.setPipeline(merge.pipeline);
      pass.setBindGroup(
        0,
        this.bindGroups.get(merge.pipeline, [uniform, merge.output, merge.logSumExp, buffers.output]),
      );
      const { headCount, headSize } = this.options.shape;
      pass.dispatchWorkgroups(Math.ceil((call.queryCount * headCount * headSize) / merge.workgroupSize));
    }
  }

  /** Encodes and submits one call on its own command buffer. */
  run(buffers: AttentionBuffers, call: AttentionCall): void {
    const parameters = this.createCallParameters(call);
    submitComputePass(this.context.device, (pass) => this.encode(pass, buffers, call, parameters));
    // Destroying a buffer that submitted work uses frees it once that work is done.
    parameters.destroy();
  }

  destroy(): void {
    if (this.ownsRopeTable) this.ropeTable.buffer.destroy();
    this.merge?.output.destroy();
    this.merge?.logSumExp.destroy();
  }
}

/** The log-sum-exp merge of the two-pass baseline (benchmark only). */
export class LogSumExpMergeKernel {
  private constructor(
    private readonly context: WebGpuContext,
    private readonly pipeline: GPUComputePipeline,
    private readonly workgroupSize: number,
  ) {}

  static async create(context: WebGpuContext, headSize: number): Promise<LogSumExpMergeKernel> {
    const workgroupSize = Math.min(64, context.limits.maxComputeInvocationsPerWorkgroup);
    const { device } = context;
    const pipeline = await withErrorScopes(device, "compiling the log-sum-exp merge", () =>
      device.createComputePipeline({
        layout: "auto",
        compute: {
          module: device.createShaderModule({ code: mergeLogSumExpShader(headSize, workgroupSize) }),
          entryPoint: "main",
        },
      }),
    );
    return new LogSumExpMergeKernel(context, pipeline, workgroupSize);
  }

  encode(
    pass: GPUComputePassEncoder,
    rows: number,
    neighbor: { output: GPUBuffer; logSumExp: GPUBuffer },
    group: { output: GPUBuffer; logSumExp: GPUBuffer },
    output: GPUBuffer,
  ): void {
    const { device } = this.context;
    const uniform = device.createBuffer({ size: 16, usage: uniformUsage, mappedAtCreation: true });
    new Uint32Array(uniform.getMappedRange(), 0, 1)[0] = rows;
    uniform.unmap();
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(
      0,
      device.createBindGroup({
        layout: this.pipeline.getBindGroupLayout(0),
        entries: [uniform, neighbor.output, neighbor.logSumExp, group.output, group.logSumExp, output].map(
          (buffer, binding) => ({
            binding,
            resource: { buffer },
          }),
        ),
      }),
    );
    pass.dispatchWorkgroups(Math.ceil(rows / this.workgroupSize));
  }
}
