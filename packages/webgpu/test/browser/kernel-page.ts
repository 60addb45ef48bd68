/**
 * Runs in the page: the same kernel checks as the Node tests (fused and two-pass against core's
 * float64 reference), on the browser's own navigator.gpu, with the limits it reports.
 */
import type { RopeLayout, SelfExtendConfig } from "@self-extend/core";
import { requestWebGpuDevice } from "../../src/device.js";
import { SelfExtendAttentionKernel } from "../../src/self-extend-attention-kernel.js";
import { TwoPassSelfExtendAttention } from "../../src/two-pass-attention.js";
import {
  attentionInputs,
  expectedAttention,
  largestOutputDifference,
  uploadAttentionInputs,
} from "./attention-inputs.js";

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

export async function runKernelChecks(cases: PageCase[]): Promise<PageResult> {
  const context = await requestWebGpuDevice();
  const { device } = context;
  const results: PageResult["cases"] = [];
  for (const testCase of cases) {
    const { headCount, kvHeadCount, headSize, layout, config, keyCount, queryCount } = testCase;
    const shape = { headCount, kvHeadCount, headSize };
    const inputs = attentionInputs({ shape, config, layout, keyCount, queryCount });
    const expected = expectedAttention(inputs);
    const buffers = uploadAttentionInputs(device, inputs);
    const call = { queryStart: keyCount - queryCount, queryCount, keyCount };
    const largest = () => largestOutputDifference(device, buffers.output, expected);
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
