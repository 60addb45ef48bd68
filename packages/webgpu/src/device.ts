/**
 * Getting a WebGPU device, in a browser or in Node, and the limits every kernel is sized from.
 *
 * In Node the `webgpu` package (Dawn) is an optional peer dependency, imported only when asked
 * through `#node-runtime`, whose `browser` condition leaves it out of browser bundles. Dawn needs a driver at run time; on machines without a GPU the
 * verified CPU implementations are Mesa's OpenGL ES (EGL surfaceless) and Vulkan through
 * SwiftShader or lavapipe (see the runtimes notes). We try Dawn's default backend first (Vulkan
 * when a driver is installed, the fastest CPU option with lavapipe) and fall back to OpenGL ES in
 * compatibility mode, which works on Debian's stock Mesa.
 *
 * Limits: WebGPU hands out the spec's small defaults unless a device asks for more, and CPU
 * implementations differ widely (GLES: 1024 invocations per workgroup, SwiftShader in Chromium:
 * 256). We ask for what the adapter reports for the handful of limits the kernels care about and
 * size tiles from the device's actual limits, never from constants.
 */
import { type DawnModule, hasInstalledVulkanDriver, importDawn } from "#node-runtime";

/** Thrown when no WebGPU adapter or device can be had; the message says what is missing. */
export class WebGpuUnavailableError extends Error {
  override readonly name = "WebGpuUnavailableError";
}

/** Thrown when a device error (validation, out of memory, device loss) is seen. */
export class WebGpuDeviceError extends Error {
  override readonly name = "WebGpuDeviceError";
}

export type NodeWebGpuBackend = "default" | "opengles" | "vulkan";

export interface RequestWebGpuDeviceOptions {
  /**
   * Node only: which Dawn backends to try, in order. Defaults to `SELF_EXTEND_WEBGPU_BACKEND`
   * (comma-separated), else Dawn's default (Vulkan) first when a Vulkan driver is declared or
   * installed, OpenGL ES first otherwise.
   */
  readonly nodeBackends?: readonly NodeWebGpuBackend[];
  /** Ask for `shader-f16` when the adapter has it. Defaults to true. */
  readonly preferFloat16?: boolean;
  /** An already created `GPU` object (navigator.gpu or Dawn's); skips discovery. */
  readonly gpu?: GPU;
}

/** The limits the kernels are sized from, as granted to the device. */
export interface KernelLimits {
  readonly maxComputeInvocationsPerWorkgroup: number;
  readonly maxComputeWorkgroupSizeX: number;
  readonly maxComputeWorkgroupStorageSize: number;
  readonly maxComputeWorkgroupsPerDimension: number;
  readonly maxStorageBuffersPerShaderStage: number;
  readonly maxStorageBufferBindingSize: number;
  readonly maxBufferSize: number;
}

export interface WebGpuContext {
  readonly device: GPUDevice;
  readonly limits: KernelLimits;
  /** Whether `shader-f16` was granted. */
  readonly float16: boolean;
  /**
   * The adapter's subgroup sizes where the `subgroups` feature was granted (kernels that use
   * subgroups need both bounds: a subgroup may be any size between them); absent otherwise.
   */
  readonly subgroupSizes?: { readonly minimum: number; readonly maximum: number };
  /** A one-line description of the adapter (vendor, architecture, backend). */
  readonly adapterDescription: string;
  /**
   * Most loop iterations one shader invocation may run before the driver silently stops it:
   * 65535 on Mesa's llvmpipe/lavapipe (gallivm's loop limiter), unbounded elsewhere. Kernels whose
   * loops grow with the input check it and refuse calls that would be cut short.
   */
  readonly loopIterationLimit: number;
  /** Set once the device is lost; kernels check it so a loss is reported, never a hang. */
  readonly lostReason: () => string | undefined;
  /** Throws {@link WebGpuDeviceError} if the device was lost or reported an uncaptured error. */
  readonly assertHealthy: () => void;
  destroy(): void;
}

const requestedLimitNames = [
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupStorageSize",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
  "maxStorageBufferBindingSize",
  "maxBufferSize",
] as const satisfies readonly (keyof KernelLimits)[];

function isNode(): boolean {
  return typeof process !== "undefined" && typeof process.versions?.node === "string";
}

function environmentBackends(): NodeWebGpuBackend[] | undefined {
  const value = isNode() ? process.env.SELF_EXTEND_WEBGPU_BACKEND : undefined;
  if (!value) return undefined;
  const names = value.split(",").map((name) => name.trim());
  for (const name of names) {
    if (name !== "default" && name !== "opengles" && name !== "vulkan") {
      throw new WebGpuUnavailableError(
        `SELF_EXTEND_WEBGPU_BACKEND names an unknown backend ${JSON.stringify(name)} (known: default, opengles, vulkan)`,
      );
    }
  }
  return names as NodeWebGpuBackend[];
}

async function loadDawn(): Promise<DawnModule> {
  try {
    return await importDawn();
  } catch (error) {
    throw new WebGpuUnavailableError(
      `WebGPU in Node needs the optional peer dependency "webgpu" (Dawn): ${(error as Error).message}`,
    );
  }
}

/**
 * Dawn instances created in Node. dawn.node tears its instance down when the `GPU` object is
 * garbage-collected, even while a device made from it is alive (seen as "futex facility returned an
 * unexpected error code" crashes), so every instance we create is kept for the life of the process.
 */
const liveDawnInstances = new Set<GPU>();

