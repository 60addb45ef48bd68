import type { RopeLayout, SelfExtendConfig } from "@self-extend/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requestWebGpuDevice, type WebGpuContext } from "../src/index.js";
import {
  type AttentionTiles,
  createGpuRopeTable,
  SelfExtendAttentionKernel,
  type SingleQueryKernel,
  TwoPassSelfExtendAttention,
} from "../src/kernels.js";
import {
  attentionInputs,
  expectedAttention,
  largestOutputDifference,
  uploadAttentionInputs,
} from "./browser/attention-inputs.js";
import { requestLavapipeDevice } from "./lavapipe-device.js";

interface KernelCase {
  readonly name: string;
  readonly headCount: number;
  readonly kvHeadCount: number;
  readonly headSize: number;
  readonly rotaryDimension?: number;
  readonly layout: RopeLayout;
  readonly config: SelfExtendConfig;
  readonly keyCount: number;
  readonly queryCount: number;
  readonly tiles?: Partial<AttentionTiles>;
  /** Also check the two-pass baseline (the benchmark's comparison) on this case. */
  readonly twoPass?: boolean;
  /** Forces key splits (flash-decoding) on CPU adapters, which never split by default. */
  readonly targetWorkgroups?: number;
  /** The key splits the kernel must plan for this call. */
  readonly expectedSplits?: number;
  /** Gemma 2's scoring: a score scale, a soft-cap, and a local layer's sliding window. */
  readonly scale?: number;
  readonly logitSoftCap?: number;
  readonly slidingWindow?: number;
}

/** One query runs on both single-query kernels (the key-parallel default and the query-tiled one). */
function kernelsFor(testCase: KernelCase): (SingleQueryKernel | undefined)[] {
  return testCase.queryCount === 1 ? ["key-parallel", "query-tiled"] : [undefined];
}

