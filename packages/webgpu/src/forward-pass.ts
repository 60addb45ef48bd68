/**
 * A Llama-family forward pass on WebGPU (llama, mistral, qwen2, phi3, gemma, gemma2, gemma3), block by
 * block, mirroring the reference backend's: embedding, then per layer RMSNorm -> q/k/v (+ biases)
 * -> RoPE on the new keys -> fused Self-Extend attention -> output projection (+ residual) ->
 * RMSNorm -> SwiGLU -> down projection (+ residual), then the final norm and the classifier for the
 * rows asked for.
 *
 * Gemma's departures are settled when the kernels are compiled, not per token: the embedding scale,
 * GeGLU, the score scale and soft-cap and the final soft-cap are constants of their kernels; Gemma
 * 2's post-norms normalise the attention and feed-forward outputs into the residual; its local
 * layers run a second attention kernel, plain (exact positions) with the sliding-window mask,
 * while the global layers get Self-Extend.
 *
 * The KV cache holds one copy of each key, rotated at its own position j, written in place by the
 * key projection and the RoPE kernel; the attention kernel derives the group-level key from it.
 * A whole block is one compute pass and one submission; the only read-back is the logits.
 */
import { type SelfExtendConfig, validateSelfExtendConfig } from "@self-extend/core";
import {
  globalRopeOptions,
  type LlamaModelDescription,
  type LlamaWeights,
  numberToFloat16Bits,
} from "@self-extend/models";
import { type WebGpuContext, WebGpuDeviceError } from "./device.js";
import {
  embeddingShader,
  gatedActivationShader,
  headNormShader,
  type MatmulKernel,
  matmulShader,
  matmulTileSide,
  matrixVectorLayout,
  matrixVectorShader,
  rmsNormShader,
  ropeShader,
  rowRmsNormShader,
  softCapShader,
  tiledMatmulShader,
  tiledMatmulSmallestRows,
  type WeightPrecision,
} from "./forward-pass.wgsl.js";
import {
  BindGroupCache,
  createReadBackBuffer,
  createStorageBuffer,
  readFloat32,
  storageUsage,
  uniformUsage,
  uploadFloat32,
  withErrorScopes,
} from "./gpu-buffers.js";
import { createGpuRopeTable, type GpuRopeTable } from "./rope-table.js";
import { largestRotatedPosition, SelfExtendAttentionKernel } from "./self-extend-attention-kernel.js";

interface GpuLayerWeights {
  readonly attentionNorm: GPUBuffer;
  readonly query: GPUBuffer;
  readonly key: GPUBuffer;
  readonly value: GPUBuffer;
  readonly output: GPUBuffer;
  readonly queryBias?: GPUBuffer;
  readonly keyBias?: GPUBuffer;
  readonly valueBias?: GPUBuffer;
  readonly feedForwardNorm: GPUBuffer;
  readonly gate: GPUBuffer;
  readonly up: GPUBuffer;
  readonly down: GPUBuffer;
  /** Gemma 2: RMSNorm weights of the attention and feed-forward outputs. */
  readonly postAttentionNorm?: GPUBuffer;
  readonly postFeedForwardNorm?: GPUBuffer;
  /** Gemma 3: [headSize] RMSNorm weights of every query head and every key head. */
  readonly queryNorm?: GPUBuffer;
  readonly keyNorm?: GPUBuffer;
}

/**
 * Consecutive rows firstRow .. firstRow + rowCount - 1 of a vocabulary-sized matrix (the token
 * embedding, the classifier). A real vocabulary times the embedding width can exceed what one
 * storage binding may hold (151936 x 896 float32 is 545 MB; lavapipe binds 128 MiB), so those two
 * matrices are uploaded as slabs of whole rows, each within the device's binding limit, and the
 * kernels run once per slab. Every other tensor is one buffer.
 */
export interface GpuRowSlab {
  readonly buffer: GPUBuffer;
  readonly firstRow: number;
  readonly rowCount: number;
}

/** Model weights uploaded once and shared by every session of the model. */
export interface GpuModelWeights {
  readonly description: LlamaModelDescription;
  readonly tokenEmbedding: readonly GpuRowSlab[];
  readonly outputNorm: GPUBuffer;
  readonly output: readonly GpuRowSlab[];
  readonly layers: readonly GpuLayerWeights[];
  /**
   * How the matrices and the token embedding are stored (norm weights and biases are always
   * float32). float16 needs a device with `shader-f16`.
   */
  readonly precision: WeightPrecision;
  /** Total bytes uploaded. */
  readonly bytes: number;
  destroy(): void;
}

/** IEEE half bit patterns of `data`, rounded to nearest even (ggml's F16 conversion). */
export function toFloat16Bits(data: Float32Array): Uint16Array {
  const bits = new Uint16Array(data.length);
  for (let index = 0; index < data.length; index++) bits[index] = numberToFloat16Bits(data[index]);
  return bits;
}

