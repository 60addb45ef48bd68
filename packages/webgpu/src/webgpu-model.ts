/**
 * A model on WebGPU: weights uploaded once to the device, kernels compiled once, shared by every
 * session of the model (each session owns its KV cache and work buffers on the same device).
 */
import {
  type ModelInfoV1,
  SelfExtendConfigError,
  type SelfExtendModelV1,
  SessionDisposedError,
} from "@self-extend/core";
import {
  createTokenizer,
  type LlamaWeights,
  modelInfoFromDescription,
  supportedArchitectures,
  type Tokenizer,
} from "@self-extend/models";
import type { WebGpuContext } from "./device.js";
import {
  ForwardPassKernels,
  GpuForwardPass,
  type GpuModelWeights,
  uploadLlamaWeights,
} from "./forward-pass.js";
import type { MatmulKernel, WeightPrecision } from "./forward-pass.wgsl.js";
import { isCpuAdapter } from "./self-extend-attention-kernel.js";
import {
  defaultBlockSize,
  validateWebGpuSessionOptions,
  WebGpuSession,
  type WebGpuSessionOptions,
} from "./webgpu-session.js";

export interface WebGpuModelOptions {
  /**
   * How weight matrices and the token embedding are stored on the device. "float16" halves their
   * memory where the device has `shader-f16` and falls back to "float32" where it has not; the
   * model's `weightPrecision` and `weightPrecisionReason` say which was used and why. Norm weights,
   * biases, activations, accumulators and the KV cache are float32 either way. Default "float32".
   */
  readonly weightPrecision?: WeightPrecision;
  /**
   * How matmuls run (see {@link MatmulKernel}): "tiled" (coalesced matrix-vector for decoding,
   * 16 x 16 workgroup tiles for prompt blocks) on GPUs, "per-output" on CPU implementations
   * (llvmpipe, lavapipe, SwiftShader), where it is faster. The default picks by adapter.
   */
  readonly matmulKernel?: MatmulKernel;
  /**
   * How Self-Extend attention (G > 1) gets each group-level key, the key rotated at floor(j/G):
   * - "derived": rotated back from the cached key at j inside the attention kernel, on every call.
   *   One key copy; the rotation costs arithmetic and two RoPE table rows per key.
   * - "cached": written once, when the key enters the cache, beside the copy at j; attention reads
   *   either copy as plain attention reads its one. The KV cache of the Self-Extend layers grows by
   *   half (keys twice, values once).
   * The default picks by adapter: "cached" on CPU implementations (llvmpipe, lavapipe, SwiftShader),
   * where the rotation's arithmetic is what made Self-Extend decoding cost more than plain; "derived"
   * on GPUs, where memory is scarcer than arithmetic. Plain sessions (G = 1) never keep a second copy.
   */
  readonly groupKeys?: GroupKeySource;
}

/** See {@link WebGpuModelOptions.groupKeys}. */
export type GroupKeySource = "derived" | "cached";

/** "cached" on CPU implementations, "derived" on GPUs (see {@link WebGpuModelOptions.groupKeys}). */
export function defaultGroupKeySource(context: Pick<WebGpuContext, "adapterDescription">): GroupKeySource {
  return isCpuAdapter(context) ? "cached" : "derived";
}

/** "tiled" on GPUs, "per-output" on CPU implementations (see {@link WebGpuModelOptions.matmulKernel}). */
export function defaultMatmulKernel(context: Pick<WebGpuContext, "adapterDescription">): MatmulKernel {
  return isCpuAdapter(context) ? "per-output" : "tiled";
}