// Small key tiles force long prompts across many tiles and many tile boundaries inside the window.
const cases: KernelCase[] = [
  {
    name: "plain G=1 prefill, MHA",
    headCount: 2,
    kvHeadCount: 2,
    headSize: 16,
    layout: "interleaved",
    config: { groupSize: 1, neighborWindow: 8 },
    keyCount: 96,
    queryCount: 96,
  },
  {
    name: "G=2 W=4 paper example shape",
    headCount: 1,
    kvHeadCount: 1,
    headSize: 8,
    layout: "interleaved",
    config: { groupSize: 2, neighborWindow: 4 },
    keyCount: 10,
    queryCount: 10,
  },
  {
    name: "G=4 W=16 prefill over 40 key tiles, GQA 4:1",
    headCount: 4,
    kvHeadCount: 1,
    headSize: 32,
    layout: "interleaved",
    config: { groupSize: 4, neighborWindow: 16 },
    keyCount: 320,
    queryCount: 320,
    tiles: { keyTile: 8 },
    twoPass: true,
  },
  {
    name: "G=8 W=32 decode at 700 keys, GQA 2:1",
    headCount: 4,
    kvHeadCount: 2,
    headSize: 64,
    layout: "half-split",
    config: { groupSize: 8, neighborWindow: 32 },
    keyCount: 700,
    queryCount: 1,
    twoPass: true,
  },
  {
    name: "G=3 W=6 chunk in the middle, half-split, partial rotary",
    headCount: 3,
    kvHeadCount: 3,
    headSize: 24,
    rotaryDimension: 12,
    layout: "half-split",
    config: { groupSize: 3, neighborWindow: 6 },
    keyCount: 200,
    queryCount: 37,
    tiles: { keyTile: 4, queryTile: 5 },
  },
  {
    name: "G=2 W=64 head size 128, decode at 1000 keys",
    headCount: 2,
    kvHeadCount: 1,
    headSize: 128,
    layout: "interleaved",
    config: { groupSize: 2, neighborWindow: 64 },
    keyCount: 1000,
    queryCount: 1,
  },
  {
    name: "G=16 W=16 window of one group, prefill with query tiles of 3",
    headCount: 8,
    kvHeadCount: 2,
    headSize: 8,
    layout: "interleaved",
    config: { groupSize: 16, neighborWindow: 16 },
    keyCount: 257,
    queryCount: 257,
    tiles: { queryTile: 3, keyTile: 16 },
  },
  {
    name: "G=8 W=64 decode at 8192 keys (256 key tiles), GQA 4:1",
    headCount: 8,
    kvHeadCount: 2,
    headSize: 16,
    layout: "interleaved",
    config: { groupSize: 8, neighborWindow: 64 },
    keyCount: 8192,
    queryCount: 1,
    twoPass: true,
  },
  {
    name: "G=8 W=64 decode at 8192 keys in 64 key splits (flash-decoding), GQA 4:1",
    headCount: 8,
    kvHeadCount: 2,
    headSize: 16,
    layout: "interleaved",
    config: { groupSize: 8, neighborWindow: 64 },
    keyCount: 8192,
    queryCount: 1,
    targetWorkgroups: 128,
    expectedSplits: 64,
  },
  {
    name: "G=4 W=32 mid-sequence block of 40 queries at 3000 keys in key splits, half-split RoPE, MHA",
    headCount: 4,
    kvHeadCount: 4,
    headSize: 32,
    layout: "half-split",
    config: { groupSize: 4, neighborWindow: 32 },
    keyCount: 3000,
    queryCount: 40,
    tiles: { keyTile: 16 },
    targetWorkgroups: 96,
    // One query tile (64 queries per workgroup) x 4 kv heads = 4 workgroups: 96 / 4 = 24 splits of
    // 8 key tiles (188 tiles in all, the last split shorter).
    expectedSplits: 24,
  },
  {
    name: "G=1 decode at 2048 keys in key splits equals plain attention",
    headCount: 4,
    kvHeadCount: 2,
    headSize: 8,
    layout: "interleaved",
    config: { groupSize: 1, neighborWindow: 1 },
    keyCount: 2048,
    queryCount: 1,
    targetWorkgroups: 1000,
    // Bounded by the minimum of 4 key tiles per split: 64 tiles / 4.
    expectedSplits: 16,
  },
  {
    name: "plain G=1 decode, head size 64, GQA 8:1",
    headCount: 8,
    kvHeadCount: 1,
    headSize: 64,
    layout: "half-split",
    config: { groupSize: 1, neighborWindow: 1 },
    keyCount: 513,
    queryCount: 1,
  },
  {
    name: "Gemma 2 local layer: sliding window 24, soft-cap 0.5, scale 0.2, prefill over key tiles of 8",
    headCount: 4,
    kvHeadCount: 2,
    headSize: 16,
    layout: "half-split",
    config: { groupSize: 1, neighborWindow: 8 },
    keyCount: 200,
    queryCount: 150,
    tiles: { keyTile: 8, queryTile: 5 },
    scale: 0.2,
    logitSoftCap: 0.5,
    slidingWindow: 24,
  },
  {
    name: "Gemma 2 local layer: decode at 2048 keys in key splits, window 100 (most splits see no key)",
    headCount: 4,
    kvHeadCount: 2,
    headSize: 8,
    layout: "half-split",
    config: { groupSize: 1, neighborWindow: 1 },
    keyCount: 2048,
    queryCount: 1,
    targetWorkgroups: 1000,
    expectedSplits: 16,
    logitSoftCap: 0.5,
    slidingWindow: 100,
  },
  {
    name: "Gemma 2 global layer: G=4 W=16 with soft-cap 0.5 and scale 0.3, block of 40 at 1000 keys in key splits",
    headCount: 4,
    kvHeadCount: 2,
    headSize: 16,
    layout: "half-split",
    config: { groupSize: 4, neighborWindow: 16 },
    keyCount: 1000,
    queryCount: 40,
    tiles: { keyTile: 8 },
    targetWorkgroups: 24,
    // Two query tiles (32 queries per workgroup) x 2 kv heads = 4 workgroups: 24 / 4 = 6 splits of
    // 21 key tiles (125 tiles in all, the last split shorter).
    expectedSplits: 6,
    scale: 0.3,
    logitSoftCap: 0.5,
  },
  {
    name: "G=3 W=6 decode, half-split, partial rotary, head size 24 (6 lanes: 10 slices, 4 idle invocations)",
    headCount: 3,
    kvHeadCount: 3,
    headSize: 24,
    rotaryDimension: 12,
    layout: "half-split",
    config: { groupSize: 3, neighborWindow: 6 },
    keyCount: 200,
    queryCount: 1,
  },
  {
    name: "G=5 W=10 decode, interleaved, partial rotary 16 of 32, keys not a multiple of the tile",
    headCount: 2,
    kvHeadCount: 1,
    headSize: 32,
    rotaryDimension: 16,
    layout: "interleaved",
    config: { groupSize: 5, neighborWindow: 10 },
    keyCount: 333,
    queryCount: 1,
  },
  {
    name: "G=4 W=32 decode at 1500 keys in key splits, GQA 7:1 (Qwen2.5-0.5B's 14/2), head size 64, half-split",
    headCount: 14,
    kvHeadCount: 2,
    headSize: 64,
    layout: "half-split",
    config: { groupSize: 4, neighborWindow: 32 },
    keyCount: 1500,
    queryCount: 1,
    targetWorkgroups: 40,
    // 2 workgroups (kv heads): min(40 / 2, 47 tiles / 4) = 11 wanted, so 10 splits of 5 tiles.
    expectedSplits: 10,
  },
  {
    name: "Gemma 2 global layer: decode, head size 256 (one slice of 64 lanes), G=4 W=16, soft-cap 0.5, scale 0.0625, GQA 2:1",
    headCount: 4,
    kvHeadCount: 2,
    headSize: 256,
    layout: "half-split",
    config: { groupSize: 4, neighborWindow: 16 },
    keyCount: 300,
    queryCount: 1,
    scale: 0.0625,
    logitSoftCap: 0.5,
  },
  {
    // The GPU default (256 invocations: 8 slices of 32 lanes at head size 128), which CPU adapters
    // do not pick by themselves.
    name: "G=8 W=64 decode at 3000 keys, head size 128, GQA 4:1, workgroups of 256",
    headCount: 8,
    kvHeadCount: 2,
    headSize: 128,
    layout: "interleaved",
    config: { groupSize: 8, neighborWindow: 64 },
    keyCount: 3000,
    queryCount: 1,
    tiles: { workgroupSize: 256 },
  },
  {
    name: "G=4 W=40 decode at 2000 keys in key splits, head size 64, GQA 2:1, half-split, workgroups of 128",
    headCount: 4,
    kvHeadCount: 2,
    headSize: 64,
    layout: "half-split",
    config: { groupSize: 4, neighborWindow: 40 },
    keyCount: 2000,
    queryCount: 1,
    tiles: { workgroupSize: 128 },
    targetWorkgroups: 16,
    // 2 workgroups (kv heads) with query tiles of 64: min(16 / 2, 63 tiles / 4) = 8 splits of 8 tiles.
    expectedSplits: 8,
  },
];