/**
 * Uploads the weights, refusing up front any tensor larger than one storage binding may be on
 * this device (a clear error instead of a validation failure deep in a forward pass), except the
 * token embedding and the classifier, which are split into row slabs (GpuRowSlab). With
 * `precision: "float16"` (the device must have `shader-f16`) the matrices and the token embedding
 * are rounded to IEEE half; norm weights and biases stay float32.
 */
export async function uploadLlamaWeights(
  context: WebGpuContext,
  weights: LlamaWeights,
  precision: WeightPrecision = "float32",
): Promise<GpuModelWeights> {
  const { device, limits } = context;
  if (precision === "float16" && !context.float16) {
    throw new WebGpuDeviceError(
      `float16 weights need the shader-f16 feature, which this device (${context.adapterDescription}) was not granted`,
    );
  }
  const largestBinding = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const created: GPUBuffer[] = [];
  let bytes = 0;
  const tooLarge = (name: string, byteLength: number) =>
    new WebGpuDeviceError(
      `tensor ${name} has ${byteLength} bytes; this device binds at most ${largestBinding} bytes per storage buffer (maxStorageBufferBindingSize), so the model is too large for it`,
    );
  const upload = (data: Float32Array, name: string, matrix = false): GPUBuffer => {
    const half = matrix && precision === "float16";
    const byteLength = half ? data.length * 2 : data.byteLength;
    if (byteLength > largestBinding) throw tooLarge(name, byteLength);
    let buffer: GPUBuffer;
    if (half) {
      // Padded to an even count (WebGPU copies whole 4-byte words); the pad is never read.
      const bits = new Uint16Array(Math.ceil(data.length / 2) * 2);
      bits.set(toFloat16Bits(data));
      buffer = device.createBuffer({ size: bits.byteLength, usage: storageUsage, label: name });
      device.queue.writeBuffer(buffer, 0, bits.buffer, 0, bits.byteLength);
    } else {
      buffer = uploadFloat32(device, data, name);
    }
    created.push(buffer);
    bytes += byteLength;
    return buffer;
  };
  const { vocabularySize, embeddingSize } = weights.description;
  const uploadRows = (data: Float32Array, name: string): GpuRowSlab[] => {
    const rowBytes = embeddingSize * (precision === "float16" ? 2 : 4);
    // Whole rows only; with float16 an odd element count is padded by 2 bytes, which still fits
    // (the binding limit is a multiple of 4, an odd count of halves 2 short of one).
    const rowsPerSlab = Math.floor(largestBinding / rowBytes);
    if (rowsPerSlab < 1) throw tooLarge(`${name} row`, rowBytes);
    const slabs: GpuRowSlab[] = [];
    for (let firstRow = 0; firstRow < vocabularySize; firstRow += rowsPerSlab) {
      const rowCount = Math.min(rowsPerSlab, vocabularySize - firstRow);
      const rows = data.subarray(firstRow * embeddingSize, (firstRow + rowCount) * embeddingSize);
      const label =
        rowCount === vocabularySize ? name : `${name} rows ${firstRow}..${firstRow + rowCount - 1}`;
      slabs.push({ buffer: upload(rows, label, true), firstRow, rowCount });
    }
    return slabs;
  };
  try {
    return await withErrorScopes(device, "uploading the model weights", () => {
      const tokenEmbedding = uploadRows(weights.tokenEmbedding, "token_embd");
      const output =
        weights.output === weights.tokenEmbedding ? tokenEmbedding : uploadRows(weights.output, "output");
      return {
        description: weights.description,
        precision,
        tokenEmbedding,
        output,
        outputNorm: upload(weights.outputNorm, "output_norm"),
        layers: weights.layers.map((layer, index) => ({
          attentionNorm: upload(layer.attentionNorm, `blk.${index}.attn_norm`),
          query: upload(layer.query, `blk.${index}.attn_q`, true),
          key: upload(layer.key, `blk.${index}.attn_k`, true),
          value: upload(layer.value, `blk.${index}.attn_v`, true),
          output: upload(layer.output, `blk.${index}.attn_output`, true),
          queryBias: layer.queryBias && upload(layer.queryBias, `blk.${index}.attn_q.bias`),
          keyBias: layer.keyBias && upload(layer.keyBias, `blk.${index}.attn_k.bias`),
          valueBias: layer.valueBias && upload(layer.valueBias, `blk.${index}.attn_v.bias`),
          feedForwardNorm: upload(layer.feedForwardNorm, `blk.${index}.ffn_norm`),
          gate: upload(layer.gate, `blk.${index}.ffn_gate`, true),
          up: upload(layer.up, `blk.${index}.ffn_up`, true),
          down: upload(layer.down, `blk.${index}.ffn_down`, true),
          postAttentionNorm:
            layer.postAttentionNorm && upload(layer.postAttentionNorm, `blk.${index}.post_attention_norm`),
          postFeedForwardNorm:
            layer.postFeedForwardNorm && upload(layer.postFeedForwardNorm, `blk.${index}.post_ffw_norm`),
          queryNorm: layer.queryNorm && upload(layer.queryNorm, `blk.${index}.attn_q_norm`),
          keyNorm: layer.keyNorm && upload(layer.keyNorm, `blk.${index}.attn_k_norm`),
        })),
        bytes,
        destroy: () => {
          for (const buffer of created) buffer.destroy();
        },
      };
    });
  } catch (error) {
    for (const buffer of created) buffer.destroy();
    throw error;
  }
}

