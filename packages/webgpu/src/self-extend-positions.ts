/**
 * The relative positions the attention kernel uses, computed on the device by the kernel's own
 * position functions ({@link attentionPositionsWgsl}, the same WGSL text the kernel is built
 * from) and read back, one invocation per pair (i, j):
 *
 *   neighbor level (isNeighborPair(i - j)): neighborQueryPosition(i) - j
 *   group level:   groupQueryPosition(i) - (j - groupKeyBackRotation(j))
 *
 * Keys sit in the cache rotated at their index j; the group level rotates that copy back by
 * groupKeyBackRotation(j), exactly as the kernel does. -1 above the diagonal (core's layout).
 */
import { type SelfExtendConfig, validateSelfExtendConfig } from "@self-extend/core";
import type { WebGpuContext } from "./device.js";
import {
  createStorageBuffer,
  readFloat32,
  submitComputePass,
  uniformUsage,
  withErrorScopes,
} from "./gpu-buffers.js";
import { attentionPositionsWgsl } from "./self-extend-attention.wgsl.js";

const workgroupSize = 64;

function positionProbeShader(config: SelfExtendConfig): string {
  return /* wgsl */ `${attentionPositionsWgsl(config.groupSize, config.neighborWindow)}

struct Params { length: u32, }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> relative: array<i32>;

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let pair = id.x;
  if (pair >= params.length * params.length) { return; }
  let i = pair / params.length;
  let j = pair % params.length;
  if (j > i) {
    relative[pair] = -1;
  } else if (isNeighborPair(i - j)) {
    relative[pair] = i32(neighborQueryPosition(i)) - i32(j);
  } else {
    relative[pair] = i32(groupQueryPosition(i)) - i32(j - groupKeyBackRotation(j));
  }
}
`;
}

export async function webGpuRelativePositions(
  context: WebGpuContext,
  config: SelfExtendConfig,
  length: number,
): Promise<Int32Array> {
  validateSelfExtendConfig(config);
  if (!Number.isSafeInteger(length) || length < 1) {
    throw new RangeError(`length must be an integer >= 1 (got ${length})`);
  }
  const { device } = context;
  const bytes = length * length * 4;
  const { pipeline, output, parameters } = await withErrorScopes(device, "position probe", () => {
    const module = device.createShaderModule({ code: positionProbeShader(config), label: "position probe" });
    const parameters = device.createBuffer({ size: 16, usage: uniformUsage, label: "position probe params" });
    device.queue.writeBuffer(parameters, 0, new Uint32Array([length, 0, 0, 0]));
    return {
      pipeline: device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } }),
      output: createStorageBuffer(device, bytes, "relative positions"),
      parameters,
    };
  });
  try {
    const bindGroup = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: parameters } },
        { binding: 1, resource: { buffer: output } },
      ],
    });
    submitComputePass(device, (pass) => {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(Math.ceil((length * length) / workgroupSize));
    });
    // The bytes as written: an Int32Array view of the copy, not a conversion.
    return new Int32Array((await readFloat32(device, output, bytes)).buffer);
  } finally {
    output.destroy();
    parameters.destroy();
  }
}
