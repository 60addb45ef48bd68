/**
 * Fused single-pass Self-Extend attention vs the two-pass baseline vs plain attention (the same
 * kernel with G = 1), same device, same shapes, one run. Prints milliseconds per call and ratios.
 * The fused and plain kernels split keys across workgroups when a call under-fills the device
 * (their default; never on CPU implementations); "fused, one split" is the fused kernel with
 * splitting off, so the last column is what key splitting buys. The two-pass baseline never splits.
 * A call of one query runs on the key-parallel kernel by default; "query-tiled" is the same fused
 * kernel made to run it on the query-tiled kernel every other call uses (the kernel before the
 * key-parallel one existed), so "query-tiled / fused" is what the key-parallel kernel buys.
 * The key/value column is the bytes of keys and values one fused call must read (float32) over its
 * time: a decode is memory-bound, so on a GPU it says how close the kernel comes to the memory's
 * bandwidth (pass the device's peak as --peak-gb-per-second to print the fraction).
 *
 *   npx tsx packages/webgpu/scripts/benchmark-attention.ts [--contexts 1024,4096,16384] [--queries 1,64]
 *     [--shape 8,2,64 (query heads, key/value heads, head size)] [--repeat 1 (calls per timed sample)]
 *     [--peak-gb-per-second 3350] [--target-workgroups 512 (the fused and plain kernels' split target;
 *     default: the device's, defaultTargetWorkgroups)]
 *
 * --repeat N queues N calls before waiting for the device once, so the per-call time (the sample
 * divided by N) leaves out the fixed latency of a submit-and-wait round trip, which is most of a
 * short call's wall time.
 */
import { createRopeTable } from "@self-extend/core";
import { createStorageBuffer } from "../src/gpu-buffers.js";
import { requestWebGpuDevice } from "../src/index.js";
import {
  createGpuRopeTable,
  largestRotatedPosition,
  SelfExtendAttentionKernel,
  TwoPassSelfExtendAttention,
  uploadFloat32,
} from "../src/kernels.js";
import { randomValues, rotateKeysAtTheirPositions } from "../test/browser/attention-inputs.js";

function option(name: string, fallback: string): number[] {
  const index = process.argv.indexOf(`--${name}`);
  return (index >= 0 ? process.argv[index + 1] : fallback).split(",").map(Number);
}

const contexts = option("contexts", "1024,4096,16384");
const queryCounts = option("queries", "1,64");
const [headCount, kvHeadCount, headSize] = option("shape", "8,2,64");
const shape = { headCount, kvHeadCount, headSize };
const [repeat] = option("repeat", "1");
const [peakGigabytesPerSecond] = option("peak-gb-per-second", "0");
const [targetWorkgroupsOption] = option("target-workgroups", "0");
if (!Number.isInteger(targetWorkgroupsOption) || targetWorkgroupsOption < 0) {
  console.error(`benchmark-attention: --target-workgroups ${targetWorkgroupsOption} must be an integer >= 0`);
  process.exit(2);
}
for (const [name, value] of Object.entries({ headCount, kvHeadCount, headSize, repeat })) {
  if (!Number.isInteger(value) || value < 1) {
    console.error(`benchmark-attention: ${name} ${value} must be an integer >= 1`);
    process.exit(2);
  }
}
if (headCount % kvHeadCount !== 0 || !(peakGigabytesPerSecond >= 0)) {
  console.error(
    `benchmark-attention: --shape ${headCount},${kvHeadCount},${headSize} needs query heads a multiple of key/value heads, and --peak-gb-per-second ${peakGigabytesPerSecond} a number >= 0`,
  );
  process.exit(2);
}
const selfExtend = { groupSize: 8, neighborWindow: 256 };
const layout = "interleaved" as const;

const context = await requestWebGpuDevice();
const { device } = context;
console.log(`device: ${context.adapterDescription}`);
console.log(
  `shape: ${shape.headCount} heads, ${shape.kvHeadCount} kv heads, head size ${shape.headSize}; Self-Extend G=${selfExtend.groupSize} W=${selfExtend.neighborWindow}; ${repeat} call(s) per timed sample`,
);

/**
 * Median wall time per variant (run + wait for the queue), after one warm-up each (pipeline
 * compilation). Variants are sampled round-robin so load from other processes on a shared machine
 * hits them alike.
 */