const workgroupSize = 64;

/**
 * Distinct uniforms a forward pass keeps before starting over: a decode step adds the few that
 * hold its position (the key/value rows it writes, RoPE's first position), the rest repeat.
 */
const uniformCacheLimit = 512;

/**
 * A uniform's 32-bit words, u32 except the one at `floatIndex` (an f32), padded to WebGPU's
 * 16-byte uniform granularity.
 */
function uniformWords(words: readonly number[], floatIndex?: number): ArrayBuffer {
  const packed = new ArrayBuffer(Math.max(16, Math.ceil((words.length * 4) / 16) * 16));
  const integers = new Uint32Array(packed);
  const floats = new Float32Array(packed);
  words.forEach((word, index) => {
    if (index === floatIndex) floats[index] = word;
    else integers[index] = word;
  });
  return packed;
}

/** The pipelines of the non-attention kernels, compiled once per model. */
export class ForwardPassKernels {
  private constructor(
    readonly embedding: GPUComputePipeline,
    readonly rmsNorm: GPUComputePipeline,
    readonly matmul: GPUComputePipeline,
    /**
     * The "tiled" kind's kernels (matrix-vector, 16 x 16 tiles, and a workgroup-per-row RMSNorm);
     * absent for "per-output".
     */
    readonly tiled:
      | {
          readonly matrixVector: GPUComputePipeline;
          readonly blocks: GPUComputePipeline;
          readonly rowNorm: GPUComputePipeline;
        }
      | undefined,
    /** SwiGLU, or GeGLU for Gemma. */
    readonly gatedActivation: GPUComputePipeline,
    readonly rope: GPUComputePipeline,
    /** Gemma 2's final logit soft-cap; absent for models without one. */
    readonly finalSoftCap: GPUComputePipeline | undefined,
    /** Gemma 3's per-head query/key RMSNorm; absent for models without it. */
    readonly headNorm: GPUComputePipeline | undefined,
  ) {}

  static async create(
    context: WebGpuContext,
    description: LlamaModelDescription,
    precision: WeightPrecision = "float32",
    matmulKernel: MatmulKernel = "per-output",
  ): Promise<ForwardPassKernels> {
    const { device } = context;
    const size = Math.min(workgroupSize, context.limits.maxComputeInvocationsPerWorkgroup);
    const compile = (code: string, label: string) =>
      withErrorScopes(device, `compiling the ${label} kernel`, () =>
        device.createComputePipeline({
          layout: "auto",
          label,
          compute: { module: device.createShaderModule({ code, label }), entryPoint: "main" },
        }),
      );
    const activation = description.feedForwardActivation ?? "silu";
    const finalCap = description.finalLogitSoftCap;
    return new ForwardPassKernels(
      await compile(embeddingShader(size, precision, description.embeddingScale), "embedding"),
      await compile(rmsNormShader(size), "RMSNorm"),
      await compile(matmulShader(size, precision), "matmul"),
      matmulKernel === "tiled"
        ? {
            matrixVector: await compile(matrixVectorShader(precision), "matrix-vector"),
            blocks: await compile(tiledMatmulShader(precision), "tiled matmul"),
            rowNorm: await compile(rowRmsNormShader(), "row-parallel RMSNorm"),
          }
        : undefined,
      await compile(gatedActivationShader(size, activation), activation === "gelu-tanh" ? "GeGLU" : "SwiGLU"),
      await compile(
        ropeShader(size, description.headSize, description.rotaryDimension, description.ropeLayout),
        "RoPE",
      ),
      finalCap === undefined ? undefined : await compile(softCapShader(size, finalCap), "final soft-cap"),
      description.hasQueryKeyNorms === true ? await compile(headNormShader(size), "head RMSNorm") : undefined,
    );
  }
}

