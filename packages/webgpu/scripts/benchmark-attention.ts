/**
 * Fused single-pass Self-Extend attention vs the two-pass baseline vs plain attention (the same
 * kernel with G = 1), same device, same shapes, one run. Prints milliseconds per call and ratios.
 * The fused and plain kernels split keys across workgroups when a call under-fills the device
 * (their default; never on CPU implementations); "fused, one split" is the fused kernel with
 * splitting off, so the last column is what key splitting buys. The two-pass baseline never splits.
 * A call of one query runs on the subgroup kernel by default where the device has subgroups, on
 * the key-parallel kernel otherwise; "query-tiled" and "key-parallel" are the same fused kernel
 * made to run it on those kernels (query-tiled: the kernel every other call uses, the one before
 * the single-query kernels existed), so "query-tiled / fused" and "key-parallel / fused" are what
 * the default buys over each.
 * "cached group keys" is the fused kernel reading group-level keys from a second copy of the keys
 * (key j rotated at floor(j/G), after the copies at j in the same buffer) instead of rotating them
 * back on every call; "cached / plain" is its cost over plain attention, beside "fused / plain".
 * The key/value column is the bytes of keys and values one fused call must read (float32) over its
 * time: a decode is memory-bound, so on a GPU it says how close the kernel comes to the memory's
 * bandwidth (pass the device's peak as --peak-gb-per-second to print the fraction).
 *
 *   npx tsx packages/webgpu/scripts/benchmark-attention.ts [--contexts 1024,4096,16384] [--queries 1,64]
 *     [--shape 8,2,64 (query heads, key/value heads, head size)] [--repeat 1 (calls per timed sample)]
 *     [--peak-gb-per-second 3350] [--target-workgroups 512 (the fused and plain kernels' split target;
 *     default: the device's, defaultTargetWorkgroups)]
 *
 * --repeat N records N calls into one compute pass and submits them at once, so the per-call time
 * (the sample divided by N) leaves out recording and the fixed latency of a submit-and-wait round
 * trip, which is most of a short call's wall time: what remains is the GPU's time.
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
import {
  randomValues,
  rotateKeysAtGroupPositions,
  rotateKeysAtTheirPositions,
} from "../test/browser/attention-inputs.js";

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
 * Median GPU time per call of each variant: `repeat` calls are recorded into one compute pass
 * before the clock starts, then submitted at once and waited for, so the time leaves out recording
 * and most of the fixed cost of a submit-and-wait round trip. One warm-up each (pipeline
 * compilation). Variants are sampled round-robin so load from other processes on a shared machine
 * hits them alike.
 */