async function timeRoundRobin(variants: readonly (() => void)[]): Promise<number[]> {
  for (const run of variants) {
    run();
    await device.queue.onSubmittedWorkDone();
  }
  const repeated = variants.map((run) => () => {
    for (let call = 0; call < repeat; call++) run();
  });
  const samples = variants.map(() => [] as number[]);
  const started = performance.now();
  while (samples[0].length < 5 || (performance.now() - started < 3000 && samples[0].length < 25)) {
    for (const [index, run] of repeated.entries()) {
      const t0 = performance.now();
      run();
      await device.queue.onSubmittedWorkDone();
      samples[index].push((performance.now() - t0) / repeat);
    }
  }
  return samples.map((list) => list.sort((x, y) => x - y)[Math.floor(list.length / 2)]);
}

const largest = Math.max(...contexts);
const table = createRopeTable(
  { layout, headSize: shape.headSize },
  largestRotatedPosition(largest, selfExtend) + 1,
);
const ropeTable = createGpuRopeTable(device, { layout, headSize: shape.headSize }, table.positionCount);
const kvWidth = shape.kvHeadCount * shape.headSize;
const keys = rotateKeysAtTheirPositions(randomValues(largest * kvWidth, 1), largest, shape, table);
const buffers = {
  queries: uploadFloat32(
    device,
    randomValues(Math.max(...queryCounts) * shape.headCount * shape.headSize, 2),
  ),
  keys: uploadFloat32(device, keys),
  values: uploadFloat32(device, randomValues(largest * kvWidth, 3)),
  output: createStorageBuffer(device, Math.max(...queryCounts) * shape.headCount * shape.headSize * 4),
};
const common = { shape, rope: { layout }, contextSize: largest, ropeTable };
const splitTarget = targetWorkgroupsOption > 0 ? { targetWorkgroups: targetWorkgroupsOption } : {};
const fused = await SelfExtendAttentionKernel.create(context, {
  ...common,
  ...splitTarget,
  config: selfExtend,
});
const fusedOneSplit = await SelfExtendAttentionKernel.create(context, {
  ...common,
  config: selfExtend,
  targetWorkgroups: 1,
});
const fusedQueryTiled = await SelfExtendAttentionKernel.create(context, {
  ...common,
  ...splitTarget,
  config: selfExtend,
  singleQueryKernel: "query-tiled",
});
console.log(
  `key splits: up to ${fused.targetWorkgroups} workgroups per call; one query runs on the ${fused.singleQueryKernel} kernel`,
);
const plain = await SelfExtendAttentionKernel.create(context, {
  ...common,
  ...splitTarget,
  config: { groupSize: 1, neighborWindow: 1 },
});
const twoPass = await TwoPassSelfExtendAttention.create(
  context,
  { ...common, config: selfExtend },
  Math.max(...queryCounts),
);

const fractionHeader = peakGigabytesPerSecond > 0 ? " fused K/V read / peak |" : "";
console.log(
  `| keys | queries | splits | fused ms | fused, one split ms | query-tiled ms | two-pass ms | plain ms | two-pass / fused | fused / plain | one split / fused | query-tiled / fused | fused K/V GB/s |${fractionHeader}`,
);
console.log(
  `|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|${fractionHeader === "" ? "" : "---:|"}`,
);
for (const keyCount of contexts) {
  for (const queryCount of queryCounts) {
    const call = { queryStart: keyCount - queryCount, queryCount, keyCount };
    const [fusedMs, oneSplitMs, queryTiledMs, twoPassMs, plainMs] = await timeRoundRobin([
      () => fused.run(buffers, call),
      () => fusedOneSplit.run(buffers, call),
      () => fusedQueryTiled.run(buffers, call),
      () => twoPass.run(buffers, call),
      () => plain.run(buffers, call),
    ]);
    const { splitCount } = fused.planKeySplits(call);
    // Keys and values of every key position, float32, read once per call (GQA shares them).
    const gigabytesPerSecond = (keyCount * kvWidth * 4 * 2) / (fusedMs / 1000) / 1e9;
    const fraction =
      peakGigabytesPerSecond > 0 ? ` ${(gigabytesPerSecond / peakGigabytesPerSecond).toFixed(3)} |` : "";
    console.log(
      `| ${keyCount} | ${queryCount} | ${splitCount} | ${fusedMs.toFixed(3)} | ${oneSplitMs.toFixed(3)} | ${queryTiledMs.toFixed(3)} | ${twoPassMs.toFixed(3)} | ${plainMs.toFixed(3)} | ${(twoPassMs / fusedMs).toFixed(2)} | ${(fusedMs / plainMs).toFixed(2)} | ${(oneSplitMs / fusedMs).toFixed(2)} | ${(queryTiledMs / fusedMs).toFixed(2)} | ${gigabytesPerSecond.toFixed(1)} |${fraction}`,
    );
  }
}
context.assertHealthy();
process.exit(0);