/** The per-session state: KV caches, block work buffers, the attention kernel. */
export class GpuForwardPass {
  private readonly description: LlamaModelDescription;
  private readonly ropeTable: GpuRopeTable;
  /** Gemma 3's local layers' own RoPE table (their base, no scaling); absent: they use ropeTable. */
  private readonly localRopeTable: GpuRopeTable | undefined;
  /** Gemma 3: query and key projections before their per-head RMSNorm. */
  private readonly rawQueries: GPUBuffer | undefined;
  private readonly rawKeys: GPUBuffer | undefined;
  private readonly owned: GPUBuffer[] = [];
  private readonly keyCaches: GPUBuffer[] = [];
  private readonly valueCaches: GPUBuffer[] = [];
  private readonly residual: GPUBuffer;
  private readonly normalized: GPUBuffer;
  private readonly queries: GPUBuffer;
  private readonly attended: GPUBuffer;
  /** An attention or feed-forward output before its post-norm (Gemma 2). */
  private readonly projected: GPUBuffer;
  private readonly gate: GPUBuffer;
  private readonly up: GPUBuffer;
  private readonly logitRows: GPUBuffer;
  private readonly logits: GPUBuffer;
  private readonly tokens: GPUBuffer;
  private readonly identityRows: GPUBuffer;
  private readonly selectedRows: GPUBuffer;
  private readonly noBias: GPUBuffer;
  private readonly workgroupSize: number;
  /**
   * Uniforms by content. They are the same for every block of a size (the two that hold a block's
   * position are kept buffers, below), so a decode step allocates nothing; the cache starts over
   * past {@link uniformCacheLimit} entries.
   */
  private readonly uniforms = new Map<string, GPUBuffer>();
  private readonly bindGroups: BindGroupCache;
  /** The attention kernels' call parameters, rewritten for each block. */
  private readonly attentionParameters: GPUBuffer;
  /**
   * The two uniforms that hold a block's position (RoPE, and the key-norm's cache offset), rewritten
   * for each block: as cached uniforms, each decode step made two buffers and, through them, a new
   * bind group for every dispatch that reads them (a profile of a 1B-shape decode on an H100 put
   * buffer and bind-group creation at about 40% of the JavaScript time of a step).
   */
  private readonly ropeParameters: GPUBuffer;
  private readonly keyNormParameters: GPUBuffer;
  private readonly localAttentionParameters: GPUBuffer | undefined;
  /** Where a decode step's logits row is read back through (mappable memory is costly to allocate per step). */
  private readonly logitsReadBack: GPUBuffer;

  /**
   * Bytes of the KV cache buffers on the device: one key copy where group rotations are derived in
   * the kernel, two in the layers whose attention reads cached group keys.
   */
  get cacheBytes(): number {
    return [...this.keyCaches, ...this.valueCaches].reduce((total, buffer) => total + buffer.size, 0);
  }

  private constructor(
    private readonly context: WebGpuContext,
    private readonly kernels: ForwardPassKernels,
    private readonly weights: GpuModelWeights,
    private readonly attention: SelfExtendAttentionKernel,
    /** The sliding-window layers' kernel (Gemma 2), when the model has such layers. */
    private readonly localAttention: SelfExtendAttentionKernel | undefined,
    localRopeTable: GpuRopeTable | undefined,
    readonly blockSize: number,
    readonly contextSize: number,
    /** The RoPE kernel that also writes each key's group-level copy, when the attention reads one. */
    private readonly groupKeyRope: GPUComputePipeline | undefined,
  ) {
    const { device, limits } = context;
    this.description = weights.description;
    this.ropeTable = attention.ropeTable;
    this.localRopeTable = localRopeTable;
    this.workgroupSize = Math.min(workgroupSize, limits.maxComputeInvocationsPerWorkgroup);
    const { embeddingSize, headCount, kvHeadCount, headSize, feedForwardSize, vocabularySize, layerCount } =
      this.description;
    const largestBinding = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
    const buffer = (elements: number, label: string): GPUBuffer => {
      if (elements * 4 > largestBinding) {
        throw new WebGpuDeviceError(
          `${label} needs ${elements * 4} bytes; this device binds at most ${largestBinding} bytes per storage buffer: use a smaller contextSize or block size`,
        );
      }
      const created = createStorageBuffer(device, elements * 4, label);
      this.owned.push(created);
      return created;
    };
    const kvWidth = kvHeadCount * headSize;
    const localLayers = this.description.slidingWindow?.localLayers;
    for (let layer = 0; layer < layerCount; layer++) {
      // A layer whose attention reads cached group keys keeps each key twice: at j, then at floor(j/G).
      const copies = groupKeyRope !== undefined && localLayers?.[layer] !== true ? 2 : 1;
      this.keyCaches.push(
        buffer(
          copies * contextSize * kvWidth,
          `key cache ${layer}${copies === 2 ? " (with its group-level copy)" : ""}`,
        ),
      );
      this.valueCaches.push(buffer(contextSize * kvWidth, `value cache ${layer}`));
    }
    this.residual = buffer(blockSize * embeddingSize, "residual");
    this.normalized = buffer(blockSize * embeddingSize, "normalized");
    this.queries = buffer(blockSize * headCount * headSize, "queries");
    this.attended = buffer(blockSize * headCount * headSize, "attended");
    this.projected = buffer(
      this.description.hasPostNorms === true ? blockSize * embeddingSize : 1,
      "projected",
    );
    this.gate = buffer(blockSize * feedForwardSize, "gate");
    this.up = buffer(blockSize * feedForwardSize, "up");
    this.logitRows = buffer(blockSize * embeddingSize, "logit rows");
    this.logits = buffer(blockSize * vocabularySize, "logits");
    this.tokens = buffer(blockSize, "tokens");
    this.identityRows = buffer(blockSize, "row indices");
    this.selectedRows = buffer(blockSize, "selected rows");
    this.noBias = buffer(1, "no bias");
    const headNorms = this.description.hasQueryKeyNorms === true;
    this.rawQueries = headNorms
      ? buffer(blockSize * headCount * headSize, "queries before their norm")
      : undefined;
    this.rawKeys = headNorms ? buffer(blockSize * kvWidth, "keys before their norm") : undefined;
    device.queue.writeBuffer(
      this.identityRows,
      0,
      Uint32Array.from({ length: blockSize }, (_, index) => index),
    );
    this.bindGroups = new BindGroupCache(device);
    const parameters = () => device.createBuffer({ size: 32, usage: uniformUsage, label: "attention call" });
    this.attentionParameters = parameters();
    this.owned.push(this.attentionParameters);
    this.localAttentionParameters = localAttention === undefined ? undefined : parameters();
    if (this.localAttentionParameters !== undefined) this.owned.push(this.localAttentionParameters);
    this.logitsReadBack = createReadBackBuffer(device, vocabularySize * 4);
    this.owned.push(this.logitsReadBack);
    const positionUniform = (label: string) => device.createBuffer({ size: 16, usage: uniformUsage, label });
    this.ropeParameters = positionUniform("rope positions");
    this.keyNormParameters = positionUniform("key norm positions");
    this.owned.push(this.ropeParameters, this.keyNormParameters);
  }

