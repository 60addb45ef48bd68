/**
 * The decode matmuls on their own: the "tiled" kind's matrix-vector kernel (one row of activations
 * times a weight matrix) at a model's shapes, for several workgroup layouts (lanes per output x
 * outputs per workgroup), one run. Prints milliseconds per call and the weights' bytes over that
 * time: a matrix-vector product reads each weight once, so on a GPU it says how close the kernel
 * comes to the memory's bandwidth (pass the device's peak as --peak-gb-per-second for the fraction).
 * The first layout listed is the forward pass's (matrixVectorLayout); 64 x 1 is the first version's
 * layout (which also kept one load in flight per lane).
 *
 *   npx tsx packages/webgpu/scripts/benchmark-matrix-vector.ts [--shapes 2048x2048,2048x512,2048x8192,8192x2048,2048x128256
 *     (inputs x outputs; the default is Llama-3.2-1B's)] [--layouts 64x4,32x8,64x1,128x2] [--repeat 20]
 *     [--peak-gb-per-second 3350]
 */
import { runScriptMain } from "@self-extend/evaluation";
import { type MatrixVectorLayout, matrixVectorLayout, matrixVectorShader } from "../src/forward-pass.wgsl.js";
import { createStorageBuffer, uniformUsage, uploadFloat32, withErrorScopes } from "../src/gpu-buffers.js";
import { requestWebGpuDevice } from "../src/index.js";

function pairs(text: string, name: string): [number, number][] {
  return text.split(",").map((item) => {
    const [first, second] = item.split("x").map(Number);
    if (!(Number.isInteger(first) && first >= 1 && Number.isInteger(second) && second >= 1)) {
      throw new Error(`--${name} ${item} must be two positive integers joined by "x"`);
    }
    return [first, second];
  });
}

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? (process.argv[index + 1] ?? "") : fallback;
}

await runScriptMain("benchmark-matrix-vector", async () => {
  const shapes = pairs(option("shapes", "2048x2048,2048x512,2048x8192,8192x2048,2048x128256"), "shapes");
  const defaultLayout = `${matrixVectorLayout.lanes}x${matrixVectorLayout.outputs}`;
  const layouts: MatrixVectorLayout[] = pairs(
    option("layouts", [...new Set([defaultLayout, "32x8", "64x1", "64x4", "128x2"])].join(",")),
    "layouts",
  ).map(([lanes, outputs]) => {
    if (2 ** Math.round(Math.log2(lanes)) !== lanes)
      throw new Error(`--layouts: lanes ${lanes} must be a power of two`);
    return { lanes, outputs };
  });
  const repeat = Number(option("repeat", "20"));
  const peak = Number(option("peak-gb-per-second", "0"));
  if (!(Number.isInteger(repeat) && repeat >= 1))
    throw new Error(`--repeat ${repeat} must be an integer >= 1`);
  if (!(peak >= 0)) throw new Error(`--peak-gb-per-second ${peak} must be a number >= 0`);

  const context = await requestWebGpuDevice();
  const { device } = context;
  console.log(`device: ${context.adapterDescription}`);
  const pipelines = await Promise.all(
    layouts.map((layout) =>
      withErrorScopes(device, `compiling the ${layout.lanes} x ${layout.outputs} matrix-vector kernel`, () =>
        device.createComputePipeline({
          layout: "auto",
          compute: {
            module: device.createShaderModule({ code: matrixVectorShader("float32", layout) }),
            entryPoint: "main",
          },
        }),
      ),
    ),
  );
  const header = layouts.map(
    (layout) => `${layout.lanes}x${layout.outputs} ms | GB/s |${peak > 0 ? " of peak |" : ""}`,
  );
  console.log(`float32 weights, one row, ${repeat} calls per timed sample, median of 5`);
  console.log(`| inputs x outputs | weights MB | ${header.join(" ")}`);
  console.log(`|---|---:|${layouts.map(() => (peak > 0 ? "---:|---:|---:|" : "---:|---:|")).join("")}`);
  for (const [inputs, outputs] of shapes) {
    const weights = createStorageBuffer(device, outputs * inputs * 4);
    const x = uploadFloat32(
      device,
      Float32Array.from({ length: inputs }, (_, i) => Math.sin(i)),
    );
    const bias = createStorageBuffer(device, 16);
    const result = createStorageBuffer(device, outputs * 4);
    const uniform = device.createBuffer({ size: 32, usage: uniformUsage, mappedAtCreation: true });
    new Uint32Array(uniform.getMappedRange()).set([1, outputs, inputs, 0, 0, 0, outputs]);
    uniform.unmap();
    const cells: string[] = [];
    for (const [index, layout] of layouts.entries()) {
      const pipeline = pipelines[index];
      const bindGroup = device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [uniform, x, weights, bias, result].map((buffer, binding) => ({
          binding,
          resource: { buffer },
        })),
      });
      const groups = Math.ceil(outputs / layout.outputs);
      const largest = context.limits.maxComputeWorkgroupsPerDimension;
      const run = async () => {
        const encoder = device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup);
        for (let call = 0; call < repeat; call++)
          pass.dispatchWorkgroups(Math.min(groups, largest), Math.ceil(groups / largest));
        pass.end();
        const started = performance.now();
        device.queue.submit([encoder.finish()]);
        await device.queue.onSubmittedWorkDone();
        return (performance.now() - started) / repeat;
      };
      await run();
      const samples: number[] = [];
      for (let sample = 0; sample < 5; sample++) samples.push(await run());
      const milliseconds = samples.sort((a, b) => a - b)[2];
      const gigabytesPerSecond = (outputs * inputs * 4) / (milliseconds / 1000) / 1e9;
      cells.push(
        `${milliseconds.toFixed(3)} | ${gigabytesPerSecond.toFixed(0)} |${peak > 0 ? ` ${(gigabytesPerSecond / peak).toFixed(2)} |` : ""}`,
      );
    }
    console.log(
      `| ${inputs} x ${outputs} | ${((outputs * inputs * 4) / 1e6).toFixed(1)} | ${cells.join(" ")}`,
    );
    for (const buffer of [weights, x, bias, result, uniform]) buffer.destroy();
  }
  context.assertHealthy();
  context.destroy();
});