export class WebGpuModel implements SelfExtendModelV1 {
  readonly info: ModelInfoV1;
  /** How the weights are stored on the device (see {@link WebGpuModelOptions}). */
  readonly weightPrecision: WeightPrecision;
  /** Why: what was asked for and, for a fallback, what the device lacks. */
  readonly weightPrecisionReason: string;
  /** How its matmuls run (see {@link WebGpuModelOptions.matmulKernel}). */
  readonly matmulKernel: MatmulKernel;
  /** How its sessions' Self-Extend attention gets group-level keys (see {@link WebGpuModelOptions.groupKeys}). */
  readonly groupKeys: GroupKeySource;
  /** The GGUF file's vocabulary; undefined for llama2.c checkpoints and generated weights. */
  readonly tokenizer: Tokenizer | undefined;
  /** The GGUF file's `tokenizer.chat_template`, when it has one. */
  readonly chatTemplate: string | undefined;
  private disposed = false;

  private constructor(
    readonly context: WebGpuContext,
    private readonly weights: GpuModelWeights,
    private readonly kernels: ForwardPassKernels,
    info: ModelInfoV1,
    weightPrecisionReason: string,
    tokenizer: Tokenizer | undefined,
    chatTemplate: string | undefined,
    matmulKernel: MatmulKernel,
    groupKeys: GroupKeySource,
  ) {
    this.info = info;
    this.matmulKernel = matmulKernel;
    this.groupKeys = groupKeys;
    this.tokenizer = tokenizer;
    this.chatTemplate = chatTemplate;
    this.weightPrecision = weights.precision;
    this.weightPrecisionReason = weightPrecisionReason;
  }

  static async create(
    context: WebGpuContext,
    weights: LlamaWeights,
    options: WebGpuModelOptions = {},
  ): Promise<WebGpuModel> {
    const { architecture } = weights.description;
    if (!supportedArchitectures.includes(architecture)) {
      throw new SelfExtendConfigError(
        "architecture",
        architecture,
        `the webgpu backend runs ${supportedArchitectures.join(", ")}`,
      );
    }
    const requested = options.weightPrecision ?? "float32";
    if (requested !== "float32" && requested !== "float16") {
      throw new SelfExtendConfigError("weightPrecision", requested, 'must be "float32" or "float16"');
    }
    const precision: WeightPrecision = requested === "float16" && context.float16 ? "float16" : "float32";
    const reason =
      requested === "float32"
        ? "float32 requested"
        : precision === "float16"
          ? "float16 requested; the device has shader-f16"
          : `float16 requested; this device (${context.adapterDescription}) has no shader-f16, so float32`;
    const matmulKernel = options.matmulKernel ?? defaultMatmulKernel(context);
    if (matmulKernel !== "per-output" && matmulKernel !== "tiled") {
      throw new SelfExtendConfigError("matmulKernel", matmulKernel, 'must be "per-output" or "tiled"');
    }
    const groupKeys = options.groupKeys ?? defaultGroupKeySource(context);
    if (groupKeys !== "derived" && groupKeys !== "cached") {
      throw new SelfExtendConfigError("groupKeys", groupKeys, 'must be "derived" or "cached"');
    }
    const gpuWeights = await uploadLlamaWeights(context, weights, precision);
    try {
      const kernels = await ForwardPassKernels.create(context, weights.description, precision, matmulKernel);
      return new WebGpuModel(
        context,
        gpuWeights,
        kernels,
        modelInfoFromDescription(weights.description),
        reason,
        weights.vocabulary === undefined ? undefined : createTokenizer(weights.vocabulary),
        weights.chatTemplate,
        matmulKernel,
        groupKeys,
      );
    } catch (error) {
      gpuWeights.destroy();
      throw error;
    }
  }

  async createSession(options: WebGpuSessionOptions): Promise<WebGpuSession> {
    if (this.disposed) throw new SessionDisposedError("model");
    const config = validateWebGpuSessionOptions(options, this.info.trainedContext);
    const blockSize = Math.min(options.blockSize ?? defaultBlockSize, options.contextSize);
    const forwardPass = await GpuForwardPass.create(
      this.context,
      this.kernels,
      this.weights,
      config,
      options.contextSize,
      blockSize,
      { cachedGroupKeys: this.groupKeys === "cached" },
    );
    return new WebGpuSession(this.weights.description, forwardPass, options, config);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.weights.destroy();
  }
}
