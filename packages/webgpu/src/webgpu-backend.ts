/**
 * The WebGPU backend (spec v1, name "webgpu"): GGUF files (a path in Node, bytes or a URL
 * anywhere) load through @self-extend/models (quantised tensors are dequantised to float32 there),
 * weights are uploaded once per model, and every session owns its KV cache and work buffers on
 * the same device.
 */
import {
  type BackendAvailability,
  type BackendCapabilitiesV1,
  type ModelInfoV1,
  type SelfExtendBackendV1,
  SelfExtendConfigError,
  type SelfExtendModelV1,
  specificationVersion,
} from "@self-extend/core";
import {
  createTokenizer,
  type LlamaWeights,
  modelInfoFromDescription,
  supportedArchitectures,
  type Tokenizer,
} from "@self-extend/models";
import { type RequestWebGpuDeviceOptions, requestWebGpuDevice, type WebGpuContext } from "./device.js";
import {
  ForwardPassKernels,
  GpuForwardPass,
  type GpuModelWeights,
  uploadLlamaWeights,
} from "./forward-pass.js";
import type { WeightPrecision } from "./forward-pass.wgsl.js";
import { readModelWeights, type WebGpuModelSource } from "./model-source.js";
import {
  defaultBlockSize,
  validateWebGpuSessionOptions,
  WebGpuSession,
  type WebGpuSessionOptions,
} from "./webgpu-session.js";

export const webGpuCapabilities: BackendCapabilitiesV1 = Object.freeze({
  modes: Object.freeze(["exact"] as const),
  cachePrecisions: Object.freeze(["float32"] as const),
  architectures: supportedArchitectures,
});

export interface WebGpuModelOptions {
  /**
   * How weight matrices and the token embedding are stored on the device. "float16" halves their
   * memory where the device has `shader-f16` and falls back to "float32" where it has not; the
   * model's `weightPrecision` and `weightPrecisionReason` say which was used and why. Norm weights,
   * biases, activations, accumulators and the KV cache are float32 either way. Default "float32".
   */
  readonly weightPrecision?: WeightPrecision;
}

export class WebGpuModel implements SelfExtendModelV1 {
  readonly info: ModelInfoV1;
  /** How the weights are stored on the device (see {@link WebGpuModelOptions}). */
  readonly weightPrecision: WeightPrecision;
  /** Why: what was asked for and, for a fallback, what the device lacks. */
  readonly weightPrecisionReason: string;
  /** The GGUF file's vocabulary; undefined for llama2.c checkpoints and generated weights. */
  readonly tokenizer: Tokenizer | undefined;
  private disposed = false;

  private constructor(
    readonly context: WebGpuContext,
    private readonly weights: GpuModelWeights,
    private readonly kernels: ForwardPassKernels,
    info: ModelInfoV1,
    weightPrecisionReason: string,
    tokenizer: Tokenizer | undefined,
  ) {
    this.info = info;
    this.tokenizer = tokenizer;
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
    const gpuWeights = await uploadLlamaWeights(context, weights, precision);
    try {
      const kernels = await ForwardPassKernels.create(context, weights.description, precision);
      return new WebGpuModel(
        context,
        gpuWeights,
        kernels,
        modelInfoFromDescription(weights.description),
        reason,
        weights.vocabulary === undefined ? undefined : createTokenizer(weights.vocabulary),
      );
    } catch (error) {
      gpuWeights.destroy();
      throw error;
    }
  }

  async createSession(options: WebGpuSessionOptions): Promise<WebGpuSession> {
    if (this.disposed) throw new Error("the model was disposed");
    const config = validateWebGpuSessionOptions(options);
    const blockSize = Math.min(options.blockSize ?? defaultBlockSize, options.contextSize);
    const forwardPass = await GpuForwardPass.create(
      this.context,
      this.kernels,
      this.weights,
      config,
      options.contextSize,
      blockSize,
    );
    return new WebGpuSession(this.weights.description, forwardPass, options);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.weights.destroy();
  }
}

export interface WebGpuBackendOptions {
  /** How to get the device; or pass `context` to share one you already have. */
  readonly device?: RequestWebGpuDeviceOptions;
  readonly context?: WebGpuContext;
  /** The default of every model's {@link WebGpuModelOptions.weightPrecision}. */
  readonly weightPrecision?: WeightPrecision;
}

export interface WebGpuBackend extends SelfExtendBackendV1 {
  /**
   * `{ path }` (Node: GGUF or llama2.c checkpoint), or a GGUF as `{ bytes }` or `{ url }` (fetched),
   * which is how a browser loads one.
   */
  loadModel(source: WebGpuModelSource, options?: WebGpuModelOptions): Promise<WebGpuModel>;
  /** Opens weights already in memory (generated test models, weights read by other code). */
  createModel(weights: LlamaWeights, options?: WebGpuModelOptions): Promise<WebGpuModel>;
  /** The device all models of this backend share (requested on first use). */
  getContext(): Promise<WebGpuContext>;
}

export function createWebGpuBackend(options: WebGpuBackendOptions = {}): WebGpuBackend {
  let context: Promise<WebGpuContext> | undefined = options.context
    ? Promise.resolve(options.context)
    : undefined;
  const getContext = (): Promise<WebGpuContext> => {
    context ??= requestWebGpuDevice(options.device).catch((error) => {
      context = undefined; // let a later call retry
      throw error;
    });
    return context;
  };
  const withDefaults = (modelOptions: WebGpuModelOptions): WebGpuModelOptions => ({
    weightPrecision: modelOptions.weightPrecision ?? options.weightPrecision,
  });
  return {
    specificationVersion,
    name: "webgpu",
    capabilities: webGpuCapabilities,
    async checkAvailability(): Promise<BackendAvailability> {
      try {
        await getContext();
        return { available: true };
      } catch (error) {
        return { available: false, reason: (error as Error).message };
      }
    },
    async loadModel(source: WebGpuModelSource, modelOptions: WebGpuModelOptions = {}): Promise<WebGpuModel> {
      const context = await getContext();
      return WebGpuModel.create(context, await readModelWeights(source), withDefaults(modelOptions));
    },
    async createModel(weights: LlamaWeights, modelOptions: WebGpuModelOptions = {}): Promise<WebGpuModel> {
      return WebGpuModel.create(await getContext(), weights, withDefaults(modelOptions));
    },
    getContext,
  };
}
