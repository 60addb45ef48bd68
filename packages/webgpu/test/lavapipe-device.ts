import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import { requestWebGpuDevice, type WebGpuContext } from "../src/index.js";

/**
 * Mesa 25's lavapipe (Vulkan on the CPU, with shader-f16 and subgroups of 8) from
 * bookworm-backports, which scripts/install-ci-dependencies.sh unpacks into .cache/lavapipe. No
 * skip: without it the calling test fails, naming the script.
 */
export const lavapipeIcd =
  process.env.SELF_EXTEND_LAVAPIPE_ICD ??
  fileURLToPath(new URL("../.cache/lavapipe/lvp_icd.json", import.meta.url));

/** A device on lavapipe, through Dawn's Vulkan backend. */
export async function requestLavapipeDevice(): Promise<WebGpuContext> {
  expect(
    existsSync(lavapipeIcd),
    `${lavapipeIcd} missing: run packages/webgpu/scripts/install-ci-dependencies.sh`,
  ).toBe(true);
  const previousDrivers = process.env.VK_DRIVER_FILES;
  process.env.VK_DRIVER_FILES = lavapipeIcd;
  return requestWebGpuDevice({ nodeBackends: ["vulkan"] }).finally(() => {
    // The loader read it when Dawn created its Vulkan instance; later devices in this worker
    // keep their own discovery.
    if (previousDrivers === undefined) delete process.env.VK_DRIVER_FILES;
    else process.env.VK_DRIVER_FILES = previousDrivers;
  });
}
