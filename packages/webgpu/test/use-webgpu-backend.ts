import { afterAll, beforeAll, expect } from "vitest";
import { createWebGpuBackend, type WebGpuBackend } from "../src/index.js";

/**
 * The WebGPU backend of a test file: made before its tests and checked available, its device
 * destroyed after them. No skip: without an adapter the file fails and says why.
 */
export function useWebGpuBackend(): { readonly backend: WebGpuBackend } {
  let backend: WebGpuBackend | undefined;
  beforeAll(async () => {
    backend = createWebGpuBackend();
    const availability = await backend.checkAvailability();
    expect(availability.reason ?? "available").toBe("available");
  });
  afterAll(async () => (await backend?.getContext())?.destroy());
  return {
    get backend(): WebGpuBackend {
      if (backend === undefined) throw new Error("useWebGpuBackend: the backend is made in beforeAll");
      return backend;
    },
  };
}
