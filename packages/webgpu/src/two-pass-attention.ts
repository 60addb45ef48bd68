/**
 * The two-pass Self-Extend baseline the benchmark measures the fused kernel against: what the
 * official flash path does (a sliding-window neighbor pass and a causal group pass, each an
 * ordinary flash-attention pass writing its log-sum-exp, merged as
 * O = (e^lse_n O_n + e^lse_g O_g) / (e^lse_n + e^lse_g)). Same tiles and device as the fused kernel,
 * so the ratio measures the fusion, not the code generation. Not meant for production use.
 */
import type { WebGpuContext } from "./device.js";
import { createStorageBuffer, submitComputePass } from "./gpu-buffers.js";
import {
  type AttentionBuffers,
  type AttentionCall,
  LogSumExpMergeKernel,
  SelfExtendAttentionKernel,
  type SelfExtendAttentionKernelOptions,
} from "./self-extend-attention-kernel.js";

export class TwoPassSelfExtendAttention {
  private constructor(
    private readonly context: WebGpuContext,
    private readonly neighbor: SelfExtendAttentionKernel,
    private readonly group: SelfExtendAttentionKernel,
    private readonly merge: LogSumExpMergeKernel,
    private readonly scratch: {
      neighborOutput: GPUBuffer;
      neighborLse: GPUBuffer;
      groupOutput: GPUBuffer;
      groupLse: GPUBuffer;
    },
    private readonly headCount: number,
  ) {}

  /** `largestQueryCount` sizes the partial-result buffers. */
  static async create(
    context: WebGpuContext,
    options: SelfExtendAttentionKernelOptions,
    largestQueryCount: number,
  ): Promise<TwoPassSelfExtendAttention> {
    const neighbor = await SelfExtendAttentionKernel.create(context, { ...options, mode: "neighbor-only" });
    const group = await SelfExtendAttentionKernel.create(context, {
      ...options,
      mode: "group-only",
      ropeTable: neighbor.ropeTable,
    });
    const merge = await LogSumExpMergeKernel.create(context, options.shape.headSize);
    const { headCount, headSize } = options.shape;
    const rows = largestQueryCount * headCount;
    const scratch = {
      neighborOutput: createStorageBuffer(context.device, rows * headSize * 4),
      neighborLse: createStorageBuffer(context.device, rows * 4),
      groupOutput: createStorageBuffer(context.device, rows * headSize * 4),
      groupLse: createStorageBuffer(context.device, rows * 4),
    };
    return new TwoPassSelfExtendAttention(context, neighbor, group, merge, scratch, headCount);
  }

  encode(pass: GPUComputePassEncoder, buffers: AttentionBuffers, call: AttentionCall): void {
    const { neighborOutput, neighborLse, groupOutput, groupLse } = this.scratch;
    this.neighbor.encode(pass, { ...buffers, output: neighborOutput, logSumExp: neighborLse }, call);
    this.group.encode(pass, { ...buffers, output: groupOutput, logSumExp: groupLse }, call);
    this.merge.encode(
      pass,
      call.queryCount * this.headCount,
      { output: neighborOutput, logSumExp: neighborLse },
      { output: groupOutput, logSumExp: groupLse },
      buffers.output,
    );
  }

  run(buffers: AttentionBuffers, call: AttentionCall): void {
    submitComputePass(this.context.device, (pass) => this.encode(pass, buffers, call));
  }

  destroy(): void {
    for (const buffer of Object.values(this.scratch)) buffer.destroy();
    this.neighbor.destroy();
  }
}