async function requestNodeAdapter(backends: readonly NodeWebGpuBackend[]): Promise<GPUAdapter> {
  const dawn = await loadDawn();
  const attempts: string[] = [];
  for (const backend of backends) {
    if (backend === "opengles" && process.env.EGL_PLATFORM === undefined) {
      // Mesa's EGL needs a platform without a display server; surfaceless needs none.
      process.env.EGL_PLATFORM = "surfaceless";
    }
    const flags = backend === "default" ? [] : [`backend=${backend}`];
    try {
      const gpu = dawn.create(flags);
      liveDawnInstances.add(gpu);
      // OpenGL ES cannot offer every core feature; Dawn exposes it only in compatibility mode.
      const adapter = await gpu.requestAdapter(
        backend === "opengles" ? ({ featureLevel: "compatibility" } as GPURequestAdapterOptions) : {},
      );
      if (adapter) return adapter;
      attempts.push(`${backend}: no adapter`);
    } catch (error) {
      attempts.push(`${backend}: ${(error as Error).message}`);
    }
  }
  throw new WebGpuUnavailableError(
    `no WebGPU adapter in Node (tried ${attempts.join("; ")}). On a machine without a GPU install Mesa's ` +
      "EGL/GLES drivers (Debian: libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri) or a Vulkan driver " +
      "(libvulkan1 plus lavapipe or SwiftShader).",
  );
}

/**
 * Vulkan first when a Vulkan driver is declared (it is the faster CPU option with lavapipe, and the
 * only one on real GPUs), otherwise OpenGL ES first: asking Vulkan without a driver only prints
 * loader warnings before falling back.
 */
async function defaultNodeBackends(): Promise<NodeWebGpuBackend[]> {
  const declared = [process.env.VK_DRIVER_FILES, process.env.VK_ICD_FILENAMES].some((value) => !!value);
  const installed = await hasInstalledVulkanDriver();
  return declared || installed ? ["default", "opengles"] : ["opengles", "default"];
}

async function requestAdapter(options: RequestWebGpuDeviceOptions): Promise<GPUAdapter> {
  if (options.gpu) {
    const adapter = await options.gpu.requestAdapter();
    if (!adapter) throw new WebGpuUnavailableError("the given GPU object returned no adapter");
    return adapter;
  }
  const navigatorGpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (navigatorGpu) {
    const adapter = await navigatorGpu.requestAdapter();
    if (adapter) return adapter;
    if (!isNode())
      throw new WebGpuUnavailableError("navigator.gpu returned no adapter (WebGPU disabled or blocklisted)");
  }
  if (!isNode()) {
    throw new WebGpuUnavailableError(
      "this browser has no navigator.gpu (WebGPU not supported or not enabled)",
    );
  }
  return requestNodeAdapter(options.nodeBackends ?? environmentBackends() ?? (await defaultNodeBackends()));
}

function describeAdapter(adapter: GPUAdapter): string {
  const info = adapter.info as GPUAdapterInfo & { backend?: string };
  const parts = [info?.vendor, info?.architecture, info?.device, info?.description, info?.backend].filter(
    (part) => typeof part === "string" && part.length > 0,
  );
  return parts.length > 0 ? parts.join(" / ") : "unnamed adapter";
}

/** Requests a device with the adapter's own kernel limits (not the spec's small defaults). */
export async function requestWebGpuDevice(options: RequestWebGpuDeviceOptions = {}): Promise<WebGpuContext> {
  const adapter = await requestAdapter(options);
  const requiredLimits: Record<string, number> = {};
  for (const name of requestedLimitNames) requiredLimits[name] = adapter.limits[name];
  const float16 = (options.preferFloat16 ?? true) && adapter.features.has("shader-f16");
  // Subgroups only where the adapter also says how large they are (older browsers do not).
  const info = adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  const subgroupSizes =
    adapter.features.has("subgroups") &&
    Number.isInteger(info?.subgroupMinSize) &&
    Number.isInteger(info?.subgroupMaxSize) &&
    (info.subgroupMinSize as number) >= 1
      ? { minimum: info.subgroupMinSize as number, maximum: info.subgroupMaxSize as number }
      : undefined;
  const requiredFeatures: GPUFeatureName[] = [];
  if (float16) requiredFeatures.push("shader-f16");
  if (subgroupSizes !== undefined) requiredFeatures.push("subgroups" as GPUFeatureName);
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  const limits = {} as Record<keyof KernelLimits, number>;
  for (const name of requestedLimitNames) limits[name] = device.limits[name];

  const adapterDescription = describeAdapter(adapter);
  let lost: string | undefined;
  let uncaptured: string | undefined;
  void device.lost.then((info) => {
    lost = `WebGPU device lost (${info.reason}): ${info.message}`;
  });
  device.addEventListener("uncapturederror", (event) => {
    uncaptured ??= `WebGPU error: ${(event as GPUUncapturedErrorEvent).error.message}`;
  });
  let destroyed = false;
  return {
    device,
    limits,
    float16,
    subgroupSizes,
    adapterDescription,
    loopIterationLimit: /llvmpipe|lavapipe/i.test(adapterDescription) ? 65535 : Number.POSITIVE_INFINITY,
    lostReason: () => lost,
    assertHealthy: () => {
      if (lost !== undefined && !destroyed) throw new WebGpuDeviceError(lost);
      if (uncaptured !== undefined) {
        // Reported once, to the call that noticed it; later work on a healthy device may proceed.
        const message = uncaptured;
        uncaptured = undefined;
        throw new WebGpuDeviceError(message);
      }
    },
    destroy: () => {
      destroyed = true;
      device.destroy();
    },
  };
}
