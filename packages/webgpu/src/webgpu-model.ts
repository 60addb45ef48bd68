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
  ) {
    this.info = info;
    this.matmulKernel = matmulKernel;
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
    );
    return new WebGpuSession(this.weights.description, forwardPass, options, config);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.weights.destroy();
  }
}