  static async create(
    context: WebGpuContext,
    kernels: ForwardPassKernels,
    weights: GpuModelWeights,
    config: SelfExtendConfig,
    contextSize: number,
    blockSize: number,
    options: { readonly cachedGroupKeys?: boolean } = {},
  ): Promise<GpuForwardPass> {
    const description = weights.description;
    const validated = validateSelfExtendConfig(config);
    const ropeTable = createGpuRopeTable(
      context.device,
      globalRopeOptions(description, contextSize),
      largestRotatedPosition(contextSize, validated) + 1,
    );
    const attentionOptions = {
      shape: {
        headCount: description.headCount,
        kvHeadCount: description.kvHeadCount,
        headSize: description.headSize,
      },
      config: validated,
      rope: { layout: description.ropeLayout, rotaryDimension: description.rotaryDimension },
      contextSize,
      ropeTable,
      scale: description.attentionScale,
      logitSoftCap: description.attentionLogitSoftCap,
    };
    const attention = await SelfExtendAttentionKernel.create(context, {
      ...attentionOptions,
      cachedGroupKeys: options.cachedGroupKeys,
    });
    const { slidingWindow } = description;
    const hasLocalLayers = slidingWindow?.localLayers.includes(true) === true;
    // Gemma 3's local layers rotate with their own base and no scaling (exact positions only).
    const localRopeTable =
      hasLocalLayers && slidingWindow?.ropeBase !== undefined
        ? createGpuRopeTable(
            context.device,
            {
              layout: description.ropeLayout,
              headSize: description.headSize,
              rotaryDimension: description.rotaryDimension,
              base: slidingWindow.ropeBase,
            },
            contextSize,
          )
        : undefined;
    // Local layers see only distances below their window, which they were trained on: plain
    // attention at exact positions (G = 1), masked to the window, whatever the session's G and W.
    const localAttention =
      hasLocalLayers && slidingWindow !== undefined
        ? await SelfExtendAttentionKernel.create(context, {
            ...attentionOptions,
            config: { groupSize: 1, neighborWindow: validated.neighborWindow },
            slidingWindow: slidingWindow.size,
            ropeTable: localRopeTable ?? ropeTable,
          })
        : undefined;
    const destroyKernels = () => {
      attention.destroy();
      localAttention?.destroy();
      ropeTable.buffer.destroy();
      localRopeTable?.buffer.destroy();
    };
    // Refuse up front a session whose longest attention call this driver would cut short.
    const iterations = Math.max(
      attention.estimatedLoopIterations(contextSize),
      localAttention?.estimatedLoopIterations(contextSize) ?? 0,
    );
    if (iterations > context.loopIterationLimit) {
      destroyKernels();
      throw new WebGpuDeviceError(
        `contextSize ${contextSize} needs about ${iterations} loop iterations per attention invocation; this driver (${context.adapterDescription}) stops invocations after ${context.loopIterationLimit}`,
      );
    }
    try {
      const groupKeyRope = attention.readsCachedGroupKeys
        ? await withErrorScopes(context.device, "compiling the group-key RoPE kernel", () =>
            context.device.createComputePipeline({
              layout: "auto",
              label: "RoPE with group-level key copy",
              compute: {
                module: context.device.createShaderModule({
                  code: ropeShader(
                    Math.min(workgroupSize, context.limits.maxComputeInvocationsPerWorkgroup),
                    description.headSize,
                    description.rotaryDimension,
                    description.ropeLayout,
                    {
                      groupSize: validated.groupSize,
                      at: contextSize * description.kvHeadCount * description.headSize,
                    },
                  ),
                  label: "RoPE with group-level key copy",
                }),
                entryPoint: "main",
              },
            }),
          )
        : undefined;
      return await withErrorScopes(
        context.device,
        "allocating the session's buffers",
        () =>
          new GpuForwardPass(
            context,
            kernels,
            weights,
            attention,
            localAttention,
            localRopeTable,
            blockSize,
            contextSize,
            groupKeyRope,
          ),
      );
    } catch (error) {
      destroyKernels();
      throw error;
    }
  }