let context: WebGpuContext;

beforeAll(async () => {
  // No skip when WebGPU is missing: the test fails with requestWebGpuDevice's reason.
  context = await requestWebGpuDevice();
});

afterAll(() => context?.destroy());

/** Runs one case on `context` and compares the output with core's float64 reference attention. */
async function checkCase(
  context: WebGpuContext,
  testCase: KernelCase,
  singleQueryKernel: SingleQueryKernel | undefined,
  cachedGroupKeys = false,
): Promise<void> {
  const { headCount, kvHeadCount, headSize, layout, config, keyCount, queryCount } = testCase;
  const rotaryDimension = testCase.rotaryDimension ?? headSize;
  const queryStart = keyCount - queryCount;
  const { device } = context;
  const shape = { headCount, kvHeadCount, headSize };
  const inputs = attentionInputs({
    shape,
    config,
    layout,
    rotaryDimension,
    keyCount,
    queryCount,
    seed: keyCount,
  });
  const { scale, logitSoftCap, slidingWindow } = testCase;
  const expected = expectedAttention(inputs, { scale, logitSoftCap, slidingWindow });

  const kernel = await SelfExtendAttentionKernel.create(context, {
    shape,
    config,
    rope: { layout, rotaryDimension },
    contextSize: keyCount,
    tiles: testCase.tiles,
    ropeTable: createGpuRopeTable(device, inputs.ropeOptions, inputs.table.positionCount),
    targetWorkgroups: testCase.targetWorkgroups,
    scale,
    logitSoftCap,
    slidingWindow,
    singleQueryKernel,
    cachedGroupKeys,
  });
  expect(kernel.readsCachedGroupKeys).toBe(cachedGroupKeys && config.groupSize !== 1);
  if (singleQueryKernel !== undefined) expect(kernel.singleQueryKernel).toBe(singleQueryKernel);
  if (singleQueryKernel === "key-parallel") {
    expect(kernel.keyParallelWorkgroupSize).toBe(testCase.tiles?.workgroupSize ?? 64);
  }
  if (singleQueryKernel === "subgroup") {
    // Lanes per key row: the largest power of 2 dividing the head's vec4s, at most the subgroup.
    const vectors = headSize / 4;
    const smallest = context.subgroupSizes?.minimum ?? 0;
    let lanes = 1;
    while (lanes * 2 <= smallest && vectors % (lanes * 2) === 0) lanes *= 2;
    expect(kernel.subgroupLanes).toBe(lanes);
    expect(kernel.singleQueryWorkgroupSize).toBe(testCase.tiles?.workgroupSize ?? 64);
  }
  const plan = kernel.planKeySplits({ queryStart, queryCount, keyCount });
  expect(plan.splitCount).toBe(testCase.expectedSplits ?? 1);
  expect(plan.keysPerSplit % kernel.tiles.keyTile).toBe(0);
  expect(plan.splitCount * plan.keysPerSplit).toBeGreaterThanOrEqual(keyCount);
  const buffers = uploadAttentionInputs(device, inputs, { groupKeys: cachedGroupKeys });
  kernel.run(buffers, { queryStart, queryCount, keyCount });
  const largest = await largestOutputDifference(device, buffers.output, expected);
  context.assertHealthy();
  // float32 compute against a float64 oracle on outputs of size ~1.
  expect(largest).toBeLessThan(2e-5);
  kernel.destroy();

  if (testCase.twoPass && singleQueryKernel !== "query-tiled" && !cachedGroupKeys) {
    const twoPass = await TwoPassSelfExtendAttention.create(
      context,
      {
        shape,
        config,
        rope: { layout, rotaryDimension },
        contextSize: keyCount,
        tiles: testCase.tiles,
      },
      queryCount,
    );
    const twoPassBuffers = uploadAttentionInputs(device, inputs);
    twoPass.run(twoPassBuffers, { queryStart, queryCount, keyCount });
    const twoPassLargest = await largestOutputDifference(device, twoPassBuffers.output, expected);
    expect(twoPassLargest).toBeLessThan(2e-5);
    twoPass.destroy();
  }
}