async function timeRoundRobin(
  variants: readonly ((pass: GPUComputePassEncoder) => void)[],
): Promise<number[]> {
  const sample = async (record: (pass: GPUComputePassEncoder) => void, calls: number) => {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (let call = 0; call < calls; call++) record(pass);
    pass.end();
    const commands = encoder.finish();
    const t0 = performance.now();
    device.queue.submit([commands]);
    await device.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / calls;
  };
  for (const record of variants) await sample(record, 1);
  const samples = variants.map(() => [] as number[]);
  const started = performance.now();
  while (samples[0].length < 5 || (performance.now() - started < 3000 && samples[0].length < 25)) {
    for (const [index, record] of variants.entries()) samples[index].push(await sample(record, repeat));
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
const rawKeys = randomValues(largest * kvWidth, 1);
const keys = rotateKeysAtTheirPositions(rawKeys, largest, shape, table);
const groupKeys = rotateKeysAtGroupPositions(rawKeys, largest, shape, table, selfExtend.groupSize);
const bothKeyCopies = new Float64Array(keys.length + groupKeys.length);
bothKeyCopies.set(keys);
bothKeyCopies.set(groupKeys, keys.length);
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
const cachedBuffers = { ...buffers, keys: uploadFloat32(device, bothKeyCopies) };
const splitTarget = targetWorkgroupsOption > 0 ? { targetWorkgroups: targetWorkgroupsOption } : {};
const fused = await SelfExtendAttentionKernel.create(context, {
  ...common,
  ...splitTarget,
  config: selfExtend,
});
const fusedCachedGroupKeys = await SelfExtendAttentionKernel.create(context, {
  ...common,
  ...splitTarget,
  config: selfExtend,
  cachedGroupKeys: true,
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
const fusedKeyParallel = await SelfExtendAttentionKernel.create(context, {
  ...common,
  ...splitTarget,
  config: selfExtend,
  singleQueryKernel: "key-parallel",
});
console.log(
  `key splits: up to ${fused.targetWorkgroups} workgroups per call; one query runs on the ${fused.singleQueryKernel} kernel${fused.singleQueryWorkgroupSize === undefined ? "" : ` (${fused.singleQueryWorkgroupSize} invocations per workgroup${fused.subgroupLanes === undefined ? "" : `, ${fused.subgroupLanes} lanes per key row`})`}`,
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
  `| keys | queries | splits | fused ms | cached group keys ms | fused, one split ms | query-tiled ms | key-parallel ms | two-pass ms | plain ms | two-pass / fused | fused / plain | cached / plain | one split / fused | query-tiled / fused | key-parallel / fused | fused K/V GB/s |${fractionHeader}`,
);
console.log(
  `|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|${fractionHeader === "" ? "" : "---:|"}`,
);
for (const keyCount of contexts) {
  for (const queryCount of queryCounts) {
    const call = { queryStart: keyCount - queryCount, queryCount, keyCount };
    // Each kernel's call parameters are written once per call shape, as a forward pass does per block.
    const [fusedCall, cachedCall, oneSplitCall, queryTiledCall, keyParallelCall, plainCall] = [
      fused,
      fusedCachedGroupKeys,
      fusedOneSplit,
      fusedQueryTiled,
      fusedKeyParallel,
      plain,
    ].map((kernel) => kernel.createCallParameters(call));
    const [fusedMs, cachedMs, oneSplitMs, queryTiledMs, keyParallelMs, twoPassMs, plainMs] =
      await timeRoundRobin([
        (pass) => fused.encode(pass, buffers, call, fusedCall),
        (pass) => fusedCachedGroupKeys.encode(pass, cachedBuffers, call, cachedCall),
        (pass) => fusedOneSplit.encode(pass, buffers, call, oneSplitCall),
        (pass) => fusedQueryTiled.encode(pass, buffers, call, queryTiledCall),
        (pass) => fusedKeyParallel.encode(pass, buffers, call, keyParallelCall),
        (pass) => twoPass.encode(pass, buffers, call),
        (pass) => plain.encode(pass, buffers, call, plainCall),
      ]);
    for (const parameters of [
      fusedCall,
      cachedCall,
      oneSplitCall,
      queryTiledCall,
      keyParallelCall,
      plainCall,
    ]) {
      parameters.destroy();
    }
    const { splitCount } = fused.planKeySplits(call);
    // Keys and values of every key position, float32, read once per call (GQA shares them).
    const gigabytesPerSecond = (keyCount * kvWidth * 4 * 2) / (fusedMs / 1000) / 1e9;
    const fraction =
      peakGigabytesPerSecond > 0 ? ` ${(gigabytesPerSecond / peakGigabytesPerSecond).toFixed(3)} |` : "";
    console.log(
      `| ${keyCount} | ${queryCount} | ${splitCount} | ${fusedMs.toFixed(3)} | ${cachedMs.toFixed(3)} | ${oneSplitMs.toFixed(3)} | ${queryTiledMs.toFixed(3)} | ${keyParallelMs.toFixed(3)} | ${twoPassMs.toFixed(3)} | ${plainMs.toFixed(3)} | ${(twoPassMs / fusedMs).toFixed(2)} | ${(fusedMs / plainMs).toFixed(2)} | ${(cachedMs / plainMs).toFixed(2)} | ${(oneSplitMs / fusedMs).toFixed(2)} | ${(queryTiledMs / fusedMs).toFixed(2)} | ${(keyParallelMs / fusedMs).toFixed(2)} | ${gigabytesPerSecond.toFixed(1)} |${fraction}`,
    );
  }
}
context.assertHealthy();
process.exit(0);