  private uniform(words: readonly number[], floatIndex?: number): GPUBuffer {
    const key = `${words.join(",")}/${floatIndex ?? ""}`;
    const cached = this.uniforms.get(key);
    if (cached !== undefined) return cached;
    const packed = uniformWords(words, floatIndex);
    const buffer = this.context.device.createBuffer({
      size: packed.byteLength,
      usage: uniformUsage,
      mappedAtCreation: true,
    });
    new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(packed));
    buffer.unmap();
    this.uniforms.set(key, buffer);
    return buffer;
  }

  /** Called between blocks (no work in flight): drops the cached uniforms once there are too many. */
  private trimUniforms(): void {
    if (this.uniforms.size < uniformCacheLimit) return;
    for (const buffer of this.uniforms.values()) buffer.destroy();
    this.uniforms.clear();
    this.bindGroups.clear();
  }

  private dispatch(
    pass: GPUComputePassEncoder,
    pipeline: GPUComputePipeline,
    uniform: GPUBuffer,
    buffers: readonly GPUBuffer[],
    invocations: number,
  ): void {
    const groups = Math.ceil(invocations / this.workgroupSize);
    const x = Math.min(groups, this.context.limits.maxComputeWorkgroupsPerDimension);
    this.dispatchGrid(pass, pipeline, uniform, buffers, x, Math.ceil(groups / x));
  }

  private dispatchGrid(
    pass: GPUComputePassEncoder,
    pipeline: GPUComputePipeline,
    uniform: GPUBuffer,
    buffers: readonly GPUBuffer[],
    x: number,
    y: number,
  ): void {
    const { limits } = this.context;
    if (x > limits.maxComputeWorkgroupsPerDimension || y > limits.maxComputeWorkgroupsPerDimension) {
      throw new WebGpuDeviceError(
        `a kernel dispatch needs ${x} x ${y} workgroups; this device allows ${limits.maxComputeWorkgroupsPerDimension} per dimension`,
      );
    }
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, this.bindGroups.get(pipeline, [uniform, ...buffers]));
    pass.dispatchWorkgroups(x, y);
  }

  /** RMSNorm of `rows` rows: a workgroup per row with the "tiled" kind, else an invocation per row. */
  private rmsNorm(
    pass: GPUComputePassEncoder,
    uniform: GPUBuffer,
    buffers: readonly GPUBuffer[],
    rows: number,
  ): void {
    const rowNorm = this.kernels.tiled?.rowNorm;
    if (rowNorm === undefined) {
      this.dispatch(pass, this.kernels.rmsNorm, uniform, buffers, rows);
      return;
    }
    const largest = this.context.limits.maxComputeWorkgroupsPerDimension;
    this.dispatchGrid(pass, rowNorm, uniform, buffers, Math.min(rows, largest), Math.ceil(rows / largest));
  }

  private matmul(
    pass: GPUComputePassEncoder,
    x: GPUBuffer,
    weight: GPUBuffer,
    bias: GPUBuffer | undefined,
    result: GPUBuffer,
    rows: number,
    outputs: number,
    inputs: number,
    options: { outputOffset?: number; accumulate?: boolean; resultStride?: number } = {},
  ): void {
    const uniform = this.uniform([
      rows,
      outputs,
      inputs,
      options.outputOffset ?? 0,
      options.accumulate ? 1 : 0,
      bias ? 1 : 0,
      options.resultStride ?? outputs,
    ]);
    const buffers = [x, weight, bias ?? this.noBias, result];
    const { tiled } = this.kernels;
    if (tiled === undefined) {
      this.dispatch(pass, this.kernels.matmul, uniform, buffers, rows * outputs);
    } else if (rows < tiledMatmulSmallestRows) {
      // One workgroup per matrixVectorLayout.outputs values, over two dimensions past the per-dimension limit.
      const largest = this.context.limits.maxComputeWorkgroupsPerDimension;
      const groups = Math.ceil(outputs / matrixVectorLayout.outputs);
      this.dispatchGrid(
        pass,
        tiled.matrixVector,
        uniform,
        buffers,
        Math.min(groups, largest),
        Math.ceil(groups / largest),
      );
    } else {
      const side = matmulTileSide;
      this.dispatchGrid(
        pass,
        tiled.blocks,
        uniform,
        buffers,
        Math.ceil(outputs / side),
        Math.ceil(rows / side),
      );
    }
  }

  /**
   * Runs tokens[tokenOffset .. +count) at positions firstPosition.. (the cache already holds
   * 0 .. firstPosition - 1), appends their keys and values, and returns the logits of the block
   * rows `logitRows` (row-major [logitRows.length, vocabularySize]).
   */
  async evaluateBlock(
    tokens: ArrayLike<number>,
    tokenOffset: number,
    count: number,
    firstPosition: number,
    logitRows: readonly number[],
  ): Promise<Float32Array> {
    if (count < 1 || count > this.blockSize)
      throw new RangeError(`a block holds 1 to ${this.blockSize} tokens; got ${count}`);
    if (firstPosition + count > this.contextSize)
      throw new RangeError(`positions up to ${firstPosition + count} exceed contextSize ${this.contextSize}`);
    const { context, description, kernels, weights } = this;
    const { device } = context;
    const { embeddingSize, headCount, kvHeadCount, headSize, feedForwardSize, vocabularySize, normEpsilon } =
      description;
    const queryWidth = headCount * headSize;
    const kvWidth = kvHeadCount * headSize;
    const blockTokens = new Uint32Array(count);
    for (let row = 0; row < count; row++) blockTokens[row] = tokens[tokenOffset + row];
    device.queue.writeBuffer(this.tokens, 0, blockTokens);
    if (logitRows.length > 0) device.queue.writeBuffer(this.selectedRows, 0, Uint32Array.from(logitRows));

    this.trimUniforms();
    const encoder = device.createCommandEncoder({ label: "forward block" });
    const pass = encoder.beginComputePass();
    // Each slab writes the rows of the tokens it holds.
    for (const slab of weights.tokenEmbedding) {
      this.dispatch(
        pass,
        kernels.embedding,
        this.uniform([count, embeddingSize, slab.firstRow, slab.rowCount]),
        [this.tokens, slab.buffer, this.residual],
        count * embeddingSize,
      );
    }
    const normUniform = this.uniform([count, embeddingSize, normEpsilon, 0], 2);
    const postNormUniform = this.uniform([count, embeddingSize, normEpsilon, 1], 2);
    const attentionCall = { queryStart: firstPosition, queryCount: count, keyCount: firstPosition + count };
    const attentionUniform = this.attentionParameters;
    this.attention.writeCallParameters(attentionUniform, attentionCall);
    // Each kernel plans its own key splits (their tiles differ), so each has its own uniform.
    const localAttentionUniform = this.localAttentionParameters;
    if (localAttentionUniform !== undefined)
      this.localAttention?.writeCallParameters(localAttentionUniform, attentionCall);
    const localLayers = description.slidingWindow?.localLayers;
    const ropeUniform = this.ropeParameters;
    device.queue.writeBuffer(
      ropeUniform,
      0,
      uniformWords([count, kvHeadCount, firstPosition, firstPosition * kvWidth]),
    );
    const queryNormUniform = this.uniform([count * headCount, headSize, normEpsilon, 0], 2);
    const keyNormUniform = this.keyNormParameters;
    device.queue.writeBuffer(
      keyNormUniform,
      0,
      uniformWords([count * kvHeadCount, headSize, normEpsilon, firstPosition * kvWidth], 2),
    );
    const activationUniform = this.uniform([count * feedForwardSize]);
    // Without a post-norm a projection adds straight into the residual; with one it goes to
    // `projected`, and the post-norm adds its normalised rows into the residual.
    const projectIntoResidual = (
      source: GPUBuffer,
      weight: GPUBuffer,
      inputs: number,
      postNorm: GPUBuffer | undefined,
    ) => {
      if (postNorm === undefined) {
        this.matmul(pass, source, weight, undefined, this.residual, count, embeddingSize, inputs, {
          accumulate: true,
        });
        return;
      }
      this.matmul(pass, source, weight, undefined, this.projected, count, embeddingSize, inputs);
      this.rmsNorm(
        pass,
        postNormUniform,
        [this.identityRows, this.projected, postNorm, this.residual],
        count,
      );
    };

    weights.layers.forEach((layer, index) => {
      const keys = this.keyCaches[index];
      const values = this.valueCaches[index];
      const isLocal = localLayers?.[index] === true;
      this.rmsNorm(
        pass,
        normUniform,
        [this.identityRows, this.residual, layer.attentionNorm, this.normalized],
        count,
      );
      const headNorm = kernels.headNorm;
      const normed =
        headNorm !== undefined &&
        layer.queryNorm !== undefined &&
        layer.keyNorm !== undefined &&
        this.rawQueries !== undefined &&
        this.rawKeys !== undefined
          ? {
              headNorm,
              queryNorm: layer.queryNorm,
              keyNorm: layer.keyNorm,
              rawQueries: this.rawQueries,
              rawKeys: this.rawKeys,
            }
          : undefined;
      this.matmul(
        pass,
        this.normalized,
        layer.query,
        layer.queryBias,
        normed?.rawQueries ?? this.queries,
        count,
        queryWidth,
        embeddingSize,
      );
      // Keys and values go straight into the cache rows of this block (Gemma 3's keys through
      // their per-head norm, which writes them there).
      if (normed === undefined) {
        this.matmul(pass, this.normalized, layer.key, layer.keyBias, keys, count, kvWidth, embeddingSize, {
          outputOffset: firstPosition * kvWidth,
        });
      } else {
        this.matmul(
          pass,
          this.normalized,
          layer.key,
          layer.keyBias,
          normed.rawKeys,
          count,
          kvWidth,
          embeddingSize,
        );
        this.dispatch(
          pass,
          normed.headNorm,
          queryNormUniform,
          [normed.rawQueries, normed.queryNorm, this.queries],
          count * headCount,
        );
        this.dispatch(
          pass,
          normed.headNorm,
          keyNormUniform,
          [normed.rawKeys, normed.keyNorm, keys],
          count * kvHeadCount,
        );
      }
      this.matmul(
        pass,
        this.normalized,
        layer.value,
        layer.valueBias,
        values,
        count,
        kvWidth,
        embeddingSize,
        { outputOffset: firstPosition * kvWidth },
      );
      this.dispatch(
        pass,
        (isLocal ? undefined : this.groupKeyRope) ?? kernels.rope,
        ropeUniform,
        [(isLocal ? this.localRopeTable : undefined)?.buffer ?? this.ropeTable.buffer, keys],
        count * kvHeadCount * (description.rotaryDimension / 2),
      );
      const attentionBuffers = { queries: this.queries, keys, values, output: this.attended };
      if (isLocal && this.localAttention !== undefined) {
        this.localAttention.encode(pass, attentionBuffers, attentionCall, localAttentionUniform);
      } else {
        this.attention.encode(pass, attentionBuffers, attentionCall, attentionUniform);
      }
      projectIntoResidual(this.attended, layer.output, queryWidth, layer.postAttentionNorm);
      this.rmsNorm(
        pass,
        normUniform,
        [this.identityRows, this.residual, layer.feedForwardNorm, this.normalized],
        count,
      );
      this.matmul(
        pass,
        this.normalized,
        layer.gate,
        undefined,
        this.gate,
        count,
        feedForwardSize,
        embeddingSize,
      );
      this.matmul(pass, this.normalized, layer.up, undefined, this.up, count, feedForwardSize, embeddingSize);
      this.dispatch(
        pass,
        kernels.gatedActivation,
        activationUniform,
        [this.gate, this.up],
        count * feedForwardSize,
      );
      projectIntoResidual(this.gate, layer.down, feedForwardSize, layer.postFeedForwardNorm);
    });
    if (logitRows.length > 0) {
      // Only the rows asked for pay for the final norm and the classifier (the largest matrix).
      const rows = logitRows.length;
      this.rmsNorm(
        pass,
        this.uniform([rows, embeddingSize, normEpsilon, 0], 2),
        [this.selectedRows, this.residual, weights.outputNorm, this.logitRows],
        rows,
      );
      // Each slab fills its columns firstRow.. of every logits row.
      for (const slab of weights.output) {
        this.matmul(
          pass,
          this.logitRows,
          slab.buffer,
          undefined,
          this.logits,
          rows,
          slab.rowCount,
          embeddingSize,
          {
            outputOffset: slab.firstRow,
            resultStride: vocabularySize,
          },
        );
      }
      if (kernels.finalSoftCap !== undefined) {
        this.dispatch(
          pass,
          kernels.finalSoftCap,
          this.uniform([rows * vocabularySize]),
          [this.logits],
          rows * vocabularySize,
        );
      }
    }
    pass.end();
    device.queue.submit([encoder.finish()]);
    if (logitRows.length === 0) {
      await device.queue.onSubmittedWorkDone();
      context.assertHealthy();
      return new Float32Array(0);
    }
    const logits = await readFloat32(
      device,
      this.logits,
      logitRows.length * vocabularySize * 4,
      0,
      this.logitsReadBack,
    );
    context.assertHealthy();
    return logits;
  }

  destroy(): void {
    for (const buffer of this.owned) buffer.destroy();
    for (const buffer of this.uniforms.values()) buffer.destroy();
    this.uniforms.clear();
    this.bindGroups.clear();
    this.attention.destroy();
    this.localAttention?.destroy();
    this.ropeTable.buffer.destroy();
    this.localRopeTable?.buffer.destroy();
  }
}