describe("fused Self-Extend attention kernel vs core's float64 reference", () => {
  for (const testCase of cases) {
    for (const singleQueryKernel of kernelsFor(testCase)) {
      it(`${testCase.name}${singleQueryKernel === undefined ? "" : `, ${singleQueryKernel} kernel`}`, () =>
        checkCase(context, testCase, singleQueryKernel));
    }
  }
});

describe("cached group keys (a second key cache at floor(j/G)) vs core's float64 reference", () => {
  for (const testCase of cases.filter((candidate) => candidate.config.groupSize !== 1)) {
    for (const singleQueryKernel of kernelsFor(testCase)) {
      it(`${testCase.name}${singleQueryKernel === undefined ? "" : `, ${singleQueryKernel} kernel`}`, () =>
        checkCase(context, testCase, singleQueryKernel, true));
    }
  }

  const options = {
    shape: { headCount: 2, kvHeadCount: 1, headSize: 8 },
    config: { groupSize: 2, neighborWindow: 4 },
    rope: { layout: "interleaved" as const },
    contextSize: 16,
  };

  it("refuses keys without the second copy, and a mode other than fused, naming the rule", async () => {
    const kernel = await SelfExtendAttentionKernel.create(context, { ...options, cachedGroupKeys: true });
    const inputs = attentionInputs({ ...options, layout: "interleaved", keyCount: 16, queryCount: 1 });
    expect(() =>
      kernel.run(uploadAttentionInputs(context.device, inputs), {
        queryStart: 15,
        queryCount: 1,
        keyCount: 16,
      }),
    ).toThrow(
      "a kernel with cachedGroupKeys needs keys of 2 x contextSize rows (1024 bytes: each key at j, then at floor(j/G)); got 512 bytes",
    );
    kernel.destroy();
    await expect(
      SelfExtendAttentionKernel.create(context, { ...options, cachedGroupKeys: true, mode: "group-only" }),
    ).rejects.toThrow(/cachedGroupKeys.*needs the fused mode; got group-only/);
    await expect(
      SelfExtendAttentionKernel.create(context, { ...options, cachedGroupKeys: "yes" as unknown as boolean }),
    ).rejects.toThrow(/cachedGroupKeys.*must be true or false/);
  });

  it("reads no second cache with G = 1 (no group level)", async () => {
    const kernel = await SelfExtendAttentionKernel.create(context, {
      ...options,
      config: { groupSize: 1, neighborWindow: 1 },
      cachedGroupKeys: true,
    });
    expect(kernel.readsCachedGroupKeys).toBe(false);
    kernel.destroy();
  });
});

