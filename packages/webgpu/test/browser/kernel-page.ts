/**
 * Runs in the page: the same kernel checks as the Node tests (fused and two-pass against core's
 * float64 reference), on the browser's own navigator.gpu, with the limits it reports.
 */
import {
  applyRope,
  createRopeTable,
  type RopeLayout,
  referenceAttention,
  type SelfExtendConfig,
} from "@self-extend/core";
import { requestWebGpuDevice } from "../../src/device.js";
import { createStorageBuffer, readFloat32, uploadFloat32 } from "../../src/gpu-buffers.js";
import { SelfExtendAttentionKernel } from "../../src/self-extend-attention-kernel.js";
import { TwoPassSelfExtendAttention } from "../../src/two-pass-attention.js";

interface PageCase {
  readonly name: string;
  readonly headCount: number;
  readonly kvHeadCount: number;
  readonly headSize: number;
  readonly layout: RopeLayout;
  readonly config: SelfExtendConfig;
  readonly keyCount: number;
  readonly queryCount: number;
}

export interface PageResult {
  readonly adapter: string;
  readonly limits: Record<string, number>;
  readonly cases: { name: string; fused: number; twoPass: number }[];
}

function random(length: number, seed: number): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state / 2 ** 32) * 2 - 1;
  });
}

export async function runKernelChecks(cases: PageCase[]): Promise<PageResult> {
  const context = await requestWebGpuDevice();
  const { device } = context;
  const results: PageResult["cases"] = [];
  for (const testCase of cases) {
    const { headCount, kvHeadCount, headSize, layout, config, keyCount, queryCount } = testCase;
    const shape = { headCount, kvHeadCount, headSize };
    const queries = random(queryCount * headCount * headSize, 1);
    const keys = random(keyCount * kvHeadCount * headSize, 2);
    const values = random(keyCount * kvHeadCount * headSize, 3);
    const table = createRopeTable(
      { layout, headSize },
      Math.max(keyCount, Math.floor((keyCount - 1) / config.groupSize) + config.neighborWindow) + 1,
    );
    const cached = Float64Array.from(keys);
    for (let j = 0; j < keyCount; j++)
      for (let h = 0; h < kvHeadCount; h++) applyRope(cached, (j * kvHeadCount + h) * headSize, j, table);
    const expected = referenceAttention({
      shape,
      config,
      rope: table,
      queries,
      keys,
      values,
      queryCount,
      keyCount,
    });
    const buffers = {
      queries: uploadFloat32(device, queries),
      keys: uploadFloat32(device, cached),
      values: uploadFloat32(device, values),
      output: createStorageBuffer(device, expected.length * 4),
    };
    const call = { queryStart: keyCount - queryCount, queryCount, keyCount };
    const largest = async (): Promise<number> => {
      const actual = await readFloat32(device, buffers.output, expected.length * 4);
      let difference = 0;
      for (let index = 0; index < expected.length; index++)
        difference = Math.max(difference, Math.abs(actual[index] - expected[index]));
      return difference;
    };
    const options = { shape, config, rope: { layout }, contextSize: keyCount };
    (await SelfExtendAttentionKernel.create(context, options)).run(buffers, call);
    const fused = await largest();
    (await TwoPassSelfExtendAttention.create(context, options, queryCount)).run(buffers, call);
    const twoPass = await largest();
    results.push({ name: testCase.name, fused, twoPass });
  }
  context.assertHealthy();
  return { adapter: context.adapterDescription, limits: { ...context.limits }, cases: results };
}