describe("the single-query kernel", () => {
  const options = {
    config: { groupSize: 2, neighborWindow: 4 },
    rope: { layout: "interleaved" as const },
    contextSize: 16,
  };

  it("falls back to the query-tiled kernel for a head size that is not a multiple of 4", async () => {
    const kernel = await SelfExtendAttentionKernel.create(context, {
      ...options,
      shape: { headCount: 2, kvHeadCount: 1, headSize: 6 },
    });
    expect(kernel.singleQueryKernel).toBe("query-tiled");
    kernel.destroy();
  });

  it("refuses the key-parallel kernel where it cannot run, naming the value and the rule", async () => {
    await expect(
      SelfExtendAttentionKernel.create(context, {
        ...options,
        shape: { headCount: 2, kvHeadCount: 1, headSize: 6 },
        singleQueryKernel: "key-parallel",
      }),
    ).rejects.toThrow(/singleQueryKernel.*key-parallel.*multiple of 4.*got 6/);
  });

  it("falls back to the query-tiled kernel for a rotary dimension that is not a multiple of 4, and refuses key-parallel there", async () => {
    const partial = {
      ...options,
      shape: { headCount: 2, kvHeadCount: 1, headSize: 8 },
      rope: { ...options.rope, rotaryDimension: 6 },
    };
    const kernel = await SelfExtendAttentionKernel.create(context, partial);
    expect(kernel.singleQueryKernel).toBe("query-tiled");
    kernel.destroy();
    await expect(
      SelfExtendAttentionKernel.create(context, { ...partial, singleQueryKernel: "key-parallel" }),
    ).rejects.toThrow(/singleQueryKernel.*key-parallel.*rotary dimension that is a multiple of 4.*got 6/);
  });

  it("refuses an unknown kernel name", async () => {
    await expect(
      SelfExtendAttentionKernel.create(context, {
        ...options,
        shape: { headCount: 2, kvHeadCount: 1, headSize: 8 },
        singleQueryKernel: "fast" as SingleQueryKernel,
      }),
    ).rejects.toThrow(/singleQueryKernel.*fast.*must be one of "subgroup", "key-parallel", "query-tiled"/);
  });

  it("refuses the subgroup kernel on a device without subgroups (Dawn's OpenGL ES), naming the rule", async () => {
    if (context.subgroupSizes !== undefined) {
      throw new Error(
        `this file's default device (${context.adapterDescription}) was meant to have no subgroups`,
      );
    }
    await expect(
      SelfExtendAttentionKernel.create(context, {
        ...options,
        shape: { headCount: 2, kvHeadCount: 1, headSize: 8 },
        singleQueryKernel: "subgroup",
      }),
    ).rejects.toThrow(/singleQueryKernel.*subgroup.*needs the subgroups feature/);
  });
});

describe("the subgroup kernel on a device with subgroups (Mesa's lavapipe: subgroups of 8)", () => {
  let lavapipe: WebGpuContext;
  beforeAll(async () => {
    lavapipe = await requestLavapipeDevice();
    expect(lavapipe.subgroupSizes, `${lavapipe.adapterDescription} granted no subgroups`).toEqual({
      minimum: 8,
      maximum: 8,
    });
  });
  afterAll(() => lavapipe?.destroy());

  for (const testCase of cases.filter((candidate) => candidate.queryCount === 1)) {
    const rotaryDimension = testCase.rotaryDimension ?? testCase.headSize;
    if (testCase.layout === "half-split" && rotaryDimension % 8 !== 0) {
      it(`${testCase.name}: refused (half-split rotary ${rotaryDimension} is not whole vec4s per half), key-parallel by default`, async () => {
        const options = {
          shape: {
            headCount: testCase.headCount,
            kvHeadCount: testCase.kvHeadCount,
            headSize: testCase.headSize,
          },
          config: testCase.config,
          rope: { layout: testCase.layout, rotaryDimension },
          contextSize: testCase.keyCount,
        };
        await expect(
          SelfExtendAttentionKernel.create(lavapipe, { ...options, singleQueryKernel: "subgroup" }),
        ).rejects.toThrow(/singleQueryKernel.*subgroup.*multiple of 8 with the half-split layout.*got 12/);
        const kernel = await SelfExtendAttentionKernel.create(lavapipe, options);
        expect(kernel.singleQueryKernel).toBe("key-parallel");
        kernel.destroy();
      });
      continue;
    }
    if (testCase.tiles?.workgroupSize === 256 && testCase.headSize === 128) {
      // Subgroups of 8 give 8 lanes per row, so 256 invocations are 32 row groups, whose partial
      // softmaxes (4 heads x 32 vec4s + max and sum each) need 4 + 32 x 4 x (16 x 32 + 8) = 66564
      // bytes of workgroup memory: lavapipe has 32768. The case runs with workgroups of 64 instead.
      it(`${testCase.name}: refused for its workgroup memory, runs with workgroups of 64, subgroup kernel`, async () => {
        await expect(
          SelfExtendAttentionKernel.create(lavapipe, {
            shape: { headCount: testCase.headCount, kvHeadCount: testCase.kvHeadCount, headSize: 128 },
            config: testCase.config,
            rope: { layout: testCase.layout },
            contextSize: testCase.keyCount,
            tiles: testCase.tiles,
            singleQueryKernel: "subgroup",
          }),
        ).rejects.toThrow(
          /singleQueryKernel.*subgroup.*needs 66564 bytes of workgroup memory.*the device has 32768/,
        );
        await checkCase(
          lavapipe,
          { ...testCase, tiles: { ...testCase.tiles, workgroupSize: 64 } },
          "subgroup",
        );
      });
      continue;
    }
    it(`${testCase.name}, subgroup kernel`, () => checkCase(lavapipe, testCase, "subgroup"));
    if (testCase.config.groupSize !== 1) {
      it(`${testCase.name}, subgroup kernel, cached group keys`, () =>
        checkCase(lavapipe, testCase, "subgroup", true));
    }
  }

  it("is the default for one query where the device has subgroups", async () => {
    const kernel = await SelfExtendAttentionKernel.create(lavapipe, {
      shape: { headCount: 8, kvHeadCount: 2, headSize: 128 },
      config: { groupSize: 4, neighborWindow: 16 },
      rope: { layout: "half-split" },
      contextSize: 64,
    });
    expect(kernel.singleQueryKernel).toBe("subgroup");
    expect(kernel.subgroupLanes).toBe(8);
    kernel.destroy();
  });
});

describe("Gemma 2 scoring options", () => {
  const options = {
    shape: { headCount: 2, kvHeadCount: 1, headSize: 8 },
    config: { groupSize: 1, neighborWindow: 4 },
    rope: { layout: "interleaved" as const },
    contextSize: 16,
  };

  it("refuses a sliding window with Self-Extend, naming the value and the rule", async () => {
    await expect(
      SelfExtendAttentionKernel.create(context, {
        ...options,
        config: { groupSize: 4, neighborWindow: 8 },
        slidingWindow: 12,
      }),
    ).rejects.toThrow(/slidingWindow.*12.*needs groupSize 1 .*got groupSize 4/);
  });

  it.each([
    ["slidingWindow", { slidingWindow: 0 }, /slidingWindow.*0.*positive integer/],
    ["slidingWindow", { slidingWindow: 2.5 }, /slidingWindow.*2\.5.*positive integer/],
    ["logitSoftCap", { logitSoftCap: -1 }, /logitSoftCap.*-1.*positive finite/],
    ["logitSoftCap", { logitSoftCap: Number.POSITIVE_INFINITY }, /logitSoftCap.*positive finite/],
  ])("refuses a bad %s %o", async (_name, extra, message) => {
    await expect(SelfExtendAttentionKernel.create(context, { ...options, ...extra })).rejects.toThrow(
      message,
    );
  });
});
